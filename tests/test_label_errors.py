"""Labelling and predicting with bad input or faults: one exact line, the documented exit code, nothing left behind."""

import os
import sqlite3
import subprocess
import tempfile
from pathlib import Path

import pandas as pd
import pytest
from conftest import R2L, free_port, write_reports

from report2label.core import Labeler, hookimpl
from report2label.core.plugins import pm


def fails(result, message: str, code: int = 1) -> None:
    assert result.exit_code == code, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert lines == [f"Error: {message}"], result.output


@pytest.fixture
def reports(tmp_path):
    return write_reports(tmp_path / "r.csv", ["Keine Fraktur.", "Weber-B-Fraktur."])


def test_output_folder_that_is_a_file(r2l, tmp_path, reports):
    (tmp_path / "out").write_text("mine")
    fails(
        r2l("label", "ankle-fracture", reports, "-o", tmp_path / "out"),
        f"{tmp_path / 'out'}: is a file, not a folder; choose another output folder",
    )
    assert (tmp_path / "out").read_text() == "mine"


def test_output_folder_below_a_file(r2l, tmp_path, reports):
    (tmp_path / "file").write_text("mine")
    out = tmp_path / "file" / "sub" / "out"
    fails(
        r2l("label", "ankle-fracture", reports, "-o", out),
        f"{out}: cannot be created, because {tmp_path / 'file'} is a file",
    )


def test_output_folder_not_writable():
    """Run as an unprivileged user where the tests run as root (root may write anywhere)."""
    with tempfile.TemporaryDirectory() as tmp:  # in /tmp, which that user can reach
        shared = Path(tmp)
        shared.chmod(0o755)
        reports = write_reports(shared / "r.csv", ["Keine Fraktur."])
        locked = shared / "locked"
        locked.mkdir(mode=0o555)
        prefix = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"] if os.geteuid() == 0 else []
        if subprocess.run([*prefix, *R2L, "--version"], capture_output=True).returncode:
            pytest.skip("an unprivileged user cannot run this checkout's interpreter (it lies in a private folder)")
        result = subprocess.run(
            [*prefix, *R2L, "label", "ankle-fracture", str(reports), "-o", str(locked / "out")],
            capture_output=True,
            text=True,
            env={**os.environ, "HOME": tmp},
        )
        assert result.returncode == 1, result.stderr
        assert result.stderr.strip().splitlines() == [
            f"Error: {locked / 'out'}: cannot write there ({locked} is not writable)"
        ]
        assert list(locked.iterdir()) == []


def _store(path, columns: str, version: int = 0) -> None:
    path.parent.mkdir()
    with sqlite3.connect(path) as db:
        db.execute(f"CREATE TABLE labels ({columns})")
        db.execute(f"PRAGMA user_version = {version}")
    db.close()


def test_store_of_another_layout(r2l, tmp_path, reports):
    store = tmp_path / "out" / "labels.sqlite"
    _store(store, "id TEXT, label INTEGER")
    before = store.read_bytes()
    fails(
        r2l("label", "ankle-fracture", reports, "-o", tmp_path / "out"),
        f"{store}: its labels table has another layout (id, label); "
        "not a report2label label store: label into another folder",
    )
    assert store.read_bytes() == before


def test_store_of_an_unknown_version(r2l, tmp_path, reports):
    store = tmp_path / "out" / "labels.sqlite"
    _store(store, "id TEXT", version=7)
    fails(
        r2l("label", "ankle-fracture", reports, "-o", tmp_path / "out"),
        f"{store}: label store version 7 is unknown to this report2label (it reads version 2); "
        "use the report2label that wrote it, or label into another folder",
    )


def test_store_gets_a_version(r2l, tmp_path, reports):
    assert r2l("label", "ankle-fracture", reports, "-o", tmp_path / "out", "--no-progress").exit_code == 0
    with sqlite3.connect(tmp_path / "out" / "labels.sqlite") as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == 2


def test_folder_of_another_task(r2l, tmp_path, reports, outside_plugin):
    out = tmp_path / "out"
    assert r2l("label", "smoke-test", reports, "-o", out, "--backend", "fake", "--no-progress").exit_code == 0
    before = (out / "labels.csv").read_bytes()
    fails(
        r2l("label", "ankle-fracture", reports, "-o", out),
        f"{out / 'labels.csv'}: holds labels of task 'smoke-test', not 'ankle-fracture'; "
        "label 'ankle-fracture' into another folder",
    )
    (out / "labels.csv").unlink()
    fails(
        r2l("label", "ankle-fracture", reports, "-o", out),
        f"{out / 'labels.sqlite'}: holds labels of task 'smoke-test', not 'ankle-fracture'; "
        "label 'ankle-fracture' into another folder",
    )
    assert not (out / "labels.csv").exists() and before


def test_model_that_is_not_a_gguf(r2l, tmp_path, reports):
    model = tmp_path / "model.gguf"
    model.write_bytes(b"PK\x03\x04 not a gguf")
    fails(
        r2l("label", "ankle-fracture", reports, "-o", tmp_path / "out", "--backend", "llamacpp", "--model", model),
        f"backend 'llamacpp': option 'model': {model}: not a GGUF file (it does not start with the GGUF magic bytes)",
    )
    assert not (tmp_path / "out").exists()


class Broken(Labeler):
    """A backend that fails as a whole on its first call (a lost GPU, say)."""

    name = "broken"

    def label(self, requests):
        from report2label.core import R2LError

        raise R2LError("the backend lost its GPU")


