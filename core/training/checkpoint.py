"""Models by name through timm, and checkpoints that refuse to load into the wrong task or model."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import timm
import torch
from timm.models import adapt_input_conv

from ..atomic import atomic_path
from ..errors import R2LError
from ..image_model import ImageModelSpec
from ..task import TaskSpec

FORMAT = 1
log = logging.getLogger(__name__)


def build_model(recipe: ImageModelSpec, outputs: int, pretrained: str | Path | None = None) -> torch.nn.Module:
    """A randomly initialised timm model; ``pretrained`` loads local weights (never a download)."""
    try:
        model = timm.create_model(recipe.architecture, pretrained=False, in_chans=recipe.in_chans, num_classes=outputs)
    except RuntimeError as exc:
        raise R2LError(f"recipe architecture {recipe.architecture!r}: {exc}") from None
    if pretrained is not None:
        path = Path(pretrained)
        usable = _fitting(model, _read_weights(path), recipe.in_chans, path)
        if not usable:
            raise R2LError(f"{path}: no tensor fits {recipe.architecture} with {recipe.in_chans} channel(s)")
        model.load_state_dict(usable, strict=False)
    return model


def _read_weights(path: Path) -> dict[str, torch.Tensor]:
    """A state dict from a ``torch.save`` file (a bare one, or under ``model``/``state_dict``) or safetensors."""
    if not path.is_file():
        raise R2LError(f"{path}: no such weights file")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            weights = load_file(path)
        else:
            weights = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # unpicklers and safetensors raise many types for files that are no weights
        weights = None
    if isinstance(weights, dict):
        weights = weights.get("model", weights.get("state_dict", weights))
    if not (isinstance(weights, dict) and weights and all(isinstance(v, torch.Tensor) for v in weights.values())):
        raise R2LError(f"{path}: not a checkpoint or weights file (expected a state dict of tensors)")
    return weights


def _stem_names(model: torch.nn.Module) -> set[str]:
    """The weights of the model's input convolution(s), which timm adapts to other channel counts."""
    first = model.pretrained_cfg.get("first_conv") if hasattr(model, "pretrained_cfg") else None
    names = [first] if isinstance(first, str) else list(first or ())
    return {f"{name}.weight" for name in names}


def _fitting(
    model: torch.nn.Module, weights: dict[str, torch.Tensor], in_chans: int, path: Path
) -> dict[str, torch.Tensor]:
    """The tensors of ``weights`` that fit ``model``, the stem adapted to ``in_chans``; the others logged."""
    own, stems, usable = model.state_dict(), _stem_names(model), {}
    for name, tensor in weights.items():
        target = own.get(name)
        if target is not None and target.shape != tensor.shape and name in stems:
            try:
                tensor = adapt_input_conv(in_chans, tensor)
                log.info("%s: %s adapted from %d to %d input channels", path, name, weights[name].shape[1], in_chans)
            except (NotImplementedError, AssertionError, RuntimeError):
                pass  # a stem timm cannot convert is skipped, and logged, below
        if target is not None and target.shape == tensor.shape:
            usable[name] = tensor
        else:
            found = "no such tensor" if target is None else f"shape {tuple(target.shape)}"
            log.warning("%s: skipped %s %s (the model has %s)", path, name, tuple(tensor.shape), found)
    for name in sorted(own.keys() - weights.keys()):
        log.warning("%s: has no %s %s; it keeps its random initialisation", path, name, tuple(own[name].shape))
    return usable


def save_checkpoint(path: Path, task: TaskSpec, recipe: ImageModelSpec, columns: list[str], state: dict) -> None:
    payload = {
        "format": FORMAT,
        "task": task.name,
        "task_version": task.version,
        "label_columns": columns,
        "architecture": recipe.architecture,
        "recipe": recipe.model_dump_json(),
        **state,
    }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def load_checkpoint(
    path: Path, task: TaskSpec, recipe: ImageModelSpec | None, columns: list[str] | None
) -> dict[str, Any]:
    """Load with ``weights_only=True``; refuse a checkpoint of another task, architecture or label set."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise R2LError(f"{path}: no such checkpoint") from None
    except Exception as exc:
        raise R2LError(f"{path}: not a report2label checkpoint ({str(exc).splitlines()[0]})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise R2LError(f"{path}: not a report2label checkpoint")
    if state["task"] != task.name:
        raise R2LError(f"{path}: the checkpoint is from task {state['task']!r}, not {task.name!r}")
    if recipe is not None and state["architecture"] != recipe.architecture:
        raise R2LError(
            f"{path}: the checkpoint is a {state['architecture']}, the recipe asks for {recipe.architecture}"
        )
    if columns is not None and state["label_columns"] != columns:
        raise R2LError(f"{path}: the checkpoint predicts {state['label_columns']}, the data set has {columns}")
    return state
