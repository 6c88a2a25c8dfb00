"""Evidence: quotes grounded to character offsets (umlauts, ß, repeated phrases), fabricated quotes re-asked
then failed, rule mentions as evidence, and the store of the previous version migrated in place."""

import json
import sqlite3
import unicodedata

import pandas as pd
import pytest
from conftest import write_reports

from report2label.core import Labeler, hookimpl, label
from report2label.core.labelling.evidence import ground, ground_quotes
from report2label.core.plugins import pm
from report2label.plugins.ankle_fracture import TASK

REPORT = (
    "Fragestellung: Fraktur?\n"
    "Befund:  Weichteilschwellung über dem   Außenknöchel. Fraktur am Außenknöchel.\n"
    "Straße der Fibula frei. Fraktur am Außenknöchel."
)


def test_exact_quote_offsets_count_code_points():
    found = ground(REPORT, "Weichteilschwellung über dem")
    assert found["status"] == "exact" and REPORT[found["start"] : found["end"]] == "Weichteilschwellung über dem"
    assert found["start"] == REPORT.index("Weichteilschwellung")  # code points: ü and ß count one each


def test_a_repeated_phrase_is_grounded_to_its_first_occurrence():
    found = ground(REPORT, "Fraktur am Außenknöchel")
    first = REPORT.index("Fraktur am Außenknöchel")
    assert (found["start"], found["end"]) == (first, first + len("Fraktur am Außenknöchel"))
    assert REPORT.count("Fraktur am Außenknöchel") == 2 and found["start"] < REPORT.rindex("Fraktur am Außenknöchel")


@pytest.mark.parametrize(
    "quote, expected",
    [
        ("STRASSE DER FIBULA", "Straße der Fibula"),  # 'ß'.casefold() == 'ss': the fold is longer than the text
        ("strasse der fibula frei.", "Straße der Fibula frei"),
        ("über dem Außenknöchel", "über dem   Außenknöchel"),  # a run of spaces in the report
        ("„Weichteilschwellung über\ndem Außenknöchel“", "Weichteilschwellung über dem   Außenknöchel"),
        ("...AUSSENKNÖCHEL. Fraktur...", "Außenknöchel. Fraktur"),
        (unicodedata.normalize("NFD", "über dem   Außenknöchel"), "über dem   Außenknöchel"),  # decomposed ü and ö
    ],
)
def test_case_and_whitespace_tolerant_quotes_map_back_to_the_report(quote, expected):
    found = ground(REPORT, quote)
    assert found["status"] == "fuzzy", found
    assert REPORT[found["start"] : found["end"]] == expected == found["quote"]


def test_a_quote_not_in_the_report_is_not_found():
    evidence, reason = ground_quotes(REPORT, {"fracture": "Trimalleoläre Fraktur", "other": None})
    assert evidence == {
        "fracture": [{"quote": "Trimalleoläre Fraktur", "start": None, "end": None, "status": "not_found"}],
        "other": [],
    }
    assert reason == "evidence for 'fracture' is not a verbatim quote from the report"


class Scripted(Labeler):
    """Answers from a script per report id: a list of answers, one per attempt (the last repeats)."""

    name = "scripted"
    script: dict[str, list[dict]] = {}
    asked: list[tuple[str, tuple]] = []

    def label(self, requests):
        answers = []
        for request in requests:
            Scripted.asked.append((request.report_id, request.messages))
            turns = Scripted.script[request.report_id]
            attempt = sum(1 for i, _ in Scripted.asked if i == request.report_id)
            answers.append(json.dumps(turns[min(attempt, len(turns)) - 1], ensure_ascii=False))
        return answers


class ScriptedPlugin:
    @hookimpl
    def register_labelers(self, register):
        register(Scripted)


@pytest.fixture
def scripted():
    pm.register(ScriptedPlugin(), name="scripted")
    Scripted.asked = []
    yield Scripted
    pm.unregister(name="scripted")


