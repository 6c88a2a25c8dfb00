"""Data parallel: N processes label disjoint shares into one store; a final run writes the table."""

import json
import subprocess

import pandas as pd
from conftest import R2L, write_reports


def test_two_shards_share_one_store(outside_plugin, tmp_path):
    n = 30
    reports = write_reports(tmp_path / "r.csv", [f"note {i} {'smoke' * (i % 3 == 0)}" for i in range(n)])
    out = tmp_path / "out"
    logs = [tmp_path / f"asked{k}.jsonl" for k in (1, 2)]
    base = [*R2L, "label", "smoke-test", str(reports), "-o", str(out), "--backend", "fake", "--no-progress"]
    shards = [
        subprocess.Popen(
            [*base, "--shard", f"{k}/2", "-O", f"log={logs[k - 1]}", "-O", "delay=0.05"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for k in (1, 2)
    ]
    outputs = [shard.communicate(timeout=120) for shard in shards]
    assert all(shard.returncode == 0 for shard in shards), outputs
    assert "run without --shard" in outputs[0][0] and not (out / "labels.csv").exists()
    asked = [{json.loads(line)["id"] for line in log.read_text().splitlines()} for log in logs]
    assert asked[0] and asked[1] and not asked[0] & asked[1]
    assert asked[0] | asked[1] == {f"r{i}" for i in range(n)}

    final = subprocess.run(base, capture_output=True, text=True)
    assert final.returncode == 0, final.stderr
    assert f"{n} labelled, 0 failed; {n} already stored, 0 asked" in final.stdout
    labels = pd.read_csv(out / "labels.csv")
    assert labels["smoke"].tolist() == [int(i % 3 == 0) for i in range(n)]


def test_bad_shard_is_refused(r2l, tmp_path):
    path = write_reports(tmp_path / "r.csv", ["Keine Fraktur."])
    assert (
        "Error: shard 3/2: expected K/N"
        in r2l("label", "ankle-fracture", path, "-o", tmp_path / "o", "--shard", "3/2").output
    )
    assert "is not K/N" in r2l("label", "ankle-fracture", path, "-o", tmp_path / "o", "--shard", "half").output
