"""ONNX export of a training run, proven equal to PyTorch before anything is written.

The best checkpoint is exported with a dynamic batch axis and the sigmoid inside (the output
``probability`` is [batch, labels]: a probability per label, in the order of ``r2l.labels``),
checked with the ONNX checker, and run by ONNX Runtime on real images of the run's test split:
probabilities must agree with PyTorch within ``atol`` and every decision at its label's threshold
must be identical, or nothing is written. The file's metadata carries what a consumer needs
(labels, per-label thresholds, preprocessing, input size, versions); ``MODEL.md`` beside it is
the model card.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

import numpy as np
import torch

from . import registry
from .atomic import atomic_path, sweep
from .data.cache import load_split
from .data.preprocess import model_input
from .errors import R2LError
from .evaluate import evaluate, load_run
from .image_model import ImageModelSpec
from .model_card import write_model_card
from .onnx_rewrite import pool_first
from .predict import session_for
from .quantize import Quantized
from .quantize import quantize as quantize_int8
from .training.checkpoint import build_model, load_checkpoint
from .training.folder import RunFolder

PREFIX = "r2l."


@dataclass(frozen=True)
class Parity:
    images: int
    max_abs_diff: float
    decisions_differ: int


@dataclass(frozen=True)
class ExportSummary:
    path: Path
    card: Path
    parity: Parity
    metadata: dict[str, str]
    quantized: Quantized | None


class WithSigmoid(torch.nn.Module):
    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.model(image))


def recipe_hash(recipe: ImageModelSpec) -> str:
    return hashlib.sha256(recipe.model_dump_json().encode()).hexdigest()[:12]


def parity(session, model: torch.nn.Module, images: np.ndarray, thresholds: list[float]) -> Parity:
    """Compare ONNX Runtime with PyTorch on ``images``: max |Δp| and how many decisions differ."""
    with torch.no_grad():
        expected = model(torch.from_numpy(images)).numpy()
    got = session.run(None, {session.get_inputs()[0].name: images})[0]
    limits = np.asarray(thresholds, dtype=np.float32)
    return Parity(
        len(images),
        float(np.abs(got - expected).max()),
        int(((got >= limits) != (expected >= limits)).any(axis=1).sum()),
    )


def _metadata(run: dict, recipe: ImageModelSpec, labels: list[str], thresholds: list[float]) -> dict[str, str]:
    values = {
        "task": run["task"],
        "task_version": run["task_version"],
        "labels": json.dumps(labels),
        "thresholds": json.dumps(thresholds),
        "input_size": str(recipe.image_size),
        "in_chans": str(recipe.in_chans),
        "preprocessing": recipe.preprocessing.model_dump_json(),
        "recipe_hash": recipe_hash(recipe),
        "architecture": recipe.architecture,
        "report2label_version": version("report2label"),
        "trained": run["finished"],
        "input": "image: float32 [batch, channels, size, size], the preprocessed image scaled to [0, 1]",
        "output": "probability: float32 [batch, labels], sigmoid of the logits, labels in the order of r2l.labels",
    }
    return {PREFIX + key: value for key, value in values.items()}


def _export_onnx(model: torch.nn.Module, recipe: ImageModelSpec, target: Path, metadata: dict[str, str]) -> None:
    import onnx

    example = torch.rand(2, recipe.in_chans, recipe.image_size, recipe.image_size)
    program = torch.onnx.export(
        model,
        (example,),
        dynamo=True,
        input_names=["image"],
        output_names=["probability"],
        dynamic_shapes={"image": {0: torch.export.Dim("batch")}},
        verbose=False,
    )
    proto = program.model_proto  # in memory, the weights inside: no scratch file
    pool_first(proto)  # exact; DenseNet's transitions convolve a quarter of the pixels
    onnx.helper.set_model_props(proto, metadata)
    onnx.checker.check_model(proto, full_check=True)
    onnx.save(proto, str(target))


def export(
    rundir: str | Path,
    output: str | Path,
    *,
    quantize: bool = False,
    atol: float = 1e-4,
    parity_images: int = 32,
) -> ExportSummary:
    """Export ``rundir``'s best checkpoint to ``output`` (ONNX) after the parity gate; write MODEL.md beside it."""
    rundir, output = Path(rundir), Path(output)
    if output.is_dir():
        raise R2LError(f"{output}: is a directory; name the ONNX file to write, e.g. {output / 'model.onnx'}")
    run, recipe = load_run(rundir)
    folder = RunFolder(rundir)
    task = registry.task(run["task"])
    columns = run["label_columns"]
    if not folder.metrics.is_file():
        evaluate(rundir)
    report = json.loads(folder.metrics.read_text())
    labels = list(report["labels"])
    thresholds = [report["labels"][name]["threshold"] for name in labels]
    state = load_checkpoint(folder.best, task, recipe, columns)
    network = build_model(recipe, len(columns))
    network.load_state_dict(state["model"])
    model = WithSigmoid(network).eval()
    test = load_split(Path(run["dataset"]), "test", recipe, columns, show_progress=False)
    images = model_input(test.images[:parity_images], recipe.in_chans)
    metadata = _metadata(run, recipe, labels, thresholds)
    sweep(output.parent)
    with atomic_path(output) as candidate:  # replaces ``output`` only if the parity gate passes
        _export_onnx(model, recipe, candidate, metadata)
        check = parity(session_for(candidate), model, images, thresholds)
        if check.max_abs_diff > atol or check.decisions_differ:
            raise R2LError(
                f"parity gate failed on {check.images} test images: max |Δp| = {check.max_abs_diff:.3g} "
                f"(allowed {atol:g}), {check.decisions_differ} decisions differ; nothing was written"
            )
    quantized = None
    if quantize:
        train = load_split(Path(run["dataset"]), "train", recipe, columns, show_progress=False)
        quantized = quantize_int8(
            output,
            output.with_suffix(".int8.onnx"),
            model_input(train.images[:32], recipe.in_chans),
            images,
            thresholds,
        )
    card = write_model_card(output, rundir, task, run, report, recipe, metadata, check, quantized)
    return ExportSummary(output, card, check, metadata, quantized)
