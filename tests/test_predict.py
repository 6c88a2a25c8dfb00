"""r2l predict: ONNX Runtime only (torch unimportable), preprocessing from metadata, bad files reported."""

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from test_images import RAMP, write_dicom

from report2label.core.predict import predict


@pytest.fixture
def model(exported_model):
    return exported_model


def test_predictions_match_the_trained_model(model, trained_run):
    """Preprocessing rebuilt from metadata gives the probabilities evaluation computed from the cache."""
    expected = pd.read_csv(trained_run / "test_predictions.csv")
    got = predict(model, list(expected["image"]), show_progress=False)
    assert got["path"].tolist() == expected["image"].tolist()
    assert np.allclose(got["fracture_probability"], expected["fracture_probability"], atol=1e-4)
    assert (got["fracture_decision"] == expected["fracture_decision"]).all()


def test_without_torch(model, trained_run, tmp_path):
    blocker = tmp_path / "blocker"
    for name in ("torch", "timm", "torchvision"):
        (blocker / name).mkdir(parents=True)
        (blocker / name / "__init__.py").write_text(f"raise ImportError('{name} is not allowed here')\n")
    images = pd.read_csv(trained_run / "test_predictions.csv")["image"].head(4).tolist()
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG broken")
    dicom = write_dicom(tmp_path / "x.dcm", RAMP)
    out = tmp_path / "predictions.csv"
    check = "import torch"
    blocked = subprocess.run([sys.executable, "-c", check], env={"PYTHONPATH": str(blocker)}, capture_output=True)
    assert blocked.returncode != 0, "the blocker must make torch unimportable"
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "report2label.cli",
            "predict",
            str(model),
            *images,
            str(broken),
            str(dicom),
            "-o",
            str(out),
        ],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(blocker), "PATH": "/usr/bin:/bin"},
    )
    assert run.returncode == 3, run.stderr  # finished, one input unreadable
    assert "5 images predicted, 1 unreadable" in run.stdout and "broken.png: unreadable image" in run.stderr
    table = pd.read_csv(out)
    assert table["path"].tolist() == [*images, str(broken), str(dicom)]
    assert table["fracture_probability"].notna().sum() == 5 and table["error"].notna().sum() == 1


def test_folders_and_csv_inputs(model, tmp_path):
    folder = tmp_path / "imgs"
    (folder / "sub").mkdir(parents=True)
    for name in ("a.png", "sub/b.png"):
        Image.fromarray((RAMP / 4).astype(np.uint8)).save(folder / name)
    (folder / "notes.txt").write_text("not an image")
    pd.DataFrame({"image": ["imgs/a.png"]}).to_csv(tmp_path / "list.csv", index=False)
    table = predict(model, [folder, tmp_path / "list.csv"], show_progress=False)
    assert [p.split("/")[-1] for p in table["path"]] == ["a.png", "b.png", "a.png"]
    assert (table["error"].fillna("") == "").all()


def test_not_a_model(tmp_path):
    fake = tmp_path / "fake.onnx"
    fake.write_bytes(b"nope")
    (tmp_path / "a.png").write_bytes(b"")
    with pytest.raises(Exception, match="fake.onnx: not a loadable ONNX model"):
        predict(fake, [tmp_path], show_progress=False)
