"""The base install (`pip install report2label`, no extras): labels and predicts without PyTorch.

A fresh virtual environment gets this project without extras, its dependencies resolved by pip
from the package registry (or pip's cache). Skipped when pip cannot reach the registry.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
TRAIN_ONLY = ("torch", "torchvision", "timm", "onnx", "onnxscript", "matplotlib", "sklearn")
OFFLINE = (
    "NewConnectionError",
    "Failed to establish",
    "Temporary failure in name resolution",
    "No matching distribution",
)


def _copy_source(target: Path) -> Path:
    """The files a build reads, so that building leaves no ``build/`` or egg-info in the working tree."""
    target.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, target / name)
    package_dirs = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
    for folder in package_dirs.values():
        shutil.copytree(ROOT / folder, target / folder, ignore=shutil.ignore_patterns("__pycache__"))
    return target


@pytest.fixture(scope="module")
def lean(tmp_path_factory) -> Path:
    """The ``bin`` folder of a venv holding the base install only."""
    work = tmp_path_factory.mktemp("lean")
    venv = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", venv], check=True)
    pip = [sys.executable, "-m", "pip", "--python", venv / "bin" / "python", "install", "--no-compile"]
    flags = ["--disable-pip-version-check", "--no-input", "--progress-bar", "off"]
    done = subprocess.run([*pip, *flags, _copy_source(work / "src")], capture_output=True, text=True)
    if done.returncode and any(sign in done.stdout + done.stderr for sign in OFFLINE):
        pytest.skip(f"pip cannot reach the package registry: {done.stderr.strip().splitlines()[-1]}")
    assert done.returncode == 0, done.stderr
    return venv / "bin"


def r2l(lean: Path, *args) -> subprocess.CompletedProcess:
    """Run the lean venv's ``r2l ARGS`` with none of this environment's paths."""
    env = {"PATH": f"{lean}{os.pathsep}/usr/bin:/bin", "HOME": os.environ.get("HOME", "/tmp")}
    return subprocess.run([lean / "r2l", *map(str, args)], capture_output=True, text=True, env=env)


def test_the_base_install_has_no_torch(lean):
    blocked = subprocess.run([lean / "python", "-c", "import torch"], capture_output=True, text=True)
    assert "No module named 'torch'" in blocked.stderr
    check = f"import importlib.util as u; print([m for m in {TRAIN_ONLY} if u.find_spec(m)])"
    found = subprocess.run([lean / "python", "-c", check], capture_output=True, text=True, check=True)
    assert found.stdout.strip() == "[]"


def test_example_label_and_eval_labels(lean, tmp_path):
    example, out = tmp_path / "example", tmp_path / "out"
    assert r2l(lean, "example", "ankle-fracture", example, "--n-reports", 6, "--image-size", 64).returncode == 0
    reports = example / "reports.csv"
    labelled = r2l(lean, "label", "ankle-fracture", reports, "-o", out, "--backend", "rules", "--no-progress")
    assert labelled.returncode == 0, labelled.stderr
    labels = pd.read_csv(out / "labels.csv")
    assert len(labels) == 6 and (labels["status"] == "labelled").all()
    measured = r2l(lean, "eval-labels", out / "labels.csv", reports)
    assert measured.returncode == 0, measured.stderr
    summary = json.loads((out / "label_eval.json").read_text())
    assert summary["compared"] == 6 and summary["per_label"][0]["metrics"]["accuracy"]["value"] == 1.0


def test_tasks_and_plugins(lean):
    tasks, plugins = r2l(lean, "tasks"), r2l(lean, "plugins")
    assert tasks.returncode == 0 and "ankle-fracture" in tasks.stdout and "labelling backends:" in tasks.stdout
    assert plugins.returncode == 0 and "trainers" in plugins.stdout


def test_predict_on_onnx_runtime_alone(lean, exported_model, trained_run, tmp_path):
    expected = pd.read_csv(trained_run / "test_predictions.csv").head(4)
    run = r2l(lean, "predict", exported_model, *expected["image"], "-o", tmp_path / "predictions.csv")
    assert run.returncode == 0, run.stderr
    got = pd.read_csv(tmp_path / "predictions.csv")
    assert got["path"].tolist() == expected["image"].tolist()
    assert (got["fracture_probability"] - expected["fracture_probability"]).abs().max() < 1e-4


def test_train_names_the_extra(lean, tmp_path):
    run = r2l(lean, "train", "ankle-fracture", tmp_path / "dataset", "-o", tmp_path / "run")
    assert run.returncode == 1
    assert run.stderr.strip().count("\n") == 0, run.stderr
    assert run.stderr.startswith("Error: r2l train needs torch") and "pip install 'report2label[train]'" in run.stderr
