"""Labels + images → a training set split by patient, in the study's CSV format.

Writes ``train_dataframe.csv``, ``val_dataframe.csv`` and ``test_dataframe.csv`` (columns
``image`` and ``label``, or one column per label for multi-label tasks, then ``report_id`` and
``patient_id``) and ``dataset.json`` with the counts per split and class, the seed and what was
dropped. No patient is in two splits; validation and test are balanced by under-sampling the
majority class when the recipe says so (binary tasks).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from .. import registry
from ..atomic import atomic_path
from ..errors import R2LError
from ..hashing import file_sha256
from ..reports import read_table, require_columns
from ..task import TaskSpec

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class DatasetSummary:
    directory: Path
    counts: dict[str, dict[str, int]]
    dropped: dict[str, int]


def split_file(directory: Path, split: str) -> Path:
    return Path(directory) / f"{split}_dataframe.csv"


def label_columns(task: TaskSpec) -> list[str]:
    """The label column(s) of the data set files: ``label`` for a one-label task, else the label names."""
    return ["label"] if len(task.labels) == 1 else list(task.labels)


def _labelled_images(task: TaskSpec, labels: Path, images: Path, skip_missing: bool) -> tuple[pd.DataFrame, dict]:
    ours = read_table(labels, ("report_id",))
    require_columns(ours, labels, {"report_id": "r2l label", "status": "r2l label"})
    missing = [name for name in task.labels if name not in ours.columns]
    if missing:
        raise R2LError(f"{labels}: no column {missing[0]!r} of task {task.name!r}; is this a labels file of that task?")
    dropped = {"failed_reports": int((ours["status"] != "labelled").sum())}
    ours = ours[ours["status"] == "labelled"]
    table = read_table(images, ("report_id", "patient_id"))
    require_columns(table, images, {"image": "the images table", "report_id": "it", "patient_id": "it"})
    paths = table["image"].astype(str).map(lambda p: (images.parent / p).resolve())
    exists = paths.map(Path.is_file)
    if not exists.all():
        first = int((~exists).to_numpy().nonzero()[0][0])
        message = (
            f"{images}: {int((~exists).sum())} of {len(table)} image paths do not exist "
            f"(first: row {first + 1}, {table['image'].iloc[first]})"
        )
        if not skip_missing:
            raise R2LError(message + "; fix the table or pass --skip-missing")
        dropped["missing_images"] = int((~exists).sum())
    table = table.assign(image=paths.astype(str))[exists.to_numpy()].drop_duplicates("image")
    joined = table.merge(ours[["report_id", *task.labels]], on="report_id", how="inner")
    dropped["images_without_label"] = len(table) - len(joined)
    if joined.empty:
        raise R2LError(f"no image of {images} has a label in {labels} (matched on report_id)")
    return joined, dropped


def _split_patients(frame: pd.DataFrame, fractions: tuple[float, float], rng: np.random.Generator) -> pd.Series:
    patients = np.array(frame["patient_id"].unique(), dtype=object)
    rng.shuffle(patients)
    sizes = frame.groupby("patient_id").size()
    targets = {"test": fractions[1] * len(frame), "val": fractions[0] * len(frame)}
    assignment, filled, current = {}, 0, "test"
    for patient in patients:
        if current != "train" and filled >= targets[current]:
            current, filled = ("val", 0) if current == "test" else ("train", 0)
        assignment[patient] = current
        filled += sizes[patient]
    return frame["patient_id"].map(assignment)


def _balance(frame: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    groups = [group for _, group in frame.groupby("label")]
    n = min(len(g) for g in groups)
    keep = [g.iloc[np.sort(rng.choice(len(g), n, replace=False))] for g in groups]
    return pd.concat(keep).sort_index()


def build_dataset(
    task: str | TaskSpec,
    labels: str | Path,
    images: str | Path,
    outdir: str | Path,
    *,
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
    balance: bool | None = None,
    seed: int = 0,
    skip_missing: bool = False,
    force: bool = False,
) -> DatasetSummary:
    """Join ``labels`` (from ``r2l label``) to ``images`` (image, report_id, patient_id) and split by patient."""
    spec = registry.task(task) if isinstance(task, str) else task
    outdir = Path(outdir)
    if (outdir / "dataset.json").exists() and not force:
        raise R2LError(f"{outdir}: already holds a data set; choose another folder or pass --force")
    if not (0 < val_fraction < 1 and 0 < test_fraction < 1 and val_fraction + test_fraction < 1):
        raise R2LError("--val-fraction and --test-fraction must be in (0, 1) and sum to less than 1")
    frame, dropped = _labelled_images(spec, Path(labels), Path(images), skip_missing)
    columns = label_columns(spec)
    frame = frame.rename(columns={spec.labels[0]: "label"}) if columns == ["label"] else frame
    frame[columns] = frame[columns].astype(int)
    rng = np.random.default_rng(seed)
    frame["split"] = _split_patients(frame, (val_fraction, test_fraction), rng)
    recipe_balance = spec.recipe.balance_eval_splits if spec.recipe else True
    balance = recipe_balance if balance is None else balance
    splits = {}
    for split in SPLITS:
        part = frame[frame["split"] == split]
        if balance and split != "train" and columns == ["label"] and part["label"].nunique() == 2:
            dropped[f"{split}_balanced_away"] = len(part) - len(part := _balance(part, rng))
        for column in columns:
            if part[column].nunique() < 2:
                classes = sorted(part[column].unique().tolist())
                raise R2LError(
                    f"split {split!r} has only class {classes} of {column!r} ({len(part)} images); "
                    "the data set is too small or too unbalanced for a patient split"
                )
        splits[split] = part
    counts = {
        split: {
            "images": len(part),
            "patients": int(part["patient_id"].nunique()),
            **{f"{c}={v}": int(n) for c in columns for v, n in part[c].value_counts().sort_index().items()},
        }
        for split, part in splits.items()
    }
    outdir.mkdir(parents=True, exist_ok=True)
    for split, part in splits.items():
        with atomic_path(split_file(outdir, split)) as tmp:
            part[["image", *columns, "report_id", "patient_id"]].to_csv(tmp, index=False)
    info = {
        "task": spec.name,
        "task_version": spec.version,
        "labels": list(spec.labels),
        "label_columns": columns,
        "seed": seed,
        "val_fraction": val_fraction,
        "test_fraction": test_fraction,
        "balanced": balance,
        "counts": counts,
        "dropped": dropped,
        "sources": {"labels": str(labels), "images": str(images)},
        "inputs_sha256": {"labels": file_sha256(labels), "images": file_sha256(images)},
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    with atomic_path(outdir / "dataset.json") as tmp:
        tmp.write_text(json.dumps(info, indent=2))
    return DatasetSummary(outdir, counts, dropped)
