"""r2l dataset: labels joined to images, split by patient, balanced, in the study's format."""

import json

import pandas as pd
import pytest

from report2label.core.data.dataset import build_dataset
from report2label.core.errors import R2LError


@pytest.fixture
def built(labelled_example, tmp_path):
    summary = build_dataset(
        "ankle-fracture",
        labelled_example / "labels" / "labels.csv",
        labelled_example / "example" / "images.csv",
        tmp_path / "ds",
        seed=3,
    )
    return summary, tmp_path / "ds"


def test_study_format_and_patient_split(built, labelled_example):
    summary, folder = built
    splits = {s: pd.read_csv(folder / f"{s}_dataframe.csv") for s in ("train", "val", "test")}
    for frame in splits.values():
        assert list(frame.columns[:2]) == ["image", "label"] and set(frame["label"]) == {0, 1}
    patients = [set(frame["patient_id"]) for frame in splits.values()]
    assert not (patients[0] & patients[1] or patients[0] & patients[2] or patients[1] & patients[2])
    for split in ("val", "test"):
        counts = splits[split]["label"].value_counts()
        assert counts[0] == counts[1], f"{split} is balanced"
    images = pd.read_csv(labelled_example / "example" / "images.csv")
    used = (
        sum(len(f) for f in splits.values())
        + summary.dropped["val_balanced_away"]
        + summary.dropped["test_balanced_away"]
    )
    assert used == len(images)
    info = json.loads((folder / "dataset.json").read_text())
    assert info["seed"] == 3 and info["counts"]["train"]["images"] == len(splits["train"])
    assert info["counts"]["val"]["label=0"] == info["counts"]["val"]["label=1"]


def test_no_balance_keeps_every_image(labelled_example, tmp_path):
    summary = build_dataset(
        "ankle-fracture",
        labelled_example / "labels" / "labels.csv",
        labelled_example / "example" / "images.csv",
        tmp_path / "ds",
        balance=False,
    )
    images = pd.read_csv(labelled_example / "example" / "images.csv")
    assert sum(c["images"] for c in summary.counts.values()) == len(images)


def test_failed_labels_are_dropped_and_counted(labelled_example, tmp_path):
    labels = pd.read_csv(labelled_example / "labels" / "labels.csv")
    labels.loc[:4, "status"] = "failed"
    labels.loc[:4, "fracture"] = None
    labels.to_csv(tmp_path / "labels.csv", index=False)
    summary = build_dataset(
        "ankle-fracture", tmp_path / "labels.csv", labelled_example / "example" / "images.csv", tmp_path / "ds"
    )
    assert summary.dropped["failed_reports"] == 5 and summary.dropped["images_without_label"] > 0


def test_labels_without_the_task_column(r2l, labelled_example, tmp_path):
    labels = pd.read_csv(labelled_example / "labels" / "labels.csv").drop(columns="fracture")
    labels.to_csv(tmp_path / "labels.csv", index=False)
    result = r2l(
        "dataset",
        "ankle-fracture",
        "--labels",
        tmp_path / "labels.csv",
        "--images",
        labelled_example / "example" / "images.csv",
        "-o",
        tmp_path / "ds",
    )
    assert result.exit_code == 1 and "labels.csv: no column 'fracture' of task 'ankle-fracture'" in result.output


def test_missing_image_files(r2l, labelled_example, tmp_path):
    images = pd.read_csv(labelled_example / "example" / "images.csv")
    images["image"] = [str(labelled_example / "example" / p) for p in images["image"]]
    images.loc[3, "image"] = "/nowhere/x.png"
    images.to_csv(tmp_path / "images.csv", index=False)
    args = [
        "dataset",
        "ankle-fracture",
        "--labels",
        labelled_example / "labels" / "labels.csv",
        "--images",
        tmp_path / "images.csv",
        "-o",
        tmp_path / "ds",
    ]
    result = r2l(*args)
    assert result.exit_code == 1
    assert "images.csv: 1 of" in result.output and "(first: row 4, /nowhere/x.png)" in result.output
    assert r2l(*args, "--skip-missing").exit_code == 0
    assert json.loads((tmp_path / "ds" / "dataset.json").read_text())["dropped"]["missing_images"] == 1


def test_one_class_split_is_refused(labelled_example, tmp_path):
    labels = pd.read_csv(labelled_example / "labels" / "labels.csv").assign(fracture=1)
    labels.to_csv(tmp_path / "labels.csv", index=False)
    with pytest.raises(R2LError, match=r"split 'train' has only class \[1\] of 'label'"):
        build_dataset(
            "ankle-fracture", tmp_path / "labels.csv", labelled_example / "example" / "images.csv", tmp_path / "ds"
        )


def test_existing_dataset_is_not_overwritten(built, labelled_example):
    _, folder = built
    before = (folder / "train_dataframe.csv").read_bytes()
    with pytest.raises(R2LError, match="already holds a data set"):
        build_dataset(
            "ankle-fracture",
            labelled_example / "labels" / "labels.csv",
            labelled_example / "example" / "images.csv",
            folder,
            seed=9,
        )
    assert (folder / "train_dataframe.csv").read_bytes() == before


@pytest.mark.parametrize("value", ["2", "yes", "0.5"])
def test_label_outside_the_answer_schema_is_refused(r2l, labelled_example, tmp_path, value):
    labels = pd.read_csv(labelled_example / "labels" / "labels.csv", dtype={"fracture": str})
    labelled = labels.index[labels["status"] == "labelled"]
    labels.loc[labelled[3], "fracture"] = value
    labels.to_csv(tmp_path / "labels.csv", index=False)
    out = tmp_path / "ds"
    result = r2l(
        "dataset",
        "ankle-fracture",
        "--labels",
        tmp_path / "labels.csv",
        "--images",
        labelled_example / "example" / "images.csv",
        "-o",
        out,
    )
    shown = {"2": "2", "yes": "'yes'", "0.5": "0.5"}[value]
    reason = "Input should be 0 or 1" if value == "2" else "must be the integer 0 or 1"
    assert result.exit_code == 1
    assert [line for line in result.output.splitlines() if line.startswith("Error: ")] == [
        f"Error: {tmp_path / 'labels.csv'}: row {labelled[3] + 1}: fracture = {shown} is not an answer of "
        f"task 'ankle-fracture' ({reason})"
    ]
    assert not out.exists()
