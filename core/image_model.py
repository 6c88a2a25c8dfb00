"""Image-model specs (recipes): architecture, preprocessing, augmentation and optimisation."""

from __future__ import annotations

import hashlib
import json
from typing import Literal

from pydantic import Field, computed_field

from .spec import Spec


class Preprocessing(Spec):
    """Applied identically at training, evaluation and inference time."""

    intensity: Literal["minmax"] = "minmax"
    foreground_range: tuple[float, float] | None = Field(
        (0.3, 0.7), description="Crop to pixels whose scaled intensity lies in this range; None: no crop."
    )
    rotate_degrees: Literal[0, 90, 180, 270] = 0
    interpolation: Literal["area", "bilinear"] = "area"


class Augmentation(Spec):
    """Training-only random transforms."""

    crop_fraction: float = Field(0.9, gt=0, le=1, description="Random scaled crop keeping this share of each side.")
    rotate_degrees: float = Field(15.0, ge=0)
    rotate_p: float = Field(0.8, ge=0, le=1)
    hflip_p: float = Field(0.5, ge=0, le=1)
    zoom: tuple[float, float] = (1.0, 1.3)


class Optimisation(Spec):
    optimizer: Literal["adamw"] = "adamw"
    lr: float = Field(1e-5, gt=0)
    weight_decay: float = Field(0.01, ge=0)
    schedule: Literal["onecycle", "constant"] = "onecycle"
    max_lr: float = Field(5e-3, gt=0, description="OneCycle peak learning rate, stepped per batch.")


class ImageModelSpec(Spec):
    """A training recipe: the timm model by name and how to feed and fit it."""

    architecture: str = Field(description="A timm model name.")
    in_chans: int = Field(1, ge=1)
    image_size: int = Field(ge=16)
    outputs: Literal["binary", "multilabel"] = "binary"
    preprocessing: Preprocessing = Preprocessing()
    augmentation: Augmentation = Augmentation()
    loss: Literal["bce_pos_weight", "bce"] = Field(
        "bce_pos_weight", description="BCE with logits; pos_weight = n_negative / n_positive per label."
    )
    optimisation: Optimisation = Optimisation()
    batch_size: int = Field(32, ge=1)
    epochs: int = Field(200, ge=1)
    select_metric: Literal["mcc", "auc", "accuracy", "loss"] = "mcc"
    threshold: Literal["youden"] | float = Field(0.5, description="Decision threshold, or chosen on validation.")
    balance_eval_splits: bool = Field(True, description="Under-sample the majority class in validation and test.")

    @computed_field  # type: ignore[prop-decorator]
    @property
    def preprocessing_hash(self) -> str:
        """Identifies cached preprocessed images: the preprocessing, channels and size."""
        content = {"pre": self.preprocessing.model_dump(mode="json"), "size": self.image_size, "ch": self.in_chans}
        return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()[:12]
