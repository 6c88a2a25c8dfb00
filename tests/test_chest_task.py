"""The chest-xray task: four-state answers, Normal derived, rules and a real llama.cpp answering its schema."""

import json

import pandas as pd
import pytest
from conftest import write_reports

from report2label.core import label, training_value
from report2label.core.task import STATES
from report2label.plugins.chest_xray import TASK
from report2label.plugins.chest_xray.answer import FINDINGS

NONE = dict.fromkeys(FINDINGS, "not_mentioned")


def test_fourteen_labels_of_which_thirteen_are_states_asked_and_normal_derived():
    assert TASK.labels == (*FINDINGS, "normal")
    assert TASK.state_labels == tuple(FINDINGS)
    properties = TASK.answer_schema["properties"]
    assert set(properties) == set(FINDINGS)
    assert all(prop["enum"] == list(STATES) for prop in properties.values())


@pytest.mark.parametrize(
    ("states", "normal"),
    [({}, 1), ({"pneumothorax": "negative"}, 1), ({"edema": "uncertain"}, 0), ({"support_devices": "positive"}, 0)],
)
def test_normal_is_none_of_the_findings_positive_or_uncertain(states, normal):
    answer = TASK.validate_answer(json.dumps({**NONE, **states})).answer
    assert answer["normal"] == normal


def test_answers_outside_the_states_are_refused_with_the_field_named():
    reason = TASK.validate_answer(json.dumps({**NONE, "edema": "maybe"})).reason
    assert "field 'edema'" in reason
    without_fracture = {k: v for k, v in NONE.items() if k != "fracture"}
    assert "field 'fracture'" in TASK.validate_answer(json.dumps(without_fracture)).reason


@pytest.mark.parametrize(
    ("value", "ones", "zeros", "ignore"),
    [("positive", 1, 1, 1), ("negative", 0, 0, 0), ("not_mentioned", 0, 0, 0), ("uncertain", 1, 0, None), (1, 1, 1, 1)],
)
def test_uncertainty_policy_maps_states_to_training_targets(value, ones, zeros, ignore):
    assert training_value(value, "ones") == ones and training_value(value, "zeros") == zeros
    result = training_value(value, "ignore")
    assert result != result if ignore is None else result == ignore


def test_rules_answer_in_states_across_a_negated_list(tmp_path):
    reports = write_reports(
        tmp_path / "reports.csv",
        [
            "No focal consolidation, pleural effusion, or pneumothorax. The heart is enlarged. "
            "Possible left basilar atelectasis. Right internal jugular catheter in place.",
            "Lungs are clear. Heart size is normal.",
        ],
    )
    label("chest-xray", reports, tmp_path / "out", show_progress=False)
    rows = pd.read_csv(tmp_path / "out" / "labels.csv", keep_default_na=False).set_index("report_id")
    first = rows.loc[rows.index[0]]
    assert first[["consolidation", "pleural_effusion", "pneumothorax"]].tolist() == ["negative"] * 3
    assert first[["cardiomegaly", "atelectasis", "support_devices"]].tolist() == ["positive", "uncertain", "positive"]
    assert (first["edema"], first["normal"]) == ("not_mentioned", 0)
    second = rows.loc[rows.index[1]]
    assert (second["cardiomegaly"], second["normal"]) == ("negative", 1)


def test_a_random_gguf_through_llamacpp_answers_the_fourteen_label_schema(tmp_path):
    pytest.importorskip("llama_cpp")
    from report2label.testing.random_gguf import Size, write_random_gguf

    model = write_random_gguf(tmp_path / "long-context.gguf", size=Size(n_ctx=16384))  # a byte-level vocabulary
    texts = ["Heart size normal. No pneumothorax.", "Small right effusion; possible pneumonia.", "Pacemaker leads."]
    summary = label(
        "chest-xray",
        write_reports(tmp_path / "reports.csv", texts),
        tmp_path / "out",
        backend="llamacpp",
        options={"model": str(model)},
        show_progress=False,
    )
    assert (summary.labelled, summary.failed) == (3, 0)
    rows = pd.read_csv(tmp_path / "out" / "labels.csv", keep_default_na=False)
    assert rows[list(FINDINGS)].isin(STATES).all().all() and (rows["attempts"] == 1).all()
    for _, row in rows.iterrows():
        raw = json.loads(row["raw_answer"])
        assert set(raw) == set(FINDINGS)
        assert row["normal"] == int(all(raw[f] in ("negative", "not_mentioned") for f in FINDINGS))