def test_fabricated_evidence_is_asked_again_then_failed(scripted, tmp_path):
    reports = write_reports(tmp_path / "r.csv", [REPORT, "Keine Fraktur.", REPORT], ["good", "none", "liar"])
    fake = {"fracture": 1, "evidence": {"fracture": "Trimalleoläre Luxationsfraktur"}}
    scripted.script = {
        "good": [fake, {"fracture": 1, "evidence": {"fracture": "fraktur am AUSSENKNÖCHEL"}}],
        "none": [{"fracture": 0, "evidence": {"fracture": None}}],
        "liar": [fake],
    }
    summary = label("ankle-fracture", reports, tmp_path / "out", backend="scripted", evidence=True, show_progress=False)
    assert (summary.labelled, summary.failed) == (2, 1)
    labels = pd.read_csv(tmp_path / "out" / "labels.csv", dtype={"report_id": str}).set_index("report_id")
    assert labels.loc["good", "attempts"] == 2 and labels.loc["liar", "attempts"] == 3
    assert labels.loc["liar", "status"] == "failed"
    assert labels.loc["liar", "reason"] == (
        "invalid answer after 3 attempts: evidence for 'fracture' is not a verbatim quote from the report"
    )
    [span] = json.loads(labels.loc["good", "fracture_evidence"])
    assert span["status"] == "fuzzy" and REPORT[span["start"] : span["end"]] == "Fraktur am Außenknöchel"
    assert span["start"] == REPORT.index("Fraktur am Außenknöchel")
    assert pd.isna(labels.loc["none", "fracture_evidence"]) and labels.loc["none", "fracture"] == 0
    assert labels.loc["good", "answer"] == '{"fracture": 1}'  # the label columns and answer stay as without evidence
    assert set(labels["prompt"]) == {"de-zero-shot+evidence"}
    corrective = [m for i, m in scripted.asked if i == "good"][1][-1]["content"]
    assert "evidence for 'fracture' is not a verbatim quote from the report" in corrective
    with sqlite3.connect(tmp_path / "out" / "labels.sqlite") as db:
        stored = db.execute("SELECT evidence FROM labels WHERE report_id = 'liar'").fetchone()[0]
    assert json.loads(stored)["fracture"][0]["status"] == "not_found"


def test_evidence_variant_asks_for_quotes_and_keeps_the_default_prompt(scripted, tmp_path):
    plain = TASK.prompt("de-zero-shot")
    asked = TASK.evidence_variant(plain)
    assert asked.name == "de-zero-shot+evidence" and asked.hash != plain.hash and not plain.evidence
    assert asked.instructions.startswith(plain.instructions) and '"evidence"' in asked.instructions
    schema = TASK.for_prompt(asked).answer_schema
    assert schema["required"] == ["fracture", "evidence"] and TASK.answer_schema["required"] == ["fracture"]


def test_few_shot_variant_without_evidence_in_its_examples_is_refused(r2l, tmp_path):
    reports = write_reports(tmp_path / "r.csv", ["Keine Fraktur."])
    args = ("label", "ankle-fracture", reports, "-o", tmp_path / "out", "--backend", "scripted", "--evidence")
    pm.register(ScriptedPlugin(), name="scripted")
    try:
        result = r2l(*args, "--prompt", "de-few-shot")
    finally:
        pm.unregister(name="scripted")
    assert result.exit_code == 1
    assert "prompt 'de-few-shot' cannot ask for evidence: its example 1 gives none" in result.output
    assert not (tmp_path / "out").exists()


def test_rules_record_the_spans_of_the_mentions_they_decided_on(tmp_path):
    text = "V.a. Fraktur des Außenknöchels.  Straße frei.\nKeine Fraktur der Tibia. Fraktur des   Außenknöchels links."
    reports = write_reports(tmp_path / "r.csv", [text, "Unauffälliger Befund."])
    label("ankle-fracture", reports, tmp_path / "out", show_progress=False)
    labels = pd.read_csv(tmp_path / "out" / "labels.csv")
    spans = json.loads(labels["fracture_evidence"][0])
    # the positive mention decided: the third "Fraktur", not the suspected or the negated one
    assert [(s["start"], s["quote"], s["status"]) for s in spans] == [(text.rindex("Fraktur"), "Fraktur", "exact")]
    assert labels["fracture"].tolist() == [1, 0] and pd.isna(labels["fracture_evidence"][1])


def test_rules_evidence_for_the_findings_of_the_chest_task(tmp_path):
    text = "FINDINGS: Heart size is normal. No pleural effusion or pneumothorax.\nPossible  left basilar atelectasis."
    reports = write_reports(tmp_path / "r.csv", [text])
    label("chest-xray", reports, tmp_path / "out", show_progress=False)
    row = pd.read_csv(tmp_path / "out" / "labels.csv").iloc[0]

    def quoted(name):
        return [text[s["start"] : s["end"]] for s in json.loads(row[f"{name}_evidence"])]

    assert quoted("cardiomegaly") == ["Heart size is normal"] and quoted("pneumothorax") == ["pneumothorax"]
    assert quoted("atelectasis") == ["atelectasis"] and row["atelectasis"] == "uncertain"
    assert pd.isna(row["edema_evidence"])


