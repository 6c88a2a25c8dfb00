"""Labels against gold: metrics with confidence intervals, disagreements for review."""

import json

import numpy as np
import pandas as pd
import pytest
from conftest import write_reports

from report2label.core.metrics import Confusion, binary_agreement


def test_metrics_match_hand_computed_values():
    c = Confusion(tn=50, fp=10, fn=5, tp=35)
    m = binary_agreement(c)
    assert m["accuracy"].value == pytest.approx(0.85)
    assert (m["accuracy"].low, m["accuracy"].high) == pytest.approx((0.7672, 0.9070), abs=1e-4)  # Wilson
    assert m["sensitivity"].value == pytest.approx(35 / 40) and m["specificity"].value == pytest.approx(50 / 60)
    assert m["ppv"].value == pytest.approx(35 / 45) and m["npv"].value == pytest.approx(50 / 55)
    assert m["f1"].value == pytest.approx(70 / 85)
    assert m["kappa"].value == pytest.approx((0.85 - 0.51) / 0.49)
    for est in m.values():
        assert est.low <= est.value <= est.high


def test_bootstrap_interval_narrows_with_more_reports():
    small = binary_agreement(Confusion(5, 1, 1, 5))["kappa"]
    large = binary_agreement(Confusion(500, 100, 100, 500))["kappa"]
    assert large.high - large.low < (small.high - small.low) / 3
    assert small.value == pytest.approx(large.value)


def test_confusion_from_arrays():
    assert Confusion.of(np.array([0, 0, 1, 1, 1]), np.array([0, 1, 0, 1, 1])) == Confusion(1, 1, 1, 2)


@pytest.fixture
def labelled(r2l, tmp_path):
    texts = ["Keine Fraktur.", "Weber-B-Fraktur.", "V.a. Fraktur.", "Kalkaneusfraktur.", "   "]
    path = write_reports(tmp_path / "reports.csv", texts)
    gold = pd.read_csv(path).assign(gold_fracture=[0, 1, 0, 0, 1])  # r2 disagrees on purpose
    gold.to_csv(path, index=False)
    assert r2l("label", "ankle-fracture", path, "-o", tmp_path / "out", "--no-progress").exit_code == 3  # r4 empty
    return tmp_path / "out" / "labels.csv", path


def test_eval_labels_reports_metrics_and_disagreements(r2l, labelled):
    labels, gold = labelled
    result = r2l("eval-labels", labels, gold)
    assert result.exit_code == 0, result.output
    assert "accuracy" in result.output and "kappa" in result.output and "95% CI" in result.output
    assert "TN=2 FP=1 FN=0 TP=1" in result.output
    assert "compared 4 reports; 1 failed and 0 unlabelled excluded" in result.output
    summary = json.loads((labels.parent / "label_eval.json").read_text())
    [per_label] = summary["per_label"]
    assert per_label["metrics"]["accuracy"]["value"] == pytest.approx(0.75)
    assert per_label["confusion"] == {"tn": 2, "fp": 1, "fn": 0, "tp": 1}
    wrong = pd.read_csv(labels.parent / "disagreements.csv")
    assert wrong.to_dict("records") == [
        {
            "report_id": "r2",
            "label": "fracture",
            "predicted": 1,
            "gold": 0,
            "raw_answer": '{"fracture": 1}',
            "text": "V.a. Fraktur.",
        }
    ]


def test_gold_values_must_be_binary(r2l, labelled):
    labels, gold = labelled
    pd.read_csv(gold).assign(gold_fracture=[0, 1, "ja", 0, 1]).to_csv(gold, index=False)
    result = r2l("eval-labels", labels, gold)
    assert result.exit_code == 1
    assert "reports.csv: row 3 (id 'r2'): 'gold_fracture' is 'ja', expected 0 or 1" in result.output


def test_gold_column_is_found_or_named(r2l, labelled):
    labels, gold = labelled
    pd.read_csv(gold).rename(columns={"gold_fracture": "radiologist"}).to_csv(gold, index=False)
    missing = r2l("eval-labels", labels, gold)
    assert missing.exit_code == 1 and "no gold column for label 'fracture'" in missing.output
    named = r2l("eval-labels", labels, gold, "--gold-col", "radiologist")
    assert named.exit_code == 0 and "fracture vs radiologist" in named.output


def test_labels_file_must_come_from_r2l_label(r2l, labelled, tmp_path):
    _, gold = labelled
    other = tmp_path / "other.csv"
    pd.DataFrame({"report_id": ["r0"], "fracture": [1]}).to_csv(other, index=False)
    result = r2l("eval-labels", other, gold)
    assert result.exit_code == 1 and "other.csv: no column 'task'" in result.output
