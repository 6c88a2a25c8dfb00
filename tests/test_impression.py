"""Free-text tasks: the impression task, its validation and re-asks, and eval-labels with ROUGE and BLEU."""

import json
import types
from pathlib import Path

import pandas as pd
import pytest

from report2label.core import Labeler, hookimpl, label, registry
from report2label.core.errors import R2LError
from report2label.core.labelling.agreement import eval_labels
from report2label.core.plugins import pm, register
from report2label.core.task import TEXT_CORRECTION
from report2label.plugins.impression import MAX_CHARS, TASK
from report2label.plugins.impression.sections import split_report

GOLD = {
    "a": "No acute cardiopulmonary abnormality.",
    "b": "1. Cardiomegaly. 2. Small left pleural effusion.",
    "c": "Right lower lobe pneumonia.",
    "d": "Stable mild cardiomegaly without edema.",
}
WRITTEN = {
    "a": "No acute cardiopulmonary abnormality.",
    "b": "Cardiomegaly with a small left pleural effusion.",
    "c": "No acute disease.",
    "d": "Mild cardiomegaly, stable. No edema.",
}


class ScriptedWriter(Labeler):
    """Answers per report id from a script: an empty text, then an over-long one, then the written impression."""

    name = "scripted-writer"
    conversations: list = []

    class Options(Labeler.Options):
        invalid_first: int = 0

    def __init__(self, task, prompt, options) -> None:
        super().__init__(task, prompt, options)
        self.asked: dict[str, list] = {}

    def label(self, requests):
        answers = []
        for request in requests:
            turns = self.asked.setdefault(request.report_id, [])
            turns.append(request.messages)
            self.conversations.append(request.messages)
            bad = ["", "x" * (MAX_CHARS + 1)]
            n = len(turns)
            answers.append(bad[n - 1] if n <= min(self.options.invalid_first, 2) else WRITTEN[request.report_id])
        return answers


@pytest.fixture
def writer():
    plugin = types.SimpleNamespace(register_labelers=hookimpl(lambda register: register(ScriptedWriter)))
    register(plugin, name="scripted-writer")
    yield ScriptedWriter
    pm.unregister(name="scripted-writer")


@pytest.fixture
def reports(tmp_path):
    path = tmp_path / "reports.csv"
    texts = {key: f"INDICATION: Cough. FINDINGS: Finding of report {key}." for key in GOLD}
    pd.DataFrame(
        {"report_id": list(texts), "text": list(texts.values()), "gold_impression": list(GOLD.values())}
    ).to_csv(path, index=False)
    return path


def test_the_impression_task_is_listed(r2l):
    result = r2l("tasks")
    assert result.exit_code == 0 and "impression" in result.output
    assert registry.task("impression") is TASK and TASK.text_field == "impression"


def test_free_text_answers_are_the_text_itself_and_bounded():
    assert TASK.validate_answer("  Cardiomegaly.\n").answer == {"impression": "Cardiomegaly."}
    assert TASK.validate_answer('{"impression": "Cardiomegaly."}').answer == {"impression": "Cardiomegaly."}
    assert TASK.validate_answer("   ").reason == "empty answer"
    assert "at most 1000 characters" in TASK.validate_answer("x" * (MAX_CHARS + 1)).reason
    assert TASK.answer_text({"impression": "Cardiomegaly."}) == "Cardiomegaly."
    few_shot = TASK.prompt("en-few-shot").messages("FINDINGS: x")
    assert few_shot[2] == {"role": "assistant", "content": "No acute cardiopulmonary abnormality."}


def test_a_free_text_field_needs_a_max_length():
    from pydantic import BaseModel

    class Unbounded(BaseModel):
        impression: str

    with pytest.raises(ValueError, match="free-text field 'impression' needs a max_length"):
        TASK.model_validate({**TASK.model_dump(exclude={"answer_schema"}), "answer_model": Unbounded})


