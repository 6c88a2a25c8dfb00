"""Atomic writes and the sweep of what a killed writer left behind."""

import os
import subprocess
import sys
import tempfile

from report2label.core.atomic import atomic_path, scratch_dir, sweep


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_sweep_removes_only_what_dead_writers_left(tmp_path):
    dead = _dead_pid()
    orphan = tmp_path / f".model.onnx.{dead}.abc123.tmp"
    orphan.write_bytes(b"half an onnx file")
    scratch = tmp_path / f".r2l-scratch.{dead}.xyz.tmp"
    (scratch / "sub").mkdir(parents=True)
    live = tmp_path / f".last.pt.{os.getpid()}.def456.tmp"
    live.write_bytes(b"being written")
    keep = tmp_path / "model.onnx"
    keep.write_bytes(b"done")
    assert sorted(sweep(tmp_path)) == sorted([orphan, scratch])
    assert sorted(tmp_path.iterdir()) == sorted([live, keep])


def test_scratch_dir_holds_library_temp_files_and_goes_away(tmp_path):
    with scratch_dir(tmp_path) as scratch:
        with tempfile.TemporaryDirectory() as inner:
            assert os.path.dirname(inner) == str(scratch)
        (scratch / "x").write_text("x")
    assert list(tmp_path.iterdir()) == []
    assert tempfile.gettempdir() != str(scratch)


def test_atomic_temp_file_names_its_writer(tmp_path):
    with atomic_path(tmp_path / "labels.csv") as tmp:
        assert f".{os.getpid()}." in tmp.name and sweep(tmp_path) == []
        tmp.write_text("a")
    assert (tmp_path / "labels.csv").read_text() == "a"
