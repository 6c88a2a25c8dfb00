"""Labels + images → a training set split by patient, in the study's CSV format.

Writes ``train_dataframe.csv``, ``val_dataframe.csv`` and ``test_dataframe.csv`` (columns
``image`` and ``label``, or one column per label for multi-label tasks, then ``report_id`` and
``patient_id``) and ``dataset.json`` with the counts per split and class, the seed, the uncertainty
policy and what was dropped. Four-state labels become training targets through the policy
(:func:`~report2label.core.task.training_value`); ``ignore`` leaves an uncertain finding's cell
empty, which training and evaluation mask. No patient is in two splits; validation and test are
balanced by under-sampling the majority class when the recipe says so (binary tasks).
"""

from __future__ import annotations

import json
import logging
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
from ..task import UNCERTAIN_POLICIES, TaskSpec, UncertainPolicy, training_value
from .folder import SPLITS, DatasetFolder

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DatasetSummary:
    directory: Path
    counts: dict[str, dict[str, int]]
    dropped: dict[str, int]
    warnings: list[str]


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


def _label_adapter(task: TaskSpec, name: str) -> TypeAdapter:
    """Validates one label's value: an answer field as declared, a computed field (``normal``) by its return type."""
    field = task.answer_model.model_fields.get(name)
    if field is not None:
        return TypeAdapter(Annotated[field.annotation, field])
    return TypeAdapter(task.answer_model.model_computed_fields[name].return_type)


def _check_label_values(task: TaskSpec, labelled: pd.DataFrame, path: Path) -> None:
    """Refuse a labelled row whose label is not a valid answer of the task's answer model, naming the row."""
    for name in task.labels:
        adapter = _label_adapter(task, name)
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


def _targets(column: pd.Series, policy: UncertainPolicy) -> pd.Series:
    """A label column as training targets: 0/1, empty (masked) where ``ignore`` meets an uncertain finding."""
    values = [training_value(_cell(value), policy) for value in column]
    return pd.Series(values, index=column.index, dtype="float64").astype("Int64")


def _class_counts(part: pd.DataFrame, columns: list[str], masked: list[str]) -> dict[str, int]:
    """Images per class of each label column, and ``<label>=masked`` for the ``masked`` columns (alike per split)."""
    counts: dict[str, int] = {}
    for column in columns:
        counts[f"{column}=0"] = int((part[column] == 0).sum())
        counts[f"{column}=1"] = int((part[column] == 1).sum())
        if column in masked:
            counts[f"{column}=masked"] = int(part[column].isna().sum())
    return counts


def _one_class(split: str, part: pd.DataFrame, columns: list[str]) -> list[str]:
    """Why a label cannot be learnt or measured on ``split``: a message per column lacking a class."""
    problems = []
    for column in columns:
        classes = sorted(int(v) for v in part[column].dropna().unique())
        if len(classes) < 2:
            masked = int(part[column].isna().sum())
            images = f"{len(part)} images" + (f", {masked} masked" if masked else "")
            problems.append(f"split {split!r} has only class {classes} of {column!r} ({images})")
    return problems


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
    uncertain: UncertainPolicy = "ones",
) -> DatasetSummary:
    """Join ``labels`` (from ``r2l label``) to ``images`` (image, report_id, patient_id) and split by patient.

    ``uncertain`` says what an uncertain finding becomes: 1 (``ones``, CheXpert's U-Ones), 0
    (``zeros``) or an empty cell (``ignore``: masked in loss and metrics). A multi-label task may
    keep a label with one class in a split (a warning, in ``dataset.json``); a one-label task may not.
    """
    spec = registry.task(task) if isinstance(task, str) else task
    if uncertain not in UNCERTAIN_POLICIES:
        raise R2LError(f"--uncertain {uncertain!r}: choose one of {', '.join(UNCERTAIN_POLICIES)}")
    outdir = Path(outdir)
    folder = DatasetFolder(outdir)
    if folder.info.exists() and not force:
        raise R2LError(f"{outdir}: already holds a data set; choose another folder or pass --force")
    if not (0 < val_fraction < 1 and 0 < test_fraction < 1 and val_fraction + test_fraction < 1):
        raise R2LError("--val-fraction and --test-fraction must be in (0, 1) and sum to less than 1")
    frame, dropped = _labelled_images(spec, Path(labels), Path(images), skip_missing)
    columns = label_columns(spec)
    frame = frame.rename(columns={spec.labels[0]: "label"}) if columns == ["label"] else frame
    for column in columns:
        frame[column] = _targets(frame[column], uncertain)
    rng = np.random.default_rng(seed)
    frame["split"] = _split_patients(frame, (val_fraction, test_fraction), rng)
    recipe_balance = spec.recipe.balance_eval_splits if spec.recipe else True
    balance = recipe_balance if balance is None else balance
    splits, warnings = {}, []
    for split in SPLITS:
        part = frame[frame["split"] == split]
        if balance and split != "train" and columns == ["label"] and part["label"].nunique() == 2:
            dropped[f"{split}_balanced_away"] = len(part) - len(part := _balance(part, rng))
        problems = _one_class(split, part, columns)
        if problems and columns == ["label"]:
            raise R2LError(problems[0] + "; the data set is too small or too unbalanced for a patient split")
        warnings += problems
        splits[split] = part
    for warning in warnings:
        log.warning("%s: %s", outdir, warning)
    masked = [column for column in columns if frame[column].isna().any()]
    counts = {
        split: {
            "images": len(part),
            "patients": int(part["patient_id"].nunique()),
            **_class_counts(part, columns, masked),
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
        "uncertain": uncertain,
        "counts": counts,
        "dropped": dropped,
        "warnings": warnings,
        "sources": {"labels": str(labels), "images": str(images)},
        "inputs_sha256": {"labels": file_sha256(labels), "images": file_sha256(images)},
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    with atomic_path(folder.info) as tmp:
        tmp.write_text(json.dumps(info, indent=2))
    return DatasetSummary(outdir, counts, dropped, warnings)
