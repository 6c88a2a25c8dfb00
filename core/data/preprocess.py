"""The recipe's preprocessing: min-max scaling, foreground crop, rotation, area resize.

Pure numpy and Pillow, so that ``r2l predict`` can rebuild it from an ONNX file's metadata
without torch.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from ..image_model import Preprocessing

RESAMPLING = {"area": Image.Resampling.BOX, "bilinear": Image.Resampling.BILINEAR}


def minmax(pixels: np.ndarray) -> np.ndarray:
    low, high = float(pixels.min()), float(pixels.max())
    if high <= low:
        return np.zeros_like(pixels, dtype=np.float32)
    return ((pixels - low) / (high - low)).astype(np.float32)


def foreground_crop(scaled: np.ndarray, low: float, high: float) -> np.ndarray:
    """Crop to the bounding box of pixels with ``low <= value <= high``; unchanged if there are none."""
    rows, cols = np.nonzero((scaled >= low) & (scaled <= high))
    if rows.size == 0:
        return scaled
    return scaled[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]


def model_input(images: np.ndarray, channels: int) -> np.ndarray:
    """Preprocessed uint8 images [N, H, W] as the model's input: float32 [N, channels, H, W] in [0, 1]."""
    scaled = np.asarray(images, dtype=np.float32)[:, None] / 255.0
    return np.repeat(scaled, channels, axis=1) if channels > 1 else scaled


def preprocess(pixels: np.ndarray, pre: Preprocessing, size: int) -> np.ndarray:
    """A ``size`` x ``size`` uint8 image ready for the model (0-255 = the scaled range)."""
    scaled = minmax(pixels)
    if pre.foreground_range is not None:
        scaled = foreground_crop(scaled, *pre.foreground_range)
    if pre.rotate_degrees:
        scaled = np.rot90(scaled, k=pre.rotate_degrees // 90)
    resized = Image.fromarray(np.ascontiguousarray(scaled), mode="F").resize(
        (size, size), RESAMPLING[pre.interpolation]
    )
    return np.clip(np.asarray(resized) * 255.0 + 0.5, 0, 255).astype(np.uint8)
