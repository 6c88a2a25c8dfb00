"""The layout of a training-run folder (RUNDIR), owned here alone."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..data.folder import SPLITS


@dataclass(frozen=True)
class RunFolder:
    """The files of a run folder: checkpoints, history and run record, then the evaluation's outputs."""

    root: Path

    @property
    def best(self) -> Path:
        """The checkpoint with the best validation metric."""
        return self.root / "best.pt"

    @property
    def last(self) -> Path:
        """The checkpoint of the last finished epoch: what ``--resume`` continues from."""
        return self.root / "last.pt"

    @property
    def history(self) -> Path:
        return self.root / "history.csv"

    @property
    def info(self) -> Path:
        """``run.json``: task, data set, effective recipe, trainer, status."""
        return self.root / "run.json"

    @property
    def metrics(self) -> Path:
        return self.root / "metrics.json"

    @property
    def roc(self) -> Path:
        return self.root / "roc.png"

    def predictions(self, split: str) -> Path:
        return self.root / f"{split}_predictions.csv"

    def outputs(self) -> list[Path]:
        """Every file a run and its evaluation write."""
        fixed = [self.best, self.last, self.history, self.info, self.metrics, self.roc]
        return fixed + [self.predictions(split) for split in SPLITS]
