"""r2l train and r2l evaluate: the study's second half on the synthetic example, on the CPU."""

import json
import shutil
import signal
import subprocess
import time

import pandas as pd
import pytest
import torch
from conftest import R2L

from report2label.core.data.cache import load_split
from report2label.core.errors import R2LError
from report2label.core.training.loop import train
from report2label.core.training.recipe import effective_recipe
from report2label.plugins.ankle_fracture import TASK

FAST = ["--image-size", "32", "--batch-size", "16", "--no-progress"]


def test_example_to_roc_auc(r2l, labelled_example, tmp_path):
    """Done when: rules labels → r2l dataset → r2l train (small, CPU, few epochs) → r2l evaluate AUC ≥ 0.9."""
    ds, run = tmp_path / "ds", tmp_path / "run"
    assert (
        r2l(
            "dataset",
            "ankle-fracture",
            "--labels",
            labelled_example / "labels" / "labels.csv",
            "--images",
            labelled_example / "example" / "images.csv",
            "-o",
            ds,
        ).exit_code
        == 0
    )
    trained = r2l(
        "train",
        "ankle-fracture",
        ds,
        "-o",
        run,
        "--image-size",
        "64",
        "--epochs",
        "8",
        "--batch-size",
        "16",
        "--no-progress",
    )
    assert trained.exit_code == 0, trained.output
    history = pd.read_csv(run / "history.csv")
    assert len(history) == 8 and {"train_loss", "val_loss", "val_auc", "val_mcc", "train_mcc"} <= set(history)
    evaluated = r2l("evaluate", run, "--bootstrap", "200")
    assert evaluated.exit_code == 0, evaluated.output
    metrics = json.loads((run / "metrics.json").read_text())["labels"]["fracture"]
    assert metrics["metrics"]["auc"]["value"] >= 0.9, metrics
    low, high = metrics["metrics"]["auc"]["low"], metrics["metrics"]["auc"]["high"]
    assert low <= metrics["metrics"]["auc"]["value"] <= high
    assert (run / "roc.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert set(metrics["metrics"]) == {"accuracy", "auc", "sensitivity", "specificity", "ppv", "npv", "f1", "mcc"}
    assert sum(metrics["confusion"].values()) == len(pd.read_csv(run / "test_predictions.csv"))
    state = torch.load(run / "best.pt", weights_only=True)
    assert state["task"] == "ankle-fracture" and state["architecture"] == "densenet121"


def temp_files(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp")) if folder.is_dir() else []


def test_sigkill_during_a_checkpoint_write_then_resume(dataset, tmp_path):
    """Killed while writing last.pt after an epoch: the rerun sweeps the temp file and resumes."""
    epochs = 4
    straight = train(
        "ankle-fracture",
        dataset,
        tmp_path / "straight",
        epochs=epochs,
        image_size=32,
        batch_size=16,
        show_progress=False,
    )
    run = tmp_path / "killed"
    args = [*R2L, "train", "ankle-fracture", str(dataset), "-o", str(run), "--epochs", str(epochs), *FAST]
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and process.poll() is None:
        if (run / "last.pt").exists() and any(name.startswith(".last.pt.") for name in temp_files(run)):
            break
        time.sleep(0.002)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert temp_files(run), "the kill must land while a checkpoint is being written"
    done = torch.load(run / "last.pt", weights_only=True)["epoch"] + 1
    assert 0 < done < epochs, "the kill must land after an epoch, before the end"
    refused = subprocess.run(args, capture_output=True, text=True)
    assert refused.returncode == 1 and "pass --resume to continue" in refused.stderr
    resumed = subprocess.run([*args, "--resume"], capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert f"trained {epochs - done} epochs (resumed after epoch {done}) in" in resumed.stdout
    assert temp_files(run) == []
    history = pd.read_csv(run / "history.csv")
    assert history["epoch"].tolist() == list(range(1, epochs + 1))
    assert len(history) == len(pd.read_csv(straight.rundir / "history.csv"))


def test_checkpoint_of_another_task_or_architecture_is_refused(dataset, tmp_path):
    from report2label.core.training.checkpoint import load_checkpoint

    summary = train(
        "ankle-fracture", dataset, tmp_path / "run", epochs=1, image_size=32, batch_size=16, show_progress=False
    )
    other_task = TASK.model_copy(update={"name": "knee-effusion"})
    with pytest.raises(R2LError, match="from task 'ankle-fracture', not 'knee-effusion'"):
        load_checkpoint(summary.rundir / "best.pt", other_task, None, None)
    resnet = effective_recipe(TASK).model_copy(update={"architecture": "resnet18"})
    with pytest.raises(R2LError, match="is a densenet121, the recipe asks for resnet18"):
        load_checkpoint(summary.rundir / "best.pt", TASK, resnet, None)
    (tmp_path / "junk.pt").write_bytes(b"junk")
    with pytest.raises(R2LError, match="junk.pt: not a report2label checkpoint"):
        load_checkpoint(tmp_path / "junk.pt", TASK, None, None)


def test_training_set_smaller_than_the_batch(r2l, dataset, tmp_path):
    result = r2l("train", "ankle-fracture", dataset, "-o", tmp_path / "run", "--batch-size", "100000", *FAST[:2])
    assert result.exit_code == 1 and "fewer than the batch size 100000" in result.output


def test_dataset_of_another_task(r2l, dataset, tmp_path):
    other = tmp_path / "ds"
    shutil.copytree(dataset, other)
    info = json.loads((other / "dataset.json").read_text())
    (other / "dataset.json").write_text(json.dumps(info | {"task": "knee-effusion"}))
    result = r2l("train", "ankle-fracture", other, "-o", tmp_path / "run")
    assert result.exit_code == 1 and "the data set is for task 'knee-effusion'" in result.output


def test_unreadable_image_is_skipped_and_counted(dataset, tmp_path):
    broken = tmp_path / "ds"
    shutil.copytree(dataset, broken, ignore=shutil.ignore_patterns("cache"))
    frame = pd.read_csv(broken / "val_dataframe.csv")
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n broken")
    frame.loc[0, "image"] = str(bad)
    frame.to_csv(broken / "val_dataframe.csv", index=False)
    split = load_split(broken, "val", effective_recipe(TASK, image_size=32), ["label"], show_progress=False)
    assert len(split.paths) == len(frame) - 1 and split.images.shape == (len(frame) - 1, 32, 32)
    assert split.skipped == [
        {"image": str(bad), "reason": f"{bad}: unreadable image (cannot identify image file {str(bad)!r})"}
    ]


def error_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("Error: ")]


@pytest.mark.parametrize(
    "name, content",
    [
        ("random.pt", bytes(range(256)) * 4),
        ("notes.pt", b"these are not weights\n"),
        ("list.pt", None),
        ("weights.safetensors", b"not safetensors either"),
    ],
)
def test_pretrained_file_that_is_no_weights(r2l, dataset, tmp_path, name, content):
    weights = tmp_path / name
    if content is None:
        torch.save([1, 2, 3], weights)
    else:
        weights.write_bytes(content)
    run = tmp_path / "run"
    result = r2l("train", "ankle-fracture", dataset, "-o", run, "--pretrained", weights, "--epochs", "1", *FAST)
    assert result.exit_code == 1
    assert error_lines(result.output) == [
        f"Error: {weights}: not a checkpoint or weights file (expected a state dict of tensors)"
    ]
    assert not run.exists()


def test_failed_start_leaves_no_run_folder(r2l, dataset, tmp_path):
    run = tmp_path / "run"
    missing = r2l("train", "ankle-fracture", tmp_path / "nowhere", "-o", run, *FAST)
    assert missing.exit_code == 1
    assert error_lines(missing.output) == [
        f"Error: {tmp_path / 'nowhere'}: no dataset.json; write the data set with r2l dataset first"
    ]
    bare = tmp_path / "bare"
    bare.mkdir()
    shutil.copy(dataset / "dataset.json", bare / "dataset.json")
    no_splits = r2l("train", "ankle-fracture", bare, "-o", run, *FAST)
    assert no_splits.exit_code == 1
    assert error_lines(no_splits.output) == [
        f"Error: {bare / 'train_dataframe.csv'}: no such file; is {bare} a data set written by r2l dataset?"
    ]
    assert not run.exists()


def test_rewritten_dataset_is_never_read_from_a_stale_cache(r2l, labelled_example, tmp_path):
    """r2l dataset --force with another seed, then r2l train in the same folder: the new split is trained."""
    ds = tmp_path / "ds"
    args = [
        "dataset",
        "ankle-fracture",
        "--labels",
        labelled_example / "labels" / "labels.csv",
        "--images",
        labelled_example / "example" / "images.csv",
        "-o",
        ds,
    ]
    assert r2l(*args, "--seed", "1").exit_code == 0
    recipe = effective_recipe(TASK, image_size=32)
    old = load_split(ds, "train", recipe, ["label"], show_progress=False).paths
    assert r2l(*args, "--seed", "7", "--force").exit_code == 0
    new = pd.read_csv(ds / "train_dataframe.csv")["image"].tolist()
    assert sorted(new) != sorted(old)
    assert not (ds / "cache").exists(), "--force clears the cache"
    trained = r2l("train", "ankle-fracture", ds, "-o", tmp_path / "run", "--epochs", "1", *FAST)
    assert trained.exit_code == 0, trained.output
    cached = sorted(p.name for p in (ds / "cache" / recipe.preprocessing_hash).iterdir())
    assert [name.split("-")[0] for name in cached] == ["train", "train", "val", "val"]
    assert load_split(ds, "train", recipe, ["label"], show_progress=False).paths == new
