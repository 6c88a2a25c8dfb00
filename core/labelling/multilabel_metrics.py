"""Agreement metrics of multi-label, four-state label sets, with 95% confidence intervals.

- :class:`StateConfusion`: gold × predicted counts of one finding's four states (CheXpert's
  1 / 0 / -1 / blank), with exact-state agreement (Wilson interval) and Cohen's kappa over the
  states (bootstrap of the 16 cells, as :mod:`report2label.core.metrics` does for 2×2).
- :func:`averaged_agreement`: micro and macro precision, recall and F1 over several 0/1 labels.
  Their intervals come from a seeded percentile bootstrap over *reports*: a drawn report brings
  all its labels along, so errors that go together across labels (one misread report) widen the
  interval as they should, which resampling each label on its own would hide.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from ..metrics import Estimate, wilson
from ..task import STATES

AVERAGED = ("precision", "recall", "f1")
"""The metrics averaged over labels, micro (pooled counts) and macro (mean of the labels')."""


@dataclass(frozen=True)
class StateConfusion:
    """Counts of gold state (rows) × predicted state (columns), in the order of :data:`STATES`."""

    matrix: tuple[tuple[int, ...], ...]
    states: tuple[str, ...] = STATES

    @classmethod
    def of(cls, gold, predicted) -> StateConfusion:
        index = {state: i for i, state in enumerate(STATES)}
        counts = np.zeros((len(STATES), len(STATES)), dtype=int)
        for g, p in zip(gold, predicted, strict=True):
            counts[index[g], index[p]] += 1
        return cls(tuple(tuple(int(x) for x in row) for row in counts))

    @property
    def array(self) -> np.ndarray:
        return np.array(self.matrix, dtype=int)

    @property
    def n(self) -> int:
        return int(self.array.sum())

    @property
    def agreeing(self) -> int:
        return int(np.trace(self.array))

    def mismatches(self) -> list[tuple[str, str, int]]:
        """(gold state, predicted state, count) of the off-diagonal cells, most frequent first."""
        cells = [
            (self.states[g], self.states[p], count)
            for g, row in enumerate(self.matrix)
            for p, count in enumerate(row)
            if g != p and count
        ]
        return sorted(cells, key=lambda cell: -cell[2])

    def as_dict(self) -> dict:
        return {
            "rows": "gold",
            "columns": "predicted",
            "states": list(self.states),
            "matrix": [list(row) for row in self.matrix],
        }


def _multiclass_kappa(cells: np.ndarray) -> np.ndarray:
    """Cohen's kappa of confusion matrices ``cells`` (..., k, k)."""
    cells = cells.astype(float)
    n = cells.sum(axis=(-2, -1))
    with np.errstate(invalid="ignore", divide="ignore"):
        observed = np.trace(cells, axis1=-2, axis2=-1) / n
        expected = (cells.sum(axis=-1) * cells.sum(axis=-2)).sum(axis=-1) / n**2
        return (observed - expected) / (1 - expected)


def state_agreement(c: StateConfusion, n_boot: int = 2000, seed: int = 0) -> dict[str, Estimate]:
    """Exact agreement of the four states (Wilson interval) and Cohen's kappa over them (bootstrap)."""
    counts = c.array
    kappa = float(_multiclass_kappa(counts))
    if c.n == 0:
        interval = (float("nan"), float("nan"))
    else:
        k = counts.shape[0]
        draws = np.random.default_rng(seed).multinomial(c.n, counts.ravel() / c.n, size=n_boot)
        values = _multiclass_kappa(draws.reshape(n_boot, k, k))
        values = values[np.isfinite(values)]
        interval = tuple(np.percentile(values, [2.5, 97.5])) if values.size else (float("nan"), float("nan"))
    return {"accuracy": wilson(c.agreeing, c.n), "kappa": Estimate(kappa, float(interval[0]), float(interval[1]))}


def _scores(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> dict[str, dict[str, np.ndarray]]:
    """Micro and macro precision, recall, F1 of per-label counts (..., labels)."""
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # nanmean of labels that are all undefined

        def prf(tp, fp, fn):
            return {"precision": tp / (tp + fp), "recall": tp / (tp + fn), "f1": 2 * tp / (2 * tp + fp + fn)}

        micro = prf(tp.sum(axis=-1), fp.sum(axis=-1), fn.sum(axis=-1))
        macro = {name: np.nanmean(values, axis=-1) for name, values in prf(tp, fp, fn).items()}
    return {"micro": micro, "macro": macro}


def averaged_agreement(
    truth: np.ndarray, predicted: np.ndarray, mask: np.ndarray | None = None, n_boot: int = 2000, seed: int = 0
) -> dict[str, dict[str, Estimate]]:
    """Micro and macro precision, recall and F1 of 0/1 matrices (reports × labels), with 95% intervals.

    ``mask`` (reports × labels) leaves cells out (a gold or label value with no 0/1 meaning, such as
    an uncertain finding under the ``ignore`` policy). Micro pools the labels' TP, FP and FN; macro
    is the mean of the labels' values, over the labels where the value is defined (a label with no
    positive in gold or labels has no recall or precision). Intervals: percentile bootstrap over
    reports (``n_boot`` draws, seeded).
    """
    truth, predicted = np.asarray(truth).astype(bool), np.asarray(predicted).astype(bool)
    mask = np.ones_like(truth) if mask is None else np.asarray(mask).astype(bool)
    cells = {
        "tp": (truth & predicted & mask).astype(float),
        "fp": (~truth & predicted & mask).astype(float),
        "fn": (truth & ~predicted & mask).astype(float),
    }
    point = _scores(*(c.sum(axis=0) for c in cells.values()))
    n = truth.shape[0]
    draws: dict[str, dict[str, list[np.ndarray]]] = {kind: {name: [] for name in AVERAGED} for kind in point}
    if n and n_boot:
        rng = np.random.default_rng(seed)
        chunk = max(1, min(n_boot, 4_000_000 // n))
        for start in range(0, n_boot, chunk):
            weights = rng.multinomial(n, np.full(n, 1 / n), size=min(chunk, n_boot - start)).astype(float)
            drawn = _scores(*(weights @ c for c in cells.values()))
            for kind, values in drawn.items():
                for name in AVERAGED:
                    draws[kind][name].append(values[name])
    result: dict[str, dict[str, Estimate]] = {}
    for kind, values in point.items():
        result[kind] = {}
        for name in AVERAGED:
            drawn = np.concatenate(draws[kind][name]) if draws[kind][name] else np.array([])
            drawn = drawn[np.isfinite(drawn)]
            low, high = np.percentile(drawn, [2.5, 97.5]) if drawn.size else (float("nan"), float("nan"))
            result[kind][name] = Estimate(float(values[name]), float(low), float(high))
    return result