V1_SCHEMA = """
CREATE TABLE labels (
    report_id TEXT NOT NULL, text_hash TEXT NOT NULL, task TEXT NOT NULL, task_version TEXT NOT NULL,
    prompt_hash TEXT NOT NULL, backend TEXT NOT NULL, model TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('labelled', 'failed')), answer TEXT, reason TEXT,
    attempts INTEGER NOT NULL, raw_answer TEXT, prompt TEXT NOT NULL, params TEXT NOT NULL, labelled_at TEXT NOT NULL,
    PRIMARY KEY (report_id, text_hash, task, task_version, prompt_hash, backend, model)
)
"""


def test_a_store_of_the_previous_version_opens_migrates_and_resumes(tmp_path):
    reports = write_reports(tmp_path / "r.csv", ["Weber-B-Fraktur.", "Keine Fraktur."])
    first = label("ankle-fracture", reports, tmp_path / "new", show_progress=False)
    assert first.asked == 2
    with sqlite3.connect(tmp_path / "new" / "labels.sqlite") as db:  # the rows, as version 1 wrote them
        rows = db.execute("SELECT * FROM labels WHERE report_id = 'r0'").fetchall()
    (tmp_path / "old").mkdir()
    with sqlite3.connect(tmp_path / "old" / "labels.sqlite") as db:
        db.execute(V1_SCHEMA)
        db.execute("PRAGMA user_version = 1")
        db.executemany(f"INSERT INTO labels VALUES ({','.join('?' * 15)})", [row[:15] for row in rows])
    db.close()

    resumed = label("ankle-fracture", reports, tmp_path / "old", show_progress=False)
    assert (resumed.reused, resumed.asked, resumed.labelled) == (1, 1, 2)
    with sqlite3.connect(tmp_path / "old" / "labels.sqlite") as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == 2
        columns = [row[1] for row in db.execute("PRAGMA table_info(labels)")]
    db.close()
    assert columns[-2:] == ["evidence", "confidence"]
    labels = pd.read_csv(tmp_path / "old" / "labels.csv")
    assert labels["fracture"].tolist() == [1, 0]
    assert pd.isna(labels["fracture_evidence"][0]) and labels["fracture_confidence"][1] == 1.0  # old row, new row


EVIDENCE_FILE = """
[[variant]]
name = "de-quotes"
based_on = "de-few-shot"
evidence = true
instructions = "Fraktur des OSG? JSON mit fracture und evidence (wörtliches Zitat oder null)."
examples = [
    { report = "Weber-B-Fraktur der Fibula.", answer = { fracture = 1, evidence = { fracture = "Weber-B-Fraktur" } } },
    { report = "OSG intakt.", answer = { fracture = 0, evidence = { fracture = "__QUOTE__" } } },
]
"""


def test_a_prompt_file_variant_with_evidence_and_quoting_examples(scripted, tmp_path):
    from report2label.core.prompt_file import with_prompt_file

    prompts = tmp_path / "prompts.toml"
    prompts.write_text(EVIDENCE_FILE.replace('"__QUOTE__"', '"OSG intakt"'))
    variant = with_prompt_file(TASK, prompts).prompt("de-quotes")
    assert variant.evidence and json.loads(variant.messages("x")[2]["content"])["evidence"] == {
        "fracture": "Weber-B-Fraktur"
    }
    scripted.script = {"r0": [{"fracture": 1, "evidence": {"fracture": "Fraktur am Außenknöchel"}}]}
    reports = write_reports(tmp_path / "r.csv", [REPORT])
    options = {"prompt": "de-quotes", "prompt_file": prompts, "evidence": True}
    summary = label("ankle-fracture", reports, tmp_path / "out", backend="scripted", show_progress=False, **options)
    assert summary.labelled == 1
    row = pd.read_csv(tmp_path / "out" / "labels.csv").iloc[0]
    assert row["prompt"] == "de-quotes" and json.loads(row["fracture_evidence"])[0]["status"] == "exact"

    prompts.write_text(EVIDENCE_FILE.replace(', evidence = { fracture = "__QUOTE__" }', ""))
    with pytest.raises(Exception, match="example 2: .*field 'evidence': Field required"):
        with_prompt_file(TASK, prompts)
