"""eval-labels on a multi-label, four-state task (chest-xray): gold by CheXpert name, 0/1 or states.

Twenty reports of our own are labelled by the rules backend; gold tables are written so that each
count below can be checked by hand from PREDICTED and the gold dictionaries.
"""

import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from conftest import write_reports

from report2label.cli.main import cli
from report2label.core import eval_labels
from report2label.core.labelling.multilabel_metrics import StateConfusion, averaged_agreement, state_agreement

TEXTS = [
    "No acute cardiopulmonary process. Lungs are clear. Heart size is normal.",
    "Small left pleural effusion. No pneumothorax.",
    "Possible right lower lobe pneumonia.",
    "Cardiomegaly. Mild pulmonary edema.",
    "Right pneumothorax. Chest tube in place.",
    "No pleural effusion or pneumothorax.",
    "Bibasilar atelectasis. No focal consolidation.",
    "Large right pleural effusion with adjacent atelectasis.",
    "Endotracheal tube in good position. Lungs are clear.",
    "Left upper lobe nodule, suspicious for malignancy.",
    "Healed left rib fracture. No acute findings.",
    "Moderate cardiomegaly. Small bilateral pleural effusions.",
    "Findings may represent early pneumonia or atelectasis.",
    "Normal chest radiograph.",
    "Patchy opacity in the right lower lobe. Cannot exclude pneumonia.",
    "No pneumothorax. Stable small left effusion.",
    "Heart size is enlarged. No edema.",
    "Consolidation in the left lower lobe consistent with pneumonia.",
    "Mediastinum is widened.",
    "Interval removal of the chest tube. No pneumothorax.",
]
IDS = [f"c{i:02d}" for i in range(len(TEXTS))]

# What the rules backend says of the four findings with gold below (all other reports: not_mentioned).
PREDICTED = {
    "pleural_effusion": {"c01": "positive", "c05": "negative", "c07": "positive", "c11": "positive", "c15": "positive"},
    "pneumonia": {"c02": "uncertain", "c12": "uncertain", "c14": "uncertain", "c17": "positive"},
    "atelectasis": {"c06": "positive", "c07": "positive", "c12": "uncertain"},
    "pneumothorax": {"c01": "negative", "c04": "positive", "c05": "negative", "c15": "negative", "c19": "negative"},
}
# CheXpert-style gold (1 / 0 / -1 / blank) under CheXpert's column names; blank where not listed.
CHEXPERT_GOLD = {
    "Pleural Effusion": {"c00": 0, "c01": 1, "c05": 0, "c07": 1, "c11": 1, "c15": -1, "c16": 1},
    "Pneumonia": {"c02": -1, "c12": 0, "c14": 1, "c17": 1},
    "Atelectasis": {"c06": 1, "c07": 1, "c12": -1},
    "Pneumothorax": {"c01": 0, "c04": 1, "c05": 0, "c19": 0},
}
# 0/1 gold for two findings, in two more naming styles; 0 where not listed.
BINARY_GOLD = {
    "gold_pleural_effusion": {"c01": 1, "c07": 1, "c11": 1, "c16": 1},
    "Pneumonia_Gold": {"c14": 1, "c17": 1},
}
OTHER_LABELS = [
    "cardiomegaly",
    "consolidation",
    "edema",
    "enlarged_cardiomediastinum",
    "fracture",
    "lung_lesion",
    "lung_opacity",
    "pleural_other",
    "support_devices",
    "normal",
]


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def gold_table(path, columns: dict[str, dict[str, object]], default="") -> str:
    table = {"report_id": IDS, "reader": "A", "text": TEXTS} | {
        name: [values.get(i, default) for i in IDS] for name, values in columns.items()
    }
    pd.DataFrame(table).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def labels(tmp_path_factory):
    folder = tmp_path_factory.mktemp("chest")
    reports = write_reports(folder / "reports.csv", TEXTS, IDS)
    result = run("label", "chest-xray", reports, "-o", folder / "out", "--no-progress")
    assert result.exit_code == 0, result.output
    path = folder / "out" / "labels.csv"
    table = pd.read_csv(path, dtype={"report_id": str}, keep_default_na=False).set_index("report_id")
    for label, states in PREDICTED.items():  # the premise of every count below
        assert table[label].to_dict() == {i: states.get(i, "not_mentioned") for i in IDS}, label
    return path


