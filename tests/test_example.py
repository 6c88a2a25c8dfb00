"""The synthetic example study: deterministic, marked synthetic, and labelled right by the rules."""

import hashlib

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from report2label.plugins.ankle_fracture.example import CASES, _radiograph


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    from click.testing import CliRunner

    from report2label.cli.main import cli

    root = tmp_path_factory.mktemp("demo")
    runner = CliRunner()
    for name, seed in (("a", 7), ("b", 7), ("c", 8)):
        result = runner.invoke(
            cli,
            [
                "example",
                "ankle-fracture",
                str(root / name),
                "--seed",
                str(seed),
                "--n-reports",
                "60",
                "--image-size",
                "128",
            ],
        )
        assert result.exit_code == 0, result.output
    return root


def digest(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_same_seed_same_files_other_seed_other_files(demo):
    assert digest(demo / "a") == digest(demo / "b")
    assert digest(demo / "a")["reports.csv"] != digest(demo / "c")["reports.csv"]


def test_tables_and_images(demo):
    reports = pd.read_csv(demo / "a" / "reports.csv")
    images = pd.read_csv(demo / "a" / "images.csv")
    assert list(reports.columns[:4]) == ["report_id", "patient_id", "text", "gold_fracture"]
    assert len(reports) == 60 and set(reports["source"]) == {"synthetic"}
    assert set(reports["case"]) == {case.name for case in CASES}
    assert set(images["report_id"]) == set(reports["report_id"])
    per_report = images.groupby("report_id").size()
    assert per_report.min() >= 2 and per_report.max() <= 3
    assert reports.groupby("patient_id").size().max() >= 2, "some patients have several reports"
    depths = set()
    for path in images["image"]:
        with Image.open(demo / "a" / path) as image:
            assert image.size == (128, 128)
            assert "SYNTHETIC" in image.info["Comment"]
            depths.add(np.asarray(image).dtype)
    assert depths == {np.dtype("uint8"), np.dtype("uint16")}
    assert "SYNTHETIC" in (demo / "a" / "README.md").read_text()


@pytest.mark.parametrize("seed", range(5))
def test_fracture_is_a_visible_dark_line(seed):
    """Same anatomy with and without fracture: they differ only by a darker line of bone pixels."""
    with_fracture = _radiograph(np.random.default_rng(seed), 256, fracture=True, hardware=False, lateral=False)
    without = _radiograph(np.random.default_rng(seed), 256, fracture=False, hardware=False, lateral=False)
    darker = (without - with_fracture) > 0.25
    assert 40 <= darker.sum() <= 600, darker.sum()
    assert ((with_fracture - without) <= 1e-6).all()
    assert without[darker].mean() > 0.45, "the line crosses bone"


def test_rules_label_the_example_with_high_accuracy(demo, r2l, tmp_path):
    """The README's first command: example → label → eval-labels, accuracy ≥ 0.97."""
    result = r2l("label", "ankle-fracture", demo / "a" / "reports.csv", "-o", tmp_path / "labels", "--no-progress")
    assert result.exit_code == 0 and "60 labelled, 0 failed" in result.output
    evaluation = r2l("eval-labels", tmp_path / "labels" / "labels.csv", demo / "a" / "reports.csv")
    assert evaluation.exit_code == 0
    import json

    accuracy = json.loads((tmp_path / "labels" / "label_eval.json").read_text())["per_label"][0]["metrics"]["accuracy"]
    assert accuracy["value"] >= 0.97
