"""A labelling run killed with SIGKILL resumes without asking the backend again for stored rows."""

import json
import signal
import sqlite3
import subprocess
import time

import pandas as pd
from conftest import R2L, write_reports


def test_sigkill_halfway_then_rerun(outside_plugin, tmp_path):
    n = 40
    reports = write_reports(tmp_path / "reports.csv", [f"note {i} {'smoke' * (i % 2)}" for i in range(n)])
    out, log = tmp_path / "out", tmp_path / "asked.jsonl"
    args = [
        *R2L,
        "label",
        "smoke-test",
        str(reports),
        "-o",
        str(out),
        "--backend",
        "fake",
        "--no-progress",
        "-O",
        f"log={log}",
    ]
    process = subprocess.Popen([*args, "-O", "delay=0.25"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (not log.exists() or len(log.read_text().splitlines()) < n // 2):
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL
    assert not (out / "labels.csv").exists()

    with sqlite3.connect(out / "labels.sqlite") as db:
        stored = {row[0] for row in db.execute("SELECT report_id FROM labels WHERE status = 'labelled'")}
    assert 0 < len(stored) < n
    asked_before = len(log.read_text().splitlines())

    rerun = subprocess.run(args, capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr
    asked_after = [json.loads(line)["id"] for line in log.read_text().splitlines()[asked_before:]]
    assert not set(asked_after) & stored, "a stored row was asked again"
    assert sorted(asked_after) == sorted({f"r{i}" for i in range(n)} - stored)
    assert f"{len(stored)} already stored" in rerun.stdout

    labels = pd.read_csv(out / "labels.csv")
    assert sorted(labels["report_id"]) == sorted(f"r{i}" for i in range(n))
    assert (labels["status"] == "labelled").all()
    assert labels["smoke"].tolist() == [i % 2 for i in range(n)]
    with sqlite3.connect(out / "labels.sqlite") as db:
        assert db.execute("SELECT COUNT(*), COUNT(DISTINCT report_id) FROM labels").fetchone() == (n, n)