def evaluate(labels, gold, outdir, *options):
    result = run("eval-labels", labels, gold, "-o", outdir, *options)
    assert result.exit_code == 0, result.output
    summary = json.loads((outdir / "label_eval.json").read_text())
    per_label = {item["label"]: item for item in summary["per_label"]}
    return result.output, summary, per_label, pd.read_csv(outdir / "disagreements.csv", keep_default_na=False)


def counts(item) -> tuple[int, int, int, int]:
    c = item["confusion"]
    return c["tp"], c["fp"], c["fn"], c["tn"]


def test_chexpert_gold_by_name_with_states(labels, tmp_path):
    gold = gold_table(tmp_path / "gold.csv", CHEXPERT_GOLD)
    output, summary, per_label, wrong = evaluate(labels, gold, tmp_path / "eval")
    assert summary["gold_format"] == "states" and summary["uncertain"] == "ones"
    assert summary["evaluated"] == ["atelectasis", "pleural_effusion", "pneumonia", "pneumothorax"]
    assert summary["skipped"] == OTHER_LABELS
    assert per_label["pleural_effusion"]["gold_column"] == "Pleural Effusion"
    # ones: uncertain is 1, not mentioned is 0, on both sides
    assert counts(per_label["pleural_effusion"]) == (4, 0, 1, 15)  # c15 -1 vs positive agrees; c16 missed
    assert counts(per_label["pneumonia"]) == (3, 1, 0, 16)  # c12: gold 0, we uncertain
    assert counts(per_label["atelectasis"]) == (3, 0, 0, 17)
    assert counts(per_label["pneumothorax"]) == (1, 0, 0, 19)
    m = {name: est["value"] for name, est in per_label["pleural_effusion"]["metrics"].items()}
    assert m["ppv"] == 1 and m["sensitivity"] == pytest.approx(0.8) and m["specificity"] == 1
    assert m["f1"] == pytest.approx(8 / 9) and m["accuracy"] == pytest.approx(0.95)
    assert m["kappa"] == pytest.approx((0.95 - 0.65) / 0.35)  # expected agreement (4·5 + 16·15) / 400
    for item in per_label.values():
        for est in item["metrics"].values():
            assert est["low"] <= est["value"] <= est["high"]
    # the four states, gold rows × predicted columns (positive, negative, uncertain, not_mentioned)
    effusion = per_label["pleural_effusion"]["state_confusion"]
    assert effusion["states"] == ["positive", "negative", "uncertain", "not_mentioned"]
    assert effusion["matrix"] == [[3, 0, 0, 1], [0, 1, 0, 1], [1, 0, 0, 0], [0, 0, 0, 13]]
    assert per_label["pneumonia"]["state_confusion"]["matrix"] == [
        [1, 0, 1, 0],
        [0, 0, 1, 0],
        [0, 0, 1, 0],
        [0, 0, 0, 16],
    ]
    states = per_label["pleural_effusion"]["state_metrics"]
    assert states["accuracy"]["value"] == pytest.approx(17 / 20)
    assert states["kappa"]["value"] == pytest.approx((0.85 - 213 / 400) / (1 - 213 / 400))
    # micro pools TP 4+3+3+1, FP 0+1+0+0, FN 1+0+0+0; macro averages the four labels
    averages = summary["averages"]
    assert averages["labels"] == summary["evaluated"]
    for name in ("precision", "recall", "f1"):
        assert averages["micro"][name]["value"] == pytest.approx(11 / 12)
    assert averages["macro"]["precision"]["value"] == pytest.approx((1 + 0.75 + 1 + 1) / 4)
    assert averages["macro"]["recall"]["value"] == pytest.approx((0.8 + 1 + 1 + 1) / 4)
    assert averages["macro"]["f1"]["value"] == pytest.approx((8 / 9 + 6 / 7 + 1 + 1) / 4)
    for kind in ("micro", "macro"):
        for est in averages[kind].values():
            assert est["low"] <= est["value"] <= est["high"] and est["high"] - est["low"] > 0
    # one row per (report, label) whose states differ, as they appear; as_binary says what 0/1 makes of it
    assert wrong[["report_id", "label", "predicted", "gold", "as_binary"]].values.tolist() == [
        ["c00", "pleural_effusion", "not_mentioned", "negative", "agree"],
        ["c15", "pleural_effusion", "positive", "uncertain", "agree"],
        ["c16", "pleural_effusion", "not_mentioned", "positive", "FN"],
        ["c12", "pneumonia", "uncertain", "negative", "FP"],
        ["c14", "pneumonia", "uncertain", "positive", "agree"],
        ["c15", "pneumothorax", "negative", "not_mentioned", "agree"],
    ]
    assert wrong.loc[2, "text"] == TEXTS[16]
    # the CLI: a per-label table, micro and macro, the four-state table, what was skipped
    assert "pleural_effusion │ 20 │ 4/0/1/15" in output
    assert "micro" in output and "macro" in output and "0.917" in output
    assert "pos→n/m 1, neg→n/m 1, unc→pos 1" in output
    assert "pleural_effusion ← Pleural Effusion" in output
    assert "skipped, no gold column: cardiomegaly, consolidation" in output
    assert "compared 20 reports; 0 failed and 0 unlabelled excluded" in output


