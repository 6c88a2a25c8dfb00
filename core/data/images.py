"""Reading radiographs as hospitals store them: PNG and JPEG (8/16-bit) and DICOM.

Every reader returns a 2-D float32 array in which higher means brighter (more attenuation):
DICOM gets its modality LUT (rescale slope/intercept), its VOI LUT or window, and MONOCHROME1
inverted. Pixel data in compressed transfer syntaxes decode where a pip-installable decoder is
present (pylibjpeg for JPEG, JPEG-LS and JPEG 2000). Unreadable files raise :class:`ImageError`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

DICOM_SUFFIXES = {".dcm", ".dicom", ""}


class ImageError(Exception):
    """An image that cannot be read; the message names the file and the reason."""


def _read_dicom(path: Path) -> np.ndarray:
    import pydicom
    from pydicom.pixels import apply_modality_lut, apply_voi_lut

    try:
        dataset = pydicom.dcmread(path)
        pixels = dataset.pixel_array
    except Exception as exc:  # pydicom raises many types for corrupt or undecodable files
        raise ImageError(f"{path}: unreadable DICOM ({str(exc).splitlines()[0]})") from None
    if pixels.ndim == 3 and dataset.get("SamplesPerPixel", 1) == 1:
        pixels = pixels[0]  # multi-frame: the first frame
    pixels = apply_modality_lut(pixels, dataset)
    if "VOILUTSequence" in dataset or "WindowCenter" in dataset:
        pixels = apply_voi_lut(pixels, dataset)
    pixels = np.asarray(pixels, dtype=np.float32)
    if pixels.ndim == 3:
        pixels = pixels.mean(axis=-1)
    if dataset.get("PhotometricInterpretation", "MONOCHROME2") == "MONOCHROME1":
        pixels = pixels.max() - pixels
    return pixels


def _read_bitmap(path: Path) -> np.ndarray:
    try:
        with Image.open(path) as image:
            image.load()
            if image.mode in ("RGB", "RGBA", "P", "LA", "CMYK"):
                image = image.convert("L")
            pixels = np.asarray(image)
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise ImageError(f"{path}: unreadable image ({exc})") from None
    return pixels.astype(np.float32)


def read_image(path: str | Path) -> np.ndarray:
    """A radiograph as a 2-D float32 array (brighter = more attenuation)."""
    path = Path(path)
    if not path.is_file():
        raise ImageError(f"{path}: no such file")
    with path.open("rb") as handle:
        head = handle.read(132)
    if head[128:132] == b"DICM" or path.suffix.lower() in (".dcm", ".dicom"):
        pixels = _read_dicom(path)
    else:
        pixels = _read_bitmap(path)
    if pixels.ndim != 2 or min(pixels.shape) < 2:
        raise ImageError(f"{path}: expected a 2-D image, got shape {pixels.shape}")
    return pixels
