"""Models by name through timm, and checkpoints that refuse to load into the wrong task or model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import timm
import torch

from ..atomic import atomic_path
from ..errors import R2LError
from ..image_model import ImageModelSpec
from ..task import TaskSpec

FORMAT = 1


def build_model(recipe: ImageModelSpec, outputs: int, pretrained: str | Path | None = None) -> torch.nn.Module:
    """A randomly initialised timm model; ``pretrained`` loads local weights (never a download)."""
    try:
        model = timm.create_model(recipe.architecture, pretrained=False, in_chans=recipe.in_chans, num_classes=outputs)
    except RuntimeError as exc:
        raise R2LError(f"recipe architecture {recipe.architecture!r}: {exc}") from None
    if pretrained is not None:
        path = Path(pretrained)
        if not path.is_file():
            raise R2LError(f"{path}: no such weights file")
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            weights = load_file(path)
        else:
            weights = torch.load(path, map_location="cpu", weights_only=True)
            weights = weights.get("model", weights) if isinstance(weights, dict) else weights
        own = model.state_dict()
        usable = {k: v for k, v in weights.items() if k in own and own[k].shape == v.shape}
        if not usable:
            raise R2LError(f"{path}: no weight fits {recipe.architecture} with {recipe.in_chans} channel(s)")
        model.load_state_dict(usable, strict=False)
    return model


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
