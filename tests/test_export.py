"""r2l export: a self-contained ONNX file with metadata, a parity gate that bites, a model card."""

import json
import os
import signal
import subprocess
import time

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from conftest import R2L

import report2label.core.export as export_module
from report2label.core.errors import R2LError
from report2label.core.export import export
from report2label.core.quantize import BEST


def temp_files(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp")) if folder.is_dir() else []


@pytest.fixture(scope="module")
def exported(trained_run, tmp_path_factory):
    folder = tmp_path_factory.mktemp("export")
    return export(trained_run, folder / "ankle.onnx", quantize=True), folder


def test_single_file_with_dynamic_batch_and_metadata(exported, trained_run):
    summary, folder = exported
    assert sorted(p.name for p in folder.iterdir()) == ["MODEL.md", "ankle.int8.onnx", "ankle.onnx", "ankle.roc.png"]
    onnx.checker.check_model(str(summary.path))
    session = ort.InferenceSession(str(summary.path), providers=["CPUExecutionProvider"])
    meta = session.get_modelmeta().custom_metadata_map
    run = json.loads((trained_run / "run.json").read_text())
    metrics = json.loads((trained_run / "metrics.json").read_text())
    assert meta["r2l.task"] == "ankle-fracture" and meta["r2l.task_version"] == "1"
    assert json.loads(meta["r2l.labels"]) == ["fracture"]
    assert json.loads(meta["r2l.thresholds"]) == [metrics["labels"]["fracture"]["threshold"]]
    assert (meta["r2l.input_size"], meta["r2l.in_chans"]) == ("32", "1")
    assert json.loads(meta["r2l.preprocessing"])["foreground_range"] == [0.3, 0.7]
    assert meta["r2l.trained"] == run["finished"] and meta["r2l.report2label_version"] == "0.1.0"
    assert len(meta["r2l.recipe_hash"]) == 12
    for batch in (1, 5):
        out = session.run(None, {"image": np.random.rand(batch, 1, 32, 32).astype(np.float32)})[0]
        assert out.shape == (batch, 1) and ((0 <= out) & (out <= 1)).all()
    assert summary.parity.max_abs_diff <= 1e-4 and summary.parity.decisions_differ == 0


def test_model_card(exported):
    summary, _ = exported
    card = summary.card.read_text()
    for text in (
        "Not for diagnostic use",
        "densenet121",
        "backend `rules`",
        "| train |",
        "| fracture | auc |",
        "Parity with PyTorch",
        f"static int8 ({BEST.describe()})",
        "![ROC curve](ankle.roc.png)",
        "## Intended use",
        "Split by patient",
    ):
        assert text in card, text


def test_quantized_model_is_reported(exported):
    summary, _ = exported
    q = summary.quantized
    assert q.path.name == "ankle.int8.onnx" and 0 <= q.agreement <= 1 and q.int8_ms > 0 and q.float_ms > 0
    session = ort.InferenceSession(str(q.path), providers=["CPUExecutionProvider"])
    assert any(node.op_type == "QuantizeLinear" for node in onnx.load(str(q.path)).graph.node)
    assert session.run(None, {"image": np.zeros((2, 1, 32, 32), np.float32)})[0].shape == (2, 1)


def test_parity_gate_fails_on_a_corrupted_weight_and_writes_nothing(trained_run, tmp_path, monkeypatch):
    original = export_module._export_onnx

    def export_then_corrupt(model, recipe, target, metadata):
        original(model, recipe, target, metadata)
        proto = onnx.load(str(target))
        largest = max(proto.graph.initializer, key=lambda t: int(np.prod(t.dims)))
        values = onnx.numpy_helper.to_array(largest).copy()
        values.flat[: values.size // 10] *= -3.0
        largest.CopyFrom(onnx.numpy_helper.from_array(values, largest.name))
        onnx.save(proto, str(target))

    monkeypatch.setattr(export_module, "_export_onnx", export_then_corrupt)
    target = tmp_path / "model.onnx"
    target.write_bytes(b"the previous model")
    with pytest.raises(R2LError, match=r"parity gate failed on \d+ test images: max \|Δp\| = .* nothing was written"):
        export(trained_run, target)
    assert target.read_bytes() == b"the previous model"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx"]


def test_output_that_is_a_folder_is_refused_before_the_export(r2l, trained_run, tmp_path):
    folder = tmp_path / "models"
    folder.mkdir()
    result = r2l("export", trained_run, "-o", folder)
    assert result.exit_code == 1
    assert [line for line in result.output.splitlines() if line.startswith("Error: ")] == [
        f"Error: {folder}: is a directory; name the ONNX file to write, e.g. {folder / 'model.onnx'}"
    ]
    assert list(folder.iterdir()) == []


def test_export_killed_while_writing_then_rerun(trained_run, tmp_path):
    """SIGKILL while the ONNX file is written: no scratch folder in TMPDIR; the rerun sweeps the temp file."""
    out, scratch = tmp_path / "out", tmp_path / "tmpdir"
    scratch.mkdir()
    args = [*R2L, "export", str(trained_run), "-o", str(out / "m.onnx")]
    env = os.environ | {"TMPDIR": str(scratch)}
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and process.poll() is None and not temp_files(out):
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert temp_files(out), "the kill must land while the ONNX file is being written"
    assert not (out / "m.onnx").exists() and list(scratch.iterdir()) == []
    result = subprocess.run(args, capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
    assert "decisions differ" in result.stdout
    assert sorted(p.name for p in out.iterdir()) == ["MODEL.md", "m.onnx", "m.roc.png"]
