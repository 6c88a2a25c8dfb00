"""The layout of a data-set folder (DATASET_DIR), owned here alone.

``<split>_dataframe.csv`` per split (the study's format), ``dataset.json``, and the preprocessing
cache ``cache/<preprocessing hash>/<split>-<split content hash>.npy`` with its index ``.json``:
keyed by the split's content, a rewritten split can never be read from a stale cache.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..hashing import file_sha256

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class DatasetFolder:
    """The files of a data-set folder."""

    root: Path

    def split(self, name: str) -> Path:
        """The split's CSV: image, the label column(s), report_id, patient_id."""
        return self.root / f"{name}_dataframe.csv"

    @property
    def info(self) -> Path:
        """``dataset.json``: task, label columns, counts, seed, what was dropped, input hashes."""
        return self.root / "dataset.json"

    @property
    def cache(self) -> Path:
        """The preprocessing cache, removed whenever the data set is rewritten."""
        return self.root / "cache"

    def cached(self, split: str, preprocessing_hash: str) -> tuple[Path, Path]:
        """The cached image array and its index for the split's current content and a preprocessing."""
        key = f"{split}-{file_sha256(self.split(split))[:12]}"
        folder = self.cache / preprocessing_hash
        return folder / f"{key}.npy", folder / f"{key}.json"
