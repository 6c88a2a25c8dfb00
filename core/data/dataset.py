"""Labels + images → a training set split by patient, in the study's CSV format.

Writes ``train_dataframe.csv``, ``val_dataframe.csv`` and ``test_dataframe.csv`` (columns
``image`` and ``label``, or one column per label for multi-label tasks, then ``report_id`` and
``patient_id``) and ``dataset.json`` with the counts per split and class, the seed and what was
dropped. No patient is in two splits; validation and test are balanced by under-sampling the
majority class when the recipe says so (binary tasks).
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import pandas as pd
from pydantic import TypeAdapter, ValidationError

from .. import registry
from ..atomic import atomic_path, sweep
from ..errors import R2LError
from ..hashing import file_sha256
from ..reports import IMAGES_HINT, LABELS_HINT, read_table, require_columns
from ..task import TaskSpec
from .folder import SPLITS, DatasetFolder


@dataclass(frozen=True)
class DatasetSummary:
    directory: Path
    counts: dict[str, dict[str, int]]
    dropped: dict[str, int]


def label_columns(task: TaskSpec) -> list[str]:
    """The label column(s) of the data set files: ``label`` for a one-label task, else the label names."""
    return ["label"] if len(task.labels) == 1 else list(task.labels)


def _labelled_images(task: TaskSpec, labels: Path, images: Path, skip_missing: bool) -> tuple[pd.DataFrame, dict]:
    ours = read_table(labels, ("report_id",))
    require_columns(ours, labels, dict.fromkeys(("report_id", "status"), LABELS_HINT))
    missing = [name for name in task.labels if name not in ours.columns]
    if missing:
        raise R2LError(f"{labels}: no column {missing[0]!r} of task {task.name!r}; is this a labels file of that task?")
    dropped = {"failed_reports": int((ours["status"] != "labelled").sum())}
    ours = ours[ours["status"] == "labelled"]
    _check_label_values(task, ours, labels)
    table = read_table(images, ("report_id", "patient_id"))
    require_columns(table, images, dict.fromkeys(("image", "report_id", "patient_id"), IMAGES_HINT))
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


def _cell(value: Any) -> Any:
    """A table cell as the answer model sees it: a text cell read as JSON, 1.0 as 1, a gap as None."""
    value = value.item() if isinstance(value, np.generic) else value
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return value
    if isinstance(value, float):
        return None if np.isnan(value) else int(value) if value.is_integer() else value
    return value


def _check_label_values(task: TaskSpec, labelled: pd.DataFrame, path: Path) -> None:
    """Refuse a labelled row whose label is not a valid answer of the task's answer model, naming the row."""
    for name in task.labels:
        field = task.answer_model.model_fields[name]
        adapter = TypeAdapter(Annotated[field.annotation, field])
        reasons: dict[Any, str | None] = {}
        for row, value in zip(labelled.index, map(_cell, labelled[name]), strict=True):
            if value not in reasons:
                try:
                    adapter.validate_python(value)
                    reasons[value] = None
                except ValidationError as exc:
                    reasons[value] = exc.errors()[0]["msg"].removeprefix("Value error, ")
            if reasons[value]:
                raise R2LError(
                    f"{path}: row {row + 1}: {name} = {value!r} is not an answer of task {task.name!r} "
                    f"({reasons[value]})"
                )


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
    folder = DatasetFolder(outdir)
    if folder.info.exists() and not force:
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
    sweep(outdir)
    shutil.rmtree(folder.cache, ignore_errors=True)
    for split, part in splits.items():
        with atomic_path(folder.split(split)) as tmp:
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
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    with atomic_path(folder.info) as tmp:
        tmp.write_text(json.dumps(info, indent=2))
    return DatasetSummary(outdir, counts, dropped)