def test_split_report_takes_the_impression_off():
    text, impression = split_report("INDICATION: Fever. FINDINGS: Clear lungs. IMPRESSION: Normal chest.")
    assert (text, impression) == ("INDICATION: Fever. FINDINGS: Clear lungs.", "Normal chest.")
    assert split_report("FINDINGS: Clear lungs.") == ("FINDINGS: Clear lungs.", None)


def test_empty_and_overlong_answers_are_reasked_then_stored(writer, reports, tmp_path):
    summary = label(
        "impression",
        reports,
        tmp_path / "out",
        backend="scripted-writer",
        options={"invalid_first": 2},
        show_progress=False,
    )
    assert summary.labelled == 4 and summary.backend_calls == 12
    table = pd.read_csv(tmp_path / "out" / "labels.csv", dtype={"report_id": str})
    assert table["impression"].tolist() == list(WRITTEN.values())
    assert table["attempts"].tolist() == [3] * 4 and (table["status"] == "labelled").all()


def test_the_correction_of_a_free_text_task_asks_for_text_only(writer, reports, tmp_path):
    writer.conversations.clear()
    label("impression", reports, tmp_path / "out", backend="scripted-writer", options={"invalid_first": 1})
    corrected = [m for m in writer.conversations if m[-1]["role"] == "user" and m[-2]["role"] == "assistant"]
    assert len(corrected) == 4
    assert corrected[0][-2:] == (
        {"role": "assistant", "content": ""},
        {"role": "user", "content": TEXT_CORRECTION.format(reason="empty answer")},
    )


def test_eval_labels_scores_rouge_and_bleu_with_intervals(writer, reports, tmp_path, r2l):
    rouge_score = pytest.importorskip("rouge_score.rouge_scorer")
    sacrebleu = pytest.importorskip("sacrebleu")
    label("impression", reports, tmp_path / "out", backend="scripted-writer", show_progress=False)
    result = r2l("eval-labels", tmp_path / "out" / "labels.csv", reports)
    assert result.exit_code == 0, result.output
    assert "ROUGE-L" in result.output and "BLEU" in result.output and "compared 4 reports" in result.output
    summary = json.loads((tmp_path / "out" / "label_eval.json").read_text())
    scorer = rouge_score.RougeScorer(["rouge1", "rougeL"], use_stemmer=True)
    expected = [scorer.score(GOLD[k], WRITTEN[k]) for k in GOLD]
    for name in ("rouge1", "rougeL"):
        metric = summary["metrics"][name]
        assert metric["value"] == pytest.approx(sum(s[name].fmeasure for s in expected) / 4)
        assert metric["low"] <= metric["value"] <= metric["high"] and metric["low"] < metric["high"]
    bleu = sacrebleu.corpus_bleu(list(WRITTEN.values()), [list(GOLD.values())]).score
    assert summary["metrics"]["bleu"]["value"] == pytest.approx(bleu)
    worst = pd.read_csv(tmp_path / "out" / "worst_cases.csv", dtype={"report_id": str})
    assert worst["report_id"].iloc[0] == "c" and worst["rougeL"].is_monotonic_increasing
    assert {"predicted", "gold", "text"} <= set(worst.columns)


def test_identical_texts_score_one(tmp_path):
    from report2label.core.labelling.text_metrics import text_metrics

    pytest.importorskip("rouge_score")
    metrics, _ = text_metrics(list(GOLD.values()), list(GOLD.values()), n_boot=200)
    assert all(metrics[name].low == metrics[name].high == 1.0 for name in ("rouge1", "rouge2", "rougeL"))
    assert metrics["bleu"].value == pytest.approx(100.0)


def test_a_gold_file_without_texts_is_named(writer, reports, tmp_path):
    label("impression", reports, tmp_path / "out", backend="scripted-writer", show_progress=False)
    gold = tmp_path / "gold.csv"
    pd.DataFrame({"report_id": ["a", "b"], "gold_impression": ["Normal.", ""]}).to_csv(gold, index=False)
    with pytest.raises(R2LError, match=r"gold.csv: row 2 \(id 'b'\): 'gold_impression' is blank"):
        eval_labels(tmp_path / "out" / "labels.csv", gold)


