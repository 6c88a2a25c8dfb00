"""Evaluating a training run the way a radiology journal reports it.

The best checkpoint is applied to the validation split, where the decision threshold is chosen
(Youden's J, or the recipe's fixed value), and to the evaluated split: accuracy, ROC-AUC,
sensitivity, specificity, PPV, NPV, F1 and MCC with bootstrap 95% intervals, the confusion
matrix, per label. Writes ``metrics.json``, ``roc.png`` and ``<split>_predictions.csv``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader

from . import registry
from .atomic import atomic_path, sweep
from .data.cache import load_split
from .errors import R2LError
from .image_model import ImageModelSpec
from .metrics import Confusion, Estimate, bootstrap_scores, youden_threshold
from .training.checkpoint import build_model, load_checkpoint
from .training.data import CachedImages
from .training.folder import RunFolder


@dataclass(frozen=True)
class LabelResult:
    label: str
    threshold: float
    metrics: dict[str, Estimate]
    confusion: Confusion
    roc: tuple[np.ndarray, np.ndarray]


@dataclass(frozen=True)
class Evaluation:
    rundir: Path
    split: str
    images: int
    skipped: int
    labels: list[LabelResult]
    metrics_path: Path
    roc_path: Path


def load_run(rundir: Path) -> tuple[dict, ImageModelSpec]:
    """The record of a finished training run and its effective recipe."""
    path = RunFolder(rundir).info
    if not path.is_file():
        raise R2LError(f"{rundir}: no run.json; is this a finished r2l train run?")
    run = json.loads(path.read_text())
    if run.get("status") != "finished":
        raise R2LError(f"{rundir}: the training run has not finished; continue it with r2l train --resume")
    return run, ImageModelSpec.model_validate(run["recipe"])


def probabilities(model: torch.nn.Module, split, recipe: ImageModelSpec, batch_size: int = 32) -> np.ndarray:
    loader = DataLoader(CachedImages(split, recipe, train=False), batch_size=batch_size, shuffle=False)
    model.eval()
    with torch.no_grad():
        return np.concatenate([torch.sigmoid(model(images)).numpy() for images, _ in loader])


def _plot(results: list[LabelResult], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(5, 5))
    for result in results:
        auc = result.metrics["auc"]
        axes.plot(*result.roc, label=f"{result.label}: AUC {auc.value:.3f} (95% CI {auc.low:.3f}–{auc.high:.3f})")
    axes.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1)
    axes.set(xlabel="1 - specificity", ylabel="sensitivity", title=title, xlim=(0, 1), ylim=(0, 1.01))
    axes.legend(loc="lower right", fontsize=8)
    figure.tight_layout()
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=120)
    plt.close(figure)


def evaluate(rundir: str | Path, split: str = "test", *, n_boot: int = 1000, show_progress: bool = True) -> Evaluation:
    """Evaluate the best checkpoint of ``rundir`` on ``split``; the threshold comes from validation."""
    from sklearn.metrics import roc_curve

    rundir = Path(rundir)
    run, recipe = load_run(rundir)
    folder = RunFolder(rundir)
    task = registry.task(run["task"])
    columns = run["label_columns"]
    state = load_checkpoint(folder.best, task, recipe, columns)
    model = build_model(recipe, len(columns))
    model.load_state_dict(state["model"])
    dataset = Path(run["dataset"])
    val = load_split(dataset, "val", recipe, columns, show_progress)
    target = load_split(dataset, split, recipe, columns, show_progress)
    val_prob, prob = probabilities(model, val, recipe), probabilities(model, target, recipe)
    results = []
    for i, column in enumerate(columns):
        name = task.labels[i] if columns == ["label"] else column
        threshold = (
            youden_threshold(val.labels[:, i], val_prob[:, i])
            if recipe.threshold == "youden"
            else float(recipe.threshold)
        )
        truth = target.labels[:, i].astype(int)
        if len(np.unique(truth)) < 2:
            raise R2LError(f"split {split!r} has only one class of {name!r}; ROC-AUC is undefined")
        fpr, tpr, _ = roc_curve(truth, prob[:, i])
        results.append(
            LabelResult(
                name,
                threshold,
                bootstrap_scores(truth, prob[:, i], threshold, n_boot=n_boot),
                Confusion.of(truth, prob[:, i] >= threshold),
                (fpr, tpr),
            )
        )
    predictions = pd.DataFrame({"image": target.paths})
    for i, result in enumerate(results):
        predictions[f"{result.label}_true"] = target.labels[:, i].astype(int)
        predictions[f"{result.label}_probability"] = prob[:, i]
        predictions[f"{result.label}_decision"] = (prob[:, i] >= result.threshold).astype(int)
    sweep(rundir)
    with atomic_path(folder.predictions(split)) as tmp:
        predictions.to_csv(tmp, index=False)
    report = {
        "task": task.name,
        "split": split,
        "images": len(target.paths),
        "skipped_images": len(target.skipped),
        "checkpoint_epoch": state["epoch"] + 1,
        "threshold_rule": recipe.threshold,
        "bootstrap": n_boot,
        "labels": {
            r.label: {
                "threshold": r.threshold,
                "confusion": vars(r.confusion),
                "metrics": {k: v.as_dict() for k, v in r.metrics.items()},
            }
            for r in results
        },
    }
    with atomic_path(folder.metrics) as tmp:
        tmp.write_text(json.dumps(report, indent=2))
    _plot(results, folder.roc, f"{task.name}: {split} ({len(target.paths)} images)")
    return Evaluation(rundir, split, len(target.paths), len(target.skipped), results, folder.metrics, folder.roc)