def test_uncertain_policy_changes_the_binary_metrics_only(labels, tmp_path):
    gold = gold_table(tmp_path / "gold.csv", CHEXPERT_GOLD)
    _, zeros, per_label, _ = evaluate(labels, gold, tmp_path / "zeros", "--uncertain", "zeros")
    assert counts(per_label["pleural_effusion"]) == (3, 1, 1, 15)  # gold c15 -1 is now 0, our positive an FP
    assert counts(per_label["pneumonia"]) == (1, 0, 1, 18)  # our uncertain c14 is now 0: missed
    assert counts(per_label["atelectasis"]) == (2, 0, 0, 18)
    assert zeros["averages"]["micro"]["precision"]["value"] == pytest.approx(7 / 8)
    assert zeros["averages"]["micro"]["recall"]["value"] == pytest.approx(7 / 9)
    assert per_label["pleural_effusion"]["state_confusion"]["matrix"][2] == [1, 0, 0, 0]  # states unchanged

    output, ignore, per_label, wrong = evaluate(labels, gold, tmp_path / "ignore", "--uncertain", "ignore")
    assert counts(per_label["pleural_effusion"]) == (3, 0, 1, 15)  # c15 left out
    assert counts(per_label["pneumonia"]) == (1, 0, 0, 16)  # c02, c12, c14 left out
    assert counts(per_label["atelectasis"]) == (2, 0, 0, 17)
    assert counts(per_label["pneumothorax"]) == (1, 0, 0, 19)
    assert {name: item["dropped_uncertain"] for name, item in per_label.items()} == {
        "atelectasis": 1,
        "pleural_effusion": 1,
        "pneumonia": 3,
        "pneumothorax": 0,
    }
    assert per_label["pneumonia"]["n"] == 17
    assert ignore["averages"]["micro"]["recall"]["value"] == pytest.approx(7 / 8)
    assert ignore["averages"]["micro"]["precision"]["value"] == 1
    as_binary = wrong.set_index(["report_id", "label"])["as_binary"]
    assert as_binary.loc[("c15", "pleural_effusion")] == as_binary.loc[("c12", "pneumonia")] == "uncertain ignored"
    assert (
        as_binary.loc[("c14", "pneumonia")] == "uncertain ignored" and as_binary.loc[("c15", "pneumothorax")] == "agree"
    )
    assert "left out as uncertain (--uncertain ignore): atelectasis 1, pleural_effusion 1, pneumonia 3" in output


def test_binary_gold_maps_our_states_through_the_policy(labels, tmp_path):
    gold = gold_table(tmp_path / "gold.csv", BINARY_GOLD, default=0)
    output, summary, per_label, wrong = evaluate(labels, gold, tmp_path / "ones")
    assert summary["gold_format"] == "binary" and summary["evaluated"] == ["pleural_effusion", "pneumonia"]
    assert per_label["pneumonia"]["gold_column"] == "Pneumonia_Gold"
    assert counts(per_label["pleural_effusion"]) == (3, 1, 1, 15)  # c15 positive vs 0, c16 not mentioned vs 1
    assert counts(per_label["pneumonia"]) == (2, 2, 0, 16)  # uncertain c02 and c12 count as positives
    assert "state_confusion" not in per_label["pneumonia"]
    assert "four states" not in output
    assert summary["averages"]["micro"]["precision"]["value"] == pytest.approx(5 / 8)
    assert summary["averages"]["macro"]["recall"]["value"] == pytest.approx((0.75 + 1) / 2)
    assert wrong.columns.tolist() == ["report_id", "label", "predicted", "gold", "raw_answer", "text"]
    assert wrong[["report_id", "label", "predicted", "gold"]].values.tolist() == [
        ["c15", "pleural_effusion", "positive", 0],
        ["c16", "pleural_effusion", "not_mentioned", 1],
        ["c02", "pneumonia", "uncertain", 0],
        ["c12", "pneumonia", "uncertain", 0],
    ]
    _, _, per_label, _ = evaluate(labels, gold, tmp_path / "zeros", "--uncertain", "zeros")
    assert counts(per_label["pneumonia"]) == (1, 0, 1, 18)
    _, _, per_label, _ = evaluate(labels, gold, tmp_path / "ignore", "--uncertain", "ignore")
    assert counts(per_label["pneumonia"]) == (1, 0, 0, 16) and per_label["pneumonia"]["dropped_uncertain"] == 3