def test_the_example_writer_splits_synthetic_reports(tmp_path, r2l):
    result = r2l("example", "impression", tmp_path / "ex", "--n-reports", "5")
    assert result.exit_code == 0, result.output
    table = pd.read_csv(tmp_path / "ex" / "reports.csv")
    assert len(table) == 5 and (table["source"] == "synthetic").all()
    assert not table["text"].str.contains("IMPRESSION").any() and table["gold_impression"].str.len().gt(0).all()


@pytest.fixture(scope="module")
def tiny_llama(tmp_path_factory):
    pytest.importorskip("xgrammar")
    from report2label.testing.random_hf import write_random_llama

    return write_random_llama(tmp_path_factory.mktemp("hf") / "tiny-llama")


def test_the_transformers_backend_writes_valid_impressions(tiny_llama, reports, tmp_path, r2l):
    pytest.importorskip("rouge_score")
    out = tmp_path / "out"
    result = r2l(
        "label", "impression", reports, "-o", out, "--backend", "transformers", "--model", tiny_llama,
        "-O", "max_tokens=16", "--no-progress",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out / "labels.csv", dtype={"report_id": str, "impression": str}, keep_default_na=False)
    assert (table["status"] == "labelled").all() and (table["attempts"] == 1).all()
    assert table["impression"].str.len().between(1, MAX_CHARS).all()
    assert (table["impression"] == table["raw_answer"].str.strip()).all()
    assert json.loads(table["params"].iloc[0])["structured"] == "none (free text, length only)"
    result = r2l("eval-labels", out / "labels.csv", reports)
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "label_eval.json").read_text())["metrics"]
    assert set(metrics) == {"rouge1", "rouge2", "rougeL", "bleu"}
    assert all(0 <= m["low"] <= m["value"] <= m["high"] <= 100 for m in metrics.values())


def test_the_benchmark_scores_its_baselines_side_by_side(tmp_path):
    """On a made-up file in the shared file's format; the constant baseline wins where it is the impression."""
    import subprocess
    import sys

    reports = [
        "FINDINGS: Heart size normal. Lungs are clear. IMPRESSION: No acute cardiopulmonary abnormality.",
        "FINDINGS: The heart is enlarged. Small effusion. IMPRESSION: Cardiomegaly and small effusion.",
        "FINDINGS: Clear lungs. No effusion. IMPRESSION: No acute cardiopulmonary abnormality.",
        "IMPRESSION: Normal chest.",
    ]
    data = tmp_path / "iu.csv"
    pd.DataFrame({"report_id": ["1", "2", "3", "4"], "report": reports}).to_csv(data, index=False)
    bench = Path(__file__).resolve().parents[1] / "bench" / "impression_rouge.py"
    run = subprocess.run([sys.executable, bench, "--data", data, "--bootstrap", "100"], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("3 reports with findings and impression"), "the report without findings is left out"
    rows = {line.split(" | ")[0].strip("| "): line for line in run.stdout.splitlines() if line.startswith("| ")}
    assert rows["last sentence of the findings"].split(" | ")[1] == "0.333", "(0 + 2/3 + 1/3) / 3"
    constant = rows['constant "No acute cardiopulmonary abnormality."'].split(" | ")
    assert float(constant[1]) == pytest.approx((1 + 0 + 1) / 3, abs=1e-3)


def test_compare_refuses_a_free_text_task_by_name(reports, tmp_path):
    from report2label.core.labelling.compare import compare

    with pytest.raises(R2LError, match="task 'impression' answers free text, which r2l compare cannot rank"):
        compare("impression", reports, reports, tmp_path / "cmp")
    assert not (tmp_path / "cmp").exists()


def test_missing_text_metrics_name_their_extra(writer, reports, tmp_path, monkeypatch):
    import sys

    label("impression", reports, tmp_path / "out", backend="scripted-writer", show_progress=False)
    monkeypatch.setitem(sys.modules, "rouge_score", None)  # as if not installed
    with pytest.raises(R2LError, match=r"needs rouge-score and sacrebleu: pip install 'report2label\[text\]'"):
        eval_labels(tmp_path / "out" / "labels.csv", reports)
