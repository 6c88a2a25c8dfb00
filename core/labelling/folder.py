"""The layout of a labelling output folder, owned here alone.

``labels.sqlite`` (the resumable store of the in-process engine), ``parts/<hash>.parquet`` (the
store of the ``ray`` engine: one file per labelled block, named by the block's reports and run
key), ``labels.csv`` / ``labels.parquet`` (the table, written at the end), ``label_eval.json`` and
``disagreements.csv`` (written by ``r2l eval-labels``; ``worst_cases.csv`` for a free-text task).
A folder holds the labels of one task.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ..atomic import sweep
from ..errors import R2LError


@dataclass(frozen=True)
class LabelFolder:
    """Paths of one labelling output folder."""

    root: Path

    @property
    def store(self) -> Path:
        return self.root / "labels.sqlite"

    @property
    def parts(self) -> Path:
        return self.root / "parts"

    def part(self, name: str) -> Path:
        """The part file of the block named ``name`` (a hash of its reports and run key)."""
        return self.parts / f"{name}.parquet"

    def part_files(self) -> list[Path]:
        return sorted(self.parts.glob("*.parquet")) if self.parts.is_dir() else []

    @property
    def csv(self) -> Path:
        return self.root / "labels.csv"

    @property
    def parquet(self) -> Path:
        return self.root / "labels.parquet"

    @property
    def evaluation(self) -> Path:
        return self.root / "label_eval.json"

    @property
    def disagreements(self) -> Path:
        return self.root / "disagreements.csv"

    @property
    def worst_cases(self) -> Path:
        """A free-text task's answers with the lowest ROUGE-L (``r2l eval-labels``)."""
        return self.root / "worst_cases.csv"

    def check(self, task: str) -> None:
        """Fail before any work when the folder cannot be written or holds another task's labels."""
        root = self.root
        if root.exists() and not root.is_dir():
            raise R2LError(f"{root}: is a file, not a folder; choose another output folder")
        blocking = next((p for p in root.parents if p.exists() and not p.is_dir()), None)
        if blocking is not None:
            raise R2LError(f"{root}: cannot be created, because {blocking} is a file")
        existing = next((p for p in (root, *root.parents) if p.exists()), None)
        if existing is not None and not os.access(existing, os.W_OK | os.X_OK):
            raise R2LError(f"{root}: cannot write there ({existing} is not writable)")
        if self.csv.is_file():
            other = _task_of(self.csv)
            if other is not None and other != task:
                raise R2LError(
                    f"{self.csv}: holds labels of task {other!r}, not {task!r}; label {task!r} into another folder"
                )

    def create(self) -> bool:
        """Create the folder (True when it did not exist) and sweep temp files of killed writers."""
        created = not self.root.exists()
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise R2LError(f"{self.root}: cannot create the folder ({exc.strerror})") from None
        sweep(self.root)
        sweep(self.parts)
        return created

    def discard_store(self, created: bool) -> None:
        """Remove a store that holds nothing, and the folder when this run created it and it is empty."""
        for suffix in ("", "-wal", "-shm"):
            self.store.with_name(self.store.name + suffix).unlink(missing_ok=True)
        self._discard_root(created)

    def discard_parts(self, created: bool) -> None:
        """Remove an empty ``parts`` folder, and the folder when this run created it and it is empty."""
        if self.parts.is_dir() and not any(self.parts.iterdir()):
            self.parts.rmdir()
        self._discard_root(created)

    def _discard_root(self, created: bool) -> None:
        if created and self.root.is_dir() and not any(self.root.iterdir()):
            self.root.rmdir()


def _task_of(csv: Path) -> str | None:
    try:
        first = pd.read_csv(csv, usecols=["task"], nrows=1, dtype=str)
    except (ValueError, OSError, pd.errors.ParserError, pd.errors.EmptyDataError):
        return None
    return None if first.empty else str(first["task"].iloc[0])
