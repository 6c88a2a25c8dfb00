"""r2l export: a self-contained ONNX file with metadata, a parity gate that bites, a model card."""

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest

import report2label.core.export as export_module
from report2label.core.errors import R2LError
from report2label.core.export import export


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
        "static int8 (QDQ, per-channel)",
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


def test_cli_export_reports_parity(r2l, trained_run, tmp_path):
    result = r2l("export", trained_run, "-o", tmp_path / "m.onnx")
    assert result.exit_code == 0, result.output
    assert "decisions differ" in result.output and (tmp_path / "MODEL.md").is_file()
