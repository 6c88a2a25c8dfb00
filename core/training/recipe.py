"""The effective recipe of a training run: the task's recipe with overrides. Imports no torch."""

from __future__ import annotations

from typing import Any

from ..errors import R2LError
from ..image_model import ImageModelSpec
from ..task import TaskSpec


def effective_recipe(task: TaskSpec, **overrides: Any) -> ImageModelSpec:
    """The task's recipe with command-line overrides (None = keep), validated."""
    if task.recipe is None:
        raise R2LError(f"task {task.name!r} has no image-model recipe")
    data = task.recipe.model_dump(mode="json")
    for key, value in overrides.items():
        if value is None:
            continue
        if key == "lr":
            data["optimisation"]["lr"] = value
        else:
            data[key] = value
    return ImageModelSpec.model_validate(data)
