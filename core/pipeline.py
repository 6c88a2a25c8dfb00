"""The whole study as one TOML file: label → dataset → train → evaluate → export, behind ``r2l run``.

The file is validated whole — keys, values and every name it gives (task, backend and its
options, prompt, trainer) — before any step runs or torch is imported. Each step's outputs live
in the pipeline's work folder; a step whose outputs are complete and match its inputs is skipped,
an interrupted one resumes (labelling from its store, training from ``last.pt``), a stale one is
redone. Paths in the file are relative to the file.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from . import registry
from .data.dataset import build_dataset
from .data.folder import DatasetFolder
from .errors import NothingUsable, R2LError
from .hashing import file_sha256
from .image_model import ImageModelSpec
from .labelling import label
from .labelling.agreement import eval_labels
from .labelling.engine import build_options
from .model_card import card_path
from .prompt_file import with_prompt_file
from .task import UncertainPolicy
from .training.folder import RunFolder
from .training.recipe import effective_recipe


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ReportsConfig(Section):
    path: Path
    id_col: str = "report_id"
    text_col: str = "text"
    gold_col: str | None = Field(
        None,
        description="Gold labels in the reports table, so that label accuracy is measured: the column of a "
        "one-label task, or 'auto' (gold_<label>, <label>_gold or <label> columns, as r2l eval-labels finds them).",
    )


class ImagesConfig(Section):
    path: Path = Field(description="Table with image, report_id, patient_id.")


class LabelConfig(Section):
    backend: str = "rules"
    model: str | None = None
    options: dict[str, Any] = {}
    prompt: str | None = None
    prompt_file: Path | None = Field(None, description="TOML file of further prompt variants.")
    max_attempts: int = Field(3, ge=1)
    batch_size: int | None = Field(None, ge=1)
    allow_remote: bool = False


class DatasetConfig(Section):
    val_fraction: float = 0.15
    test_fraction: float = 0.15
    balance: bool | None = None
    seed: int = 0
    skip_missing: bool = False
    uncertain: UncertainPolicy = Field("ones", description="An uncertain finding becomes 1, 0 or no target.")


class TrainConfig(Section):
    device: str = "cpu"
    epochs: int | None = Field(None, ge=1)
    image_size: int | None = Field(None, ge=16)
    batch_size: int | None = Field(None, ge=1)
    lr: float | None = Field(None, gt=0)
    pretrained: Path | None = None
    seed: int = 0


class ExportConfig(Section):
    output: Path = Path("model.onnx")
    quantize: bool = False
    atol: float = Field(1e-4, gt=0)


class Pipeline(Section):
    task: str
    workdir: Path = Path(".")
    reports: ReportsConfig
    images: ImagesConfig
    label: LabelConfig = LabelConfig()
    dataset: DatasetConfig = DatasetConfig()
    train: TrainConfig = TrainConfig()
    export: ExportConfig = ExportConfig()


@dataclass
class PipelineSummary:
    steps: dict[str, str] = field(default_factory=dict)
    labelled: int = 0
    failed: int = 0
    label_accuracy: dict[str, float] | None = None
    test_auc: dict[str, float] | None = None
    model: Path | None = None
    card: Path | None = None


def load_pipeline(path: str | Path) -> Pipeline:
    """Read and validate a pipeline file; errors name the key."""
    path = Path(path)
    if not path.is_file():
        raise R2LError(f"{path}: no such file")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise R2LError(f"{path}: not valid TOML ({exc})") from None
    try:
        pipeline = Pipeline.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        raise R2LError(f"{path}: {'.'.join(map(str, err['loc']))}: {err['msg']}") from None
    base = path.parent
    updates = {"workdir": base / pipeline.workdir}
    pipeline = pipeline.model_copy(update=updates)
    pipeline.reports.path = base / pipeline.reports.path
    pipeline.images.path = base / pipeline.images.path
    if pipeline.train.pretrained:
        pipeline.train.pretrained = base / pipeline.train.pretrained
    if pipeline.label.prompt_file:
        pipeline.label.prompt_file = base / pipeline.label.prompt_file
    pipeline.export.output = pipeline.workdir / pipeline.export.output
    _check_names(pipeline, path)
    return pipeline


def _label_options(config: LabelConfig) -> dict[str, Any]:
    """The backend options as ``r2l label`` would pass them: ``options``, ``model`` and ``allow_remote``."""
    options = dict(config.options) | ({"model": config.model} if config.model else {})
    return options | ({"allow_remote": True} if config.allow_remote else {})


def _recipe(pipeline: Pipeline) -> ImageModelSpec:
    t = pipeline.train
    task = registry.task(pipeline.task)
    return effective_recipe(task, epochs=t.epochs, image_size=t.image_size, batch_size=t.batch_size, lr=t.lr)


@contextmanager
def _key(path: Path, key: str) -> Iterator[None]:
    """Prefix an error with the file and the key it concerns."""
    try:
        yield
    except R2LError as exc:
        raise R2LError(f"{path}: {key}: {exc}") from None


def _check_names(pipeline: Pipeline, path: Path) -> None:
    """Resolve every name the file gives: task, backend, its options, prompt, trainer, recipe overrides."""
    with _key(path, "task"):
        task = registry.task(pipeline.task)
    with _key(path, "label.backend"):
        backend = registry.labeler(pipeline.label.backend)
    with _key(path, "label.options"):
        build_options(backend, _label_options(pipeline.label))
    with _key(path, "label.prompt_file"):
        task = with_prompt_file(task, pipeline.label.prompt_file)
    with _key(path, "label.prompt"):
        task.prompt(pipeline.label.prompt)
    with _key(path, "train.device"):
        registry.trainer(pipeline.train.device)
    with _key(path, "train"):
        _recipe(pipeline)


def _dataset_current(folder: Path, labels: Path, images: Path, uncertain: str) -> bool:
    """Whether the data set was written from these labels and images with this uncertainty policy."""
    info_path = DatasetFolder(folder).info
    if not info_path.is_file():
        return False
    info = json.loads(info_path.read_text())
    hashes = info.get("inputs_sha256", {})
    same_inputs = hashes.get("labels") == file_sha256(labels) and hashes.get("images") == file_sha256(images)
    return same_inputs and info.get("uncertain", "ones") == uncertain


def _train_state(rundir: Path, dataset: Path, recipe: dict) -> str:
    """'finished', 'resume' or 'fresh' for a run folder against the current data set and recipe."""
    folder = RunFolder(rundir)
    if not folder.info.is_file():
        return "fresh"
    run = json.loads(folder.info.read_text())
    if run.get("dataset_sha256") != file_sha256(DatasetFolder(dataset).info) or run.get("recipe") != recipe:
        return "fresh"
    if run.get("status") == "finished":
        return "finished"
    return "resume" if folder.last.is_file() else "fresh"


def _newer(path: Path, *than: Path) -> bool:
    return path.is_file() and all(path.stat().st_mtime >= other.stat().st_mtime for other in than)


def run_pipeline(
    path: str | Path, show_progress: bool = True, announce: Callable[[str], None] = lambda message: None
) -> PipelineSummary:
    """Perform every step of the pipeline file at ``path`` that is not complete already.

    Raises :class:`NothingUsable` when labelling leaves no labelled report.
    """
    p = load_pipeline(path)
    task = registry.task(p.task)
    work = p.workdir
    labels_dir, dataset_dir, rundir = work / "labels", work / "dataset", work / "run"
    run = RunFolder(rundir)
    summary = PipelineSummary()

    announce("[1/5] label")
    labelled = label(
        task,
        p.reports.path,
        labels_dir,
        backend=p.label.backend,
        options=_label_options(p.label),
        prompt=p.label.prompt,
        prompt_file=p.label.prompt_file,
        id_col=p.reports.id_col,
        text_col=p.reports.text_col,
        batch_size=p.label.batch_size,
        max_attempts=p.label.max_attempts,
        show_progress=show_progress,
    )
    summary.labelled, summary.failed = labelled.labelled, labelled.failed
    summary.steps["label"] = f"{labelled.labelled} labelled, {labelled.failed} failed, {labelled.asked} asked"
    labels_csv = labelled.output
    if not labelled.labelled:
        reason = next(iter(labelled.failure_reasons), "no reason recorded")
        raise NothingUsable(
            f"{labels_csv}: labelling left no labelled report ({labelled.failed} failed: {reason}); nothing to train on"
        )
    if p.reports.gold_col:
        agreement = eval_labels(
            labels_csv,
            p.reports.path,
            id_col=p.reports.id_col,
            gold_col=None if p.reports.gold_col == "auto" else p.reports.gold_col,
            text_col=p.reports.text_col,
        )
        summary.label_accuracy = {r.label: r.metrics["accuracy"].value for r in agreement.labels}

    announce("[2/5] dataset")
    if _dataset_current(dataset_dir, labels_csv, p.images.path, p.dataset.uncertain):
        summary.steps["dataset"] = "skipped (up to date)"
    else:
        d = p.dataset
        build_dataset(
            task,
            labels_csv,
            p.images.path,
            dataset_dir,
            val_fraction=d.val_fraction,
            test_fraction=d.test_fraction,
            balance=d.balance,
            seed=d.seed,
            skip_missing=d.skip_missing,
            force=True,
            uncertain=d.uncertain,
        )
        summary.steps["dataset"] = "written"

    announce("[3/5] train")
    from .training.loop import train  # torch is imported only once the file is valid and a model is due

    t = p.train
    state = _train_state(rundir, dataset_dir, _recipe(p).model_dump(mode="json"))
    if state == "finished":
        summary.steps["train"] = "skipped (finished)"
    else:
        train(
            task,
            dataset_dir,
            rundir,
            trainer=t.device,
            epochs=t.epochs,
            image_size=t.image_size,
            batch_size=t.batch_size,
            lr=t.lr,
            pretrained=t.pretrained,
            resume=state == "resume",
            force=state == "fresh",
            seed=t.seed,
            show_progress=show_progress,
        )
        summary.steps["train"] = "resumed" if state == "resume" else "trained"

    announce("[4/5] evaluate")
    from .evaluate import evaluate

    if _newer(run.metrics, run.best):
        summary.steps["evaluate"] = "skipped (up to date)"
    else:
        evaluate(rundir, show_progress=show_progress)
        summary.steps["evaluate"] = "evaluated"
    report = json.loads(run.metrics.read_text())
    summary.test_auc = {name: values["metrics"]["auc"]["value"] for name, values in report["labels"].items()}
    if "macro_auc" in report:
        summary.test_auc["macro"] = report["macro_auc"]["value"]

    announce("[5/5] export")
    from .export import export

    output = p.export.output
    card = card_path(output)
    if _newer(output, run.metrics) and _newer(card, run.metrics):
        summary.steps["export"] = "skipped (up to date)"
    else:
        export(rundir, output, quantize=p.export.quantize, atol=p.export.atol)
        summary.steps["export"] = "exported"
    summary.model, summary.card = output, card
    return summary
