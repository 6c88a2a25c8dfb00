"""``r2l label --plan``: the requests, their sizes and counts, with nothing stored and nothing sent."""

import json

import pytest
from conftest import write_reports

from report2label.core import label
from report2label.core.labelling.plan import SHOWN_CHARS, plan

LONG = "The smoke detector went off. " + "x" * 400


@pytest.fixture
def reports(tmp_path):
    return write_reports(tmp_path / "reports.csv", [LONG, "no smoke here", "quiet night", ""])


def calls(log):
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def test_plan_writes_nothing_and_asks_nothing(outside_plugin, r2l, reports, tmp_path):
    out, log = tmp_path / "out", tmp_path / "calls.jsonl"
    result = r2l("label", "smoke-test", reports, "-o", out, "--backend", "fake", "-O", f"log={log}", "--plan")
    assert result.exit_code == 0, result.output
    assert not out.exists()
    assert calls(log) == []
    text = result.output
    assert "messages for the first pending report (r0)" in text
    assert 'Answer {"smoke": 1} or {"smoke": 0}.' in text  # the instructions
    assert LONG[:SHOWN_CHARS] in text and LONG not in text  # the report, shortened
    assert f"[{len(LONG) - SHOWN_CHARS} more characters]" in text
    assert "1 failing before any request" in text and "3 to ask" in text
    assert "(estimate, bytes/4)" in text
    assert "at most 9 attempts (3 × max_attempts 3)" in text
    assert "would leave this machine" not in text


def test_plan_counts_only_pending_reports_and_leaves_the_store_alone(outside_plugin, reports, tmp_path):
    out = tmp_path / "out"
    label("smoke-test", reports, out, backend="fake", show_progress=False)
    before = (out / "labels.sqlite").read_bytes()
    write_reports(reports, [LONG, "no smoke here", "quiet night", "", "new smoke"])
    planned = plan("smoke-test", reports, out, backend="fake", max_attempts=2)
    assert (planned.total, planned.stored, planned.prechecked_failures, planned.requests) == (5, 3, 1, 1)
    assert planned.first_report_id == "r4" and planned.max_requests == 2
    assert (out / "labels.sqlite").read_bytes() == before


def test_probe_makes_exactly_n_requests_and_stores_nothing(outside_plugin, r2l, reports, tmp_path):
    out, log = tmp_path / "out", tmp_path / "calls.jsonl"
    args = ["label", "smoke-test", reports, "-o", out, "--backend", "fake", "-O", f"log={log}"]
    result = r2l(*args, "--plan", "--probe", "2")
    assert result.exit_code == 0, result.output
    assert [c["id"] for c in calls(log)] == ["r0", "r1"]
    assert not out.exists()
    assert "probe: 2 real requests (not stored)" in result.output and "2 valid answers" in result.output
    assert "estimated total" in result.output
    assert r2l(*args, "--probe", "2").exit_code != 0  # --probe without --plan


def test_remote_openai_counts_the_characters_that_would_leave(reports, tmp_path):
    pytest.importorskip("openai")
    options = {"base_url": "http://192.0.2.1:9/v1", "model": "m", "concurrency": 1}  # no request at all
    planned = plan("ankle-fracture", reports, tmp_path / "out", backend="openai", options=options)
    assert planned.remote_host == "192.0.2.1"
    assert planned.remote_chars == len(LONG) + len("no smoke here") + len("quiet night")
    local = plan(
        "ankle-fracture",
        reports,
        tmp_path / "out",
        backend="openai",
        options={**options, "base_url": "http://127.0.0.1:9/v1"},
    )
    assert local.remote_host is None and not local.tokens_exact and local.max_tokens is not None


def test_llamacpp_token_counts_are_the_models_own(tiny_gguf, r2l, reports, tmp_path):
    pytest.importorskip("llama_cpp")
    from report2label.plugins.ankle_fracture import TASK
    from report2label.plugins.backends.llamacpp import LlamaCppLabeler

    model = str(tiny_gguf["chatml"])
    planned = plan("ankle-fracture", reports, tmp_path / "out", backend="llamacpp", options={"model": model})
    variant = TASK.prompt()
    labeler = LlamaCppLabeler(TASK, variant, LlamaCppLabeler.Options(model=model))
    try:
        expected = [len(labeler.tokens(variant.messages(t))) for t in (LONG, "no smoke here", "quiet night")]
        assert labeler.count_tokens(variant.messages(LONG)) == expected[0]
        budget = labeler.max_tokens
    finally:
        labeler.close()
    assert planned.tokens_exact and planned.tokens == expected and planned.max_tokens == budget
    result = r2l(
        "label", "ankle-fracture", reports, "-o", tmp_path / "out", "--backend", "llamacpp", "--model", model, "--plan"
    )
    assert result.exit_code == 0, result.output
    assert f"(exact, the model's tokenizer): first {expected[0]}" in result.output
    assert f"total {sum(expected)}" in result.output
    assert not (tmp_path / "out").exists()