class BrokenPlugin:
    @hookimpl
    def register_labelers(self, register):
        register(Broken)


@pytest.fixture
def broken_backend():
    pm.register(BrokenPlugin(), name="broken")
    yield
    pm.unregister(name="broken")


def test_run_that_stores_nothing_leaves_nothing(r2l, tmp_path, reports, broken_backend):
    fails(
        r2l("label", "ankle-fracture", reports, "-o", tmp_path / "out", "--backend", "broken", "--no-progress"),
        "the backend lost its GPU",
    )
    assert not (tmp_path / "out").exists()
    (tmp_path / "kept").mkdir()
    fails(
        r2l("label", "ankle-fracture", reports, "-o", tmp_path / "kept", "--backend", "broken", "--no-progress"),
        "the backend lost its GPU",
    )
    assert list((tmp_path / "kept").iterdir()) == []


def test_numeric_report_column(r2l, tmp_path):
    path = tmp_path / "r.parquet"
    pd.DataFrame({"report_id": ["a", "b"], "text": [1.5, 2.0]}).to_parquet(path)
    fails(
        r2l("label", "ankle-fracture", path, "-o", tmp_path / "out"),
        f"{path}: column 'text' holds numbers (float64), not report texts; choose the text column with --text-col",
    )
    assert not (tmp_path / "out").exists()


def test_missing_value_markers_are_empty_reports(r2l, tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("report_id,text\na,NaN\nb,NA\nc,null\nd,None\ne,Weber-B-Fraktur.\n")
    result = r2l("label", "ankle-fracture", path, "-o", tmp_path / "out", "--no-progress")
    assert result.exit_code == 3, result.output
    labels = pd.read_csv(tmp_path / "out" / "labels.csv", keep_default_na=False)
    assert labels["status"].tolist() == ["failed"] * 4 + ["labelled"]
    assert labels["reason"].tolist()[:4] == ["empty report"] * 4


def test_directory_as_reports(r2l, tmp_path):
    fails(
        r2l("label", "ankle-fracture", tmp_path, "-o", tmp_path / "out"),
        f"{tmp_path}: is a directory; give a table file (.csv, .jsonl, .ndjson, .parquet, .pq, .tsv)",
    )


def test_broken_jsonl_line(r2l, tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_text('{"report_id": "a", "text": "Keine Fraktur."}\n\n{"report_id": "b", "text": "Fraktur.}\n')
    fails(
        r2l("label", "ankle-fracture", path, "-o", tmp_path / "out"),
        f"{path}: line 3: not valid JSON: Unterminated string starting at (column 28)",
    )


def test_every_row_failed_exits_3(r2l, tmp_path, reports):
    """A server that is down (a closed port on 127.0.0.1): every row fails, the summary prints, exit 3."""
    pytest.importorskip("openai")
    url = f"http://127.0.0.1:{free_port()}/v1"
    args = ["--backend", "openai", "--model", "m", "-O", f"base_url={url}", "-O", "retries=0", "--no-progress"]
    result = r2l("label", "ankle-fracture", reports, "-o", tmp_path / "out", *args)
    assert result.exit_code == 3, result.output
    assert "2 reports: 0 labelled, 2 failed" in result.output
    labels = pd.read_csv(tmp_path / "out" / "labels.csv")
    assert labels["status"].tolist() == ["failed", "failed"]


def test_predict_table_without_image_column(r2l, tmp_path):
    table = tmp_path / "inputs.csv"
    pd.DataFrame({"report_id": ["a"], "path": ["x.png"]}).to_csv(table, index=False)
    fails(
        r2l("predict", tmp_path / "model.onnx", table),
        f"{table}: no column 'image' (columns: report_id, path); list the image paths in a column named image",
    )


def test_usage_error_exits_2(r2l):
    assert r2l("label", "ankle-fracture").exit_code == 2


def test_help_lists_the_flow_in_order(r2l):
    out = r2l("--help").output
    commands = [line.split()[0] for line in out.split("Commands:")[1].splitlines() if line.strip()]
    assert commands == [
        "describe",
        "label",
        "eval-labels",
        "compare",
        "review",
        "finetune",
        "dataset",
        "train",
        "evaluate",
        "export",
        "predict",
        "serve",
        "run",
        "example",
        "plugins",
        "tasks",
        "new-plugin",
    ]
    assert "..." not in out.split("Commands:")[1], out


def test_hints_say_what_to_do(r2l, tmp_path):
    labels, images = tmp_path / "labels.csv", tmp_path / "images.csv"
    pd.DataFrame({"report_id": ["a"], "fracture": [1]}).to_csv(labels, index=False)
    args = ["dataset", "ankle-fracture", "--labels", labels, "--images", images, "-o", tmp_path / "ds"]
    fails(
        r2l(*args),
        f"{labels}: no column 'status' (columns: report_id, fracture); is it a labels.csv written by r2l label?",
    )
    pd.DataFrame({"report_id": ["a"], "fracture": [1], "status": ["labelled"]}).to_csv(labels, index=False)
    pd.DataFrame({"image": ["a.png"], "report_id": ["a"]}).to_csv(images, index=False)
    fails(
        r2l(*args),
        f"{images}: no column 'patient_id' (columns: image, report_id); "
        "the images table needs the columns image, report_id and patient_id",
    )
    assert not (tmp_path / "ds").exists()
