"""The labelling engine: validation, bounded corrective retry, resume, provenance, outputs."""

import json
import sqlite3

import pandas as pd
import pytest
from conftest import write_reports

from report2label.core import label
from report2label.core.errors import R2LError


def asked(log):
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


@pytest.fixture
def reports(tmp_path):
    return write_reports(tmp_path / "reports.csv", ["smoke", "clear air", "smoke again", "nothing"])


def test_invalid_answers_are_reasked_with_a_correction(outside_plugin, reports, tmp_path):
    log = tmp_path / "asked.jsonl"
    summary = label(
        "smoke-test",
        reports,
        tmp_path / "out",
        backend="fake",
        options={"invalid_first": 2, "log": str(log)},
        show_progress=False,
    )
    assert (summary.labelled, summary.failed, summary.backend_calls) == (4, 0, 12)
    third = [entry for entry in asked(log) if entry["id"] == "r0"][2]["messages"]
    assert [m["role"] for m in third] == ["system", "user", "assistant", "user", "assistant", "user"]
    assert third[2]["content"] == "maybe" and "not JSON" in third[3]["content"]
    assert '"enum":[0,1]' in third[3]["content"]
    labels = pd.read_csv(tmp_path / "out" / "labels.csv")
    assert labels["attempts"].tolist() == [3, 3, 3, 3]
    assert labels["smoke"].tolist() == [1, 0, 1, 0]


def test_retry_is_bounded_and_the_row_is_kept_as_failed(outside_plugin, reports, tmp_path):
    summary = label(
        "smoke-test",
        reports,
        tmp_path / "out",
        backend="fake",
        options={"invalid_first": 99, "garbage": '{"smoke": 2}'},
        max_attempts=3,
        show_progress=False,
    )
    assert (summary.labelled, summary.failed, summary.backend_calls) == (0, 4, 12)
    labels = pd.read_csv(tmp_path / "out" / "labels.csv")
    assert labels["status"].tolist() == ["failed"] * 4
    assert labels["smoke"].isna().all()
    assert labels["reason"][0] == "invalid answer after 3 attempts: field 'smoke': Input should be 0 or 1"
    assert labels["raw_answer"][0] == '{"smoke": 2}'


def test_backend_row_failures_are_recorded_and_retried_on_rerun(outside_plugin, reports, tmp_path):
    out = tmp_path / "out"
    first = label("smoke-test", reports, out, backend="fake", options={"fail_ids": ["r1"]}, show_progress=False)
    assert (first.labelled, first.failed) == (3, 1)
    assert first.failure_reasons == {"server unreachable": 1}
    log = tmp_path / "asked.jsonl"
    second = label("smoke-test", reports, out, backend="fake", options={"log": str(log)}, show_progress=False)
    assert (second.labelled, second.failed, second.reused, second.asked) == (4, 0, 3, 1)
    assert [entry["id"] for entry in asked(log)] == ["r1"]


def test_rerun_asks_nothing_and_changes_relabel(outside_plugin, tmp_path):
    out, log = tmp_path / "out", tmp_path / "asked.jsonl"
    opts = {"log": str(log)}
    path = write_reports(tmp_path / "reports.csv", ["smoke", "clear", "fog"])
    label("smoke-test", path, out, backend="fake", options=opts, show_progress=False)
    assert len(asked(log)) == 3
    again = label("smoke-test", path, out, backend="fake", options=opts, show_progress=False)
    assert (again.reused, again.asked, len(asked(log))) == (3, 0, 3)
    write_reports(path, ["smoke", "clear, now with smoke", "fog"])
    changed = label("smoke-test", path, out, backend="fake", options=opts, show_progress=False)
    assert [e["id"] for e in asked(log)[3:]] == ["r1"] and changed.asked == 1
    assert pd.read_csv(out / "labels.csv")["smoke"].tolist() == [1, 1, 0]
    other_prompt = label("smoke-test", path, out, backend="fake", options=opts, prompt="terse", show_progress=False)
    assert other_prompt.asked == 3
    assert set(pd.read_csv(out / "labels.csv")["prompt"]) == {"terse"}


def test_rules_labels_do_not_depend_on_the_prompt(reports, tmp_path):
    write_reports(reports, ["Keine Fraktur.", "Weber-B-Fraktur."])
    label("ankle-fracture", reports, tmp_path / "out", show_progress=False)
    again = label("ankle-fracture", reports, tmp_path / "out", prompt="en-zero-shot", show_progress=False)
    assert again.asked == 0 and again.reused == 2


def test_output_table_carries_provenance(reports, tmp_path):
    write_reports(reports, ["Keine Fraktur.", "Weber-B-Fraktur."])
    label("ankle-fracture", reports, tmp_path / "out", parquet=True, show_progress=False)
    labels = pd.read_csv(tmp_path / "out" / "labels.csv")
    for column in (
        "report_id",
        "fracture",
        "status",
        "attempts",
        "raw_answer",
        "backend",
        "model",
        "prompt_hash",
        "labelled_at",
        "task",
        "task_version",
        "text_hash",
    ):
        assert column in labels.columns
    assert labels["fracture"].tolist() == [0, 1]
    assert labels["raw_answer"][1] == '{"fracture": 1}'
    assert labels["model"][0].startswith("rules-") and labels["backend"][0] == "rules"
    parquet = pd.read_parquet(tmp_path / "out" / "labels.parquet")
    assert list(parquet.columns) == list(labels.columns)
    assert parquet["fracture"].tolist() == [0, 1] and parquet["report_id"].tolist() == ["r0", "r1"]


def test_store_is_sqlite_keyed_by_report_and_run(reports, tmp_path):
    write_reports(reports, ["Keine Fraktur.", "Weber-B-Fraktur."])
    label("ankle-fracture", reports, tmp_path / "out", show_progress=False)
    with sqlite3.connect(tmp_path / "out" / "labels.sqlite") as db:
        pk = [row[1] for row in db.execute("PRAGMA table_info(labels)") if row[5]]
        rows = db.execute("SELECT report_id, status, answer FROM labels ORDER BY report_id").fetchall()
    assert pk == ["report_id", "text_hash", "task", "task_version", "prompt_hash", "backend", "model"]
    assert rows == [("r0", "labelled", '{"fracture": 0}'), ("r1", "labelled", '{"fracture": 1}')]


def test_cli_summary(r2l, reports, tmp_path):
    write_reports(reports, ["Keine Fraktur.", "Weber-B-Fraktur.", "V.a. Fraktur."])
    result = r2l("label", "ankle-fracture", reports, "-o", tmp_path / "out", "--no-progress")
    assert result.exit_code == 0
    assert "3 reports: 3 labelled, 0 failed" in result.output
    assert "fracture: 0=1, 1=2" in result.output and "reports/s" in result.output


def test_rules_backend_takes_no_model(reports, tmp_path):
    with pytest.raises(R2LError, match="backend 'rules': option 'model'"):
        label("ankle-fracture", reports, tmp_path / "out", options={"model": "x.gguf"})


def test_unknown_backend_lists_the_installed_ones(reports, tmp_path):
    available = r"\(available: llamacpp, openai, rules, transformers, vllm\)"
    with pytest.raises(R2LError, match=r"unknown labelling backend .gpt. " + available):
        label("ankle-fracture", reports, tmp_path / "out", backend="gpt")