def test_blank_in_binary_gold_names_its_row_unless_gold_is_states(labels, tmp_path):
    columns = {"Pneumothorax": {"c04": 1, "c10": ""}}  # 0/1 with one blank: no -1 or state word anywhere
    gold = gold_table(tmp_path / "gold.csv", columns, default=0)
    result = run("eval-labels", labels, gold, "-o", tmp_path / "eval")
    assert result.exit_code == 1
    assert "gold.csv: row 11 (id 'c10'): 'Pneumothorax' is blank, expected 0 or 1" in result.output
    assert "--gold-format states" in result.output
    output, summary, per_label, _ = evaluate(labels, gold, tmp_path / "eval", "--gold-format", "states")
    assert summary["gold_format"] == "states"
    assert per_label["pneumothorax"]["state_confusion"]["matrix"] == [
        [1, 0, 0, 0],
        [0, 4, 0, 14],
        [0] * 4,
        [0, 0, 0, 1],
    ]


def test_bad_gold_values_name_row_and_column(labels, tmp_path):
    for value, shown in ((2, "2"), ("maybe", "'maybe'"), (0.5, "0.5")):
        columns = CHEXPERT_GOLD | {"Pneumonia": CHEXPERT_GOLD["Pneumonia"] | {"c03": value}}
        gold = gold_table(tmp_path / "gold.csv", columns)
        result = run("eval-labels", labels, gold, "-o", tmp_path / "eval")
        assert result.exit_code == 1
        assert f"gold.csv: row 4 (id 'c03'): 'Pneumonia' is {shown}, expected 1, 0, -1 or blank" in result.output
    words = {"Edema": {i: "not mentioned" for i in IDS} | {"c03": "Positive", "c16": "negative", "c05": "unsure"}}
    result = run("eval-labels", labels, gold_table(tmp_path / "words.csv", words), "-o", tmp_path / "eval")
    assert result.exit_code == 1 and "row 6 (id 'c05'): 'Edema' is 'unsure'" in result.output


def test_state_words_and_a_binary_label_against_states(labels, tmp_path):
    words = {i: "not mentioned" for i in IDS} | {"c03": "Positive", "c16": "negative"}
    gold = gold_table(tmp_path / "gold.csv", {"edema": words, "Normal": {"c00": 1, "c05": 1, "c13": 1}})
    output, summary, per_label, wrong = evaluate(labels, gold, tmp_path / "eval")
    assert summary["gold_format"] == "states"  # the words say so; Normal's blanks are then not mentioned = 0
    assert per_label["edema"]["state_confusion"]["matrix"] == [[1, 0, 0, 0], [0, 1, 0, 0], [0] * 4, [0, 0, 0, 18]]
    assert counts(per_label["normal"]) == (3, 1, 0, 16)  # c19 is normal by the rules, blank in gold
    assert "state_confusion" not in per_label["normal"] and per_label["normal"]["predicted_values"] == "binary"
    assert wrong[["report_id", "label", "predicted", "gold"]].values.tolist() == [["c19", "normal", 1, "not_mentioned"]]


