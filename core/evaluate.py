"""Evaluating a training run the way a radiology journal reports it.

The best checkpoint is applied to the validation split, where the decision threshold is chosen
(Youden's J, or the recipe's fixed value), and to the evaluated split: accuracy, ROC-AUC,
sensitivity, specificity, PPV, NPV, F1 and MCC with bootstrap 95% intervals, the confusion
matrix, per label, each on the label's known targets (a masked one, NaN, is left out). Several
labels add macro and micro AUC; a label with one class in the split is reported with an undefined
(NaN) AUC and a warning, where a one-label task stops. Writes ``metrics.json``, ``roc.png`` (a
curve per label) and ``<split>_predictions.csv``.
"""

from __future__ import annotations

import json
import logging
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
from .metrics import Confusion, Estimate, bootstrap_scores, multilabel_auc, youden_threshold
from .training.checkpoint import build_model, load_checkpoint
from .training.data import CachedImages
from .training.folder import RunFolder

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LabelResult:
    """One label's results on its ``n`` known targets (``masked`` left out); ``roc`` is None with one class."""

    label: str
    threshold: float
    metrics: dict[str, Estimate]
    confusion: Confusion
    roc: tuple[np.ndarray, np.ndarray] | None
    n: int
    masked: int


@dataclass(frozen=True)
class Evaluation:
    """``summary``: macro and micro AUC (several labels only); ``warnings``: what is undefined and why."""

    rundir: Path
    split: str
    images: int
    skipped: int
    labels: list[LabelResult]
    metrics_path: Path
    roc_path: Path
    summary: dict[str, Estimate]
    warnings: list[str]


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


def _threshold(rule: str | float, truth: np.ndarray, prob: np.ndarray, name: str, warnings: list[str]) -> float:
    """The recipe's fixed threshold, or Youden's J on validation; 0.5, with a warning, where J is undefined."""
    if rule != "youden":
        return float(rule)
    if len(np.unique(truth)) < 2:
        warnings.append(f"{name}: validation has one class ({len(truth)} known targets); threshold 0.5, not Youden's")
        return 0.5
    return youden_threshold(truth, prob)


def _label_result(name: str, threshold: float, labels: np.ndarray, prob: np.ndarray, n_boot: int) -> LabelResult:
    """One label's metrics on its known (non-NaN) targets; no ROC curve (and a NaN AUC) with one class."""
    from sklearn.metrics import roc_curve

    known = ~np.isnan(labels)
    truth, prob = labels[known].astype(int), prob[known]
    roc = None
    if len(np.unique(truth)) == 2:
        fpr, tpr, _ = roc_curve(truth, prob)
        roc = (fpr, tpr)
    metrics = bootstrap_scores(truth, prob, threshold, n_boot=n_boot)
    confusion = Confusion.of(truth, prob >= threshold)
    return LabelResult(name, threshold, metrics, confusion, roc, int(known.sum()), int((~known).sum()))


def _predictions(paths: list[str], labels: np.ndarray, prob: np.ndarray, results: list[LabelResult]) -> pd.DataFrame:
    """Per image and label: the target (empty where masked), the probability and the decision."""
    table = pd.DataFrame({"image": paths})
    for i, result in enumerate(results):
        table[f"{result.label}_true"] = pd.array(labels[:, i], dtype="Float64").astype("Int64")
        table[f"{result.label}_probability"] = prob[:, i]
        table[f"{result.label}_decision"] = (prob[:, i] >= result.threshold).astype(int)
    return table


def _plot(results: list[LabelResult], summary: dict[str, Estimate], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    many = len(results) > 1
    figure, axes = plt.subplots(figsize=(7, 7) if many else (5, 5))
    for result in results:
        if result.roc is None:
            continue
        auc = result.metrics["auc"]
        axes.plot(*result.roc, label=f"{result.label}: AUC {auc.value:.3f} (95% CI {auc.low:.3f}–{auc.high:.3f})")
    if summary:
        title += "\n" + ", ".join(f"{name.replace('_', ' ')} {est.value:.3f}" for name, est in summary.items())
    axes.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1)
    axes.set(xlabel="1 - specificity", ylabel="sensitivity", title=title, xlim=(0, 1), ylim=(0, 1.01))
    axes.legend(loc="lower right", fontsize=6 if many else 8)
    figure.tight_layout()
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=120)
    plt.close(figure)


def evaluate(rundir: str | Path, split: str = "test", *, n_boot: int = 1000, show_progress: bool = True) -> Evaluation:
    """Evaluate the best checkpoint of ``rundir`` on ``split``; the thresholds come from validation."""
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
    single, results, warnings = columns == ["label"], [], []
    for i, column in enumerate(columns):
        name = task.labels[0] if single else column
        known = ~np.isnan(val.labels[:, i])
        threshold = _threshold(recipe.threshold, val.labels[known, i], val_prob[known, i], name, warnings)
        result = _label_result(name, threshold, target.labels[:, i], prob[:, i], n_boot)
        if result.roc is None and single:
            raise R2LError(f"split {split!r} has only one class of {name!r}; ROC-AUC is undefined")
        if result.roc is None:
            warnings.append(f"{name}: split {split!r} has one class in {result.n} known targets; AUC is undefined")
        results.append(result)
    summary = {} if single else multilabel_auc(target.labels, prob, n_boot=n_boot)
    for warning in warnings:
        log.warning("%s: %s", rundir, warning)
    sweep(rundir)
    with atomic_path(folder.predictions(split)) as tmp:
        _predictions(target.paths, target.labels, prob, results).to_csv(tmp, index=False)
    report = {
        "task": task.name,
        "split": split,
        "images": len(target.paths),
        "skipped_images": len(target.skipped),
        "checkpoint_epoch": state["epoch"] + 1,
        "threshold_rule": recipe.threshold,
        "bootstrap": n_boot,
        **{name: est.as_dict() for name, est in summary.items()},
        "warnings": warnings,
        "labels": {
            r.label: {
                "threshold": r.threshold,
                "n": r.n,
                "masked": r.masked,
                "confusion": vars(r.confusion),
                "metrics": {k: v.as_dict() for k, v in r.metrics.items()},
            }
            for r in results
        },
    }
    with atomic_path(folder.metrics) as tmp:
        tmp.write_text(json.dumps(report, indent=2))
    _plot(results, summary, folder.roc, f"{task.name}: {split} ({len(target.paths)} images)")
    return Evaluation(
        rundir, split, len(target.paths), len(target.skipped), results, folder.metrics, folder.roc, summary, warnings
    )
