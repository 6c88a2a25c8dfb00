"""The preprocessing cache: each image decoded, scaled, cropped and resized once, then memory-mapped.

Per split (see :class:`DatasetFolder`: keyed by the preprocessing and the split's content) a uint8
array [N, size, size] and an index of the images it holds and those that could not be read (path
and reason). Epochs read from the memory map, so decoding full-size radiographs never starves the GPU.
Labels are not cached: they are read from the split's CSV at every load, as float32 [N, labels]
with NaN where a cell is empty (a masked target), so they can never be stale either.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..atomic import atomic_path, sweep
from ..errors import R2LError
from ..image_model import ImageModelSpec
from ..progress import progress_bar
from .folder import DatasetFolder
from .images import ImageError, read_image
from .preprocess import preprocess

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CachedSplit:
    """A split's preprocessed images (memory-mapped) and their labels (float32 [N, labels], NaN: masked)."""

    images: np.ndarray
    labels: np.ndarray
    paths: list[str]
    skipped: list[dict[str, str]]


def load_split(
    dataset_dir: str | Path, split: str, spec: ImageModelSpec, label_columns: list[str], show_progress: bool = True
) -> CachedSplit:
    """The cached split, building the cache first if it is missing."""
    folder = DatasetFolder(Path(dataset_dir))
    source = folder.split(split)
    if not source.is_file():
        raise R2LError(f"{source}: no such file; is {folder.root} a data set written by r2l dataset?")
    array_path, index_path = folder.cached(split, spec.preprocessing_hash)
    if not (array_path.is_file() and index_path.is_file()):
        _build(source, array_path, index_path, split, spec, show_progress)
    index = json.loads(index_path.read_text())
    frame = pd.read_csv(source)
    by_path = frame.set_index("image")
    labels = by_path.loc[index["paths"], label_columns].to_numpy(dtype=np.float32)
    return CachedSplit(np.load(array_path, mmap_mode="r"), labels, index["paths"], index["skipped"])


def _build(
    source: Path, array_path: Path, index_path: Path, split: str, spec: ImageModelSpec, show_progress: bool
) -> None:
    """Preprocess the split's images into ``array_path``; ``index_path``, written last, completes the entry."""
    paths = pd.read_csv(source)["image"].astype(str).tolist()
    sweep(array_path.parent)
    size = spec.image_size
    kept, skipped = [], []
    with atomic_path(array_path) as tmp:
        array = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(len(paths), size, size))
        with progress_bar(f"caching {split} images at {size}px", total=len(paths), enabled=show_progress) as advance:
            for path in paths:
                try:
                    array[len(kept)] = preprocess(read_image(path), spec.preprocessing, size)
                    kept.append(path)
                except ImageError as exc:
                    skipped.append({"image": path, "reason": str(exc)})
                advance(1)
        array.flush()
        del array
        if skipped:
            _truncate(tmp, len(kept), size)
    if skipped:
        log.warning(
            "%s: %d unreadable images skipped (listed in %s), e.g. %s",
            split,
            len(skipped),
            index_path,
            skipped[0]["reason"],
        )
    if not kept:
        raise R2LError(f"{source}: none of its {len(paths)} images could be read")
    with atomic_path(index_path) as tmp:
        tmp.write_text(json.dumps({"paths": kept, "skipped": skipped}, indent=1))


def _truncate(path: Path, n: int, size: int) -> None:
    full = np.load(path, mmap_mode="r")
    kept = np.array(full[:n])
    del full
    with path.open("wb") as handle:
        np.save(handle, kept)