def test_gold_columns_missing_or_ambiguous(labels, tmp_path):
    gold = gold_table(tmp_path / "gold.csv", {"Effusion": {"c01": 1}, "No Finding": {"c00": 1}})
    result = run("eval-labels", labels, gold, "-o", tmp_path / "eval")
    assert result.exit_code == 1
    assert "no gold column for any label (atelectasis, cardiomegaly" in result.output
    assert "'Pleural Effusion' is pleural_effusion" in result.output
    gold = gold_table(tmp_path / "gold.csv", {"Pleural Effusion": {"c01": 1}, "pleural-effusion": {"c01": 1}})
    result = run("eval-labels", labels, gold, "-o", tmp_path / "eval")
    assert result.exit_code == 1
    assert "columns 'Pleural Effusion', 'pleural-effusion' all name label 'pleural_effusion'" in result.output
    result = run("eval-labels", labels, gold, "--gold-col", "Pleural Effusion")
    assert result.exit_code == 1 and "--gold-col names one column, but task 'chest-xray' has 14 labels" in result.output


def test_python_api_keeps_what_the_pipeline_reads(labels, tmp_path):
    gold = gold_table(tmp_path / "gold.csv", CHEXPERT_GOLD)
    report = eval_labels(labels, gold, outdir=tmp_path / "eval", uncertain="ignore")
    accuracy = {r.label: r.metrics["accuracy"].value for r in report.labels}  # as core.pipeline reads it
    assert accuracy["pneumothorax"] == 1 and accuracy["pleural_effusion"] == pytest.approx(18 / 19)
    assert report.skipped == tuple(OTHER_LABELS) and report.uncertain == "ignore"
    assert report.averages["micro"]["recall"].value == pytest.approx(7 / 8)
    again = eval_labels(labels, gold, outdir=tmp_path / "again", uncertain="ignore")
    assert again.averages == report.averages  # the bootstrap is seeded


def test_report_bootstrap_keeps_correlated_labels_correlated():
    rng = np.random.default_rng(1)
    truth = rng.integers(0, 2, (60, 1))
    predicted = np.where(rng.random((60, 1)) < 0.8, truth, 1 - truth)
    one = averaged_agreement(truth, predicted, n_boot=500)
    # the same label twice: micro (pooled) and macro (mean) equal the one label's values in every draw,
    # so the intervals stay as wide; resampling each label on its own would narrow them
    twice = averaged_agreement(np.hstack([truth, truth]), np.hstack([predicted, predicted]), n_boot=500)
    for kind in ("micro", "macro"):
        for name in ("precision", "recall", "f1"):
            assert twice[kind][name].value == pytest.approx(one["micro"][name].value)
            assert (twice[kind][name].low, twice[kind][name].high) == pytest.approx(
                (one["micro"][name].low, one["micro"][name].high)
            )


def test_micro_and_macro_by_hand_with_a_mask_and_an_undefined_label():
    truth = np.array([[1, 0, 0], [1, 1, 0], [0, 1, 0], [0, 0, 0]])
    predicted = np.array([[1, 0, 0], [0, 1, 0], [1, 1, 0], [0, 1, 0]])
    mask = np.array([[1, 1, 1], [1, 1, 1], [1, 1, 1], [1, 0, 1]], dtype=bool)  # label 2 has no positives at all
    result = averaged_agreement(truth, predicted, mask, n_boot=200)
    # label 0: TP 1, FP 1, FN 1; label 1: TP 2 (row 3 masked); label 2: nothing → precision/recall/F1 undefined
    assert result["micro"]["precision"].value == pytest.approx(3 / 4)
    assert result["micro"]["recall"].value == pytest.approx(3 / 4)
    assert result["macro"]["precision"].value == pytest.approx((1 / 2 + 1) / 2)
    assert result["macro"]["f1"].value == pytest.approx((1 / 2 + 1) / 2)


def test_state_confusion_counts_and_kappa():
    gold = ["positive", "negative", "not_mentioned", "uncertain", "positive"]
    ours = ["positive", "not_mentioned", "not_mentioned", "positive", "positive"]
    c = StateConfusion.of(gold, ours)
    assert c.matrix == ((2, 0, 0, 0), (0, 0, 0, 1), (1, 0, 0, 0), (0, 0, 0, 1))
    assert c.mismatches() == [("negative", "not_mentioned", 1), ("uncertain", "positive", 1)]
    m = state_agreement(c)
    expected = (2 * 3 + 1 * 0 + 1 * 0 + 1 * 2) / 25  # gold row sums × predicted column sums
    assert m["accuracy"].value == pytest.approx(3 / 5)
    assert m["kappa"].value == pytest.approx((3 / 5 - expected) / (1 - expected))
    assert m["kappa"].low <= m["kappa"].value <= m["kappa"].high
