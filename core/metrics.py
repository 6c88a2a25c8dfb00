"""Binary agreement metrics with 95% confidence intervals.

Proportions (accuracy, sensitivity, specificity, PPV, NPV) get Wilson score intervals; F1 and
Cohen's kappa get percentile intervals from a bootstrap of the confusion matrix (resampling
report pairs is a multinomial draw over its four cells, so the cost does not grow with n).
Image-model scores get percentile intervals from resampling images; several labels are summarised
by macro AUC (the mean over labels where AUC is defined) and micro AUC (all known pairs pooled).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class Estimate:
    value: float
    low: float
    high: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


@dataclass(frozen=True)
class Confusion:
    tn: int
    fp: int
    fn: int
    tp: int

    @classmethod
    def of(cls, y_true: np.ndarray, y_pred: np.ndarray) -> Confusion:
        t, p = np.asarray(y_true).astype(bool), np.asarray(y_pred).astype(bool)
        return cls(int((~t & ~p).sum()), int((~t & p).sum()), int((t & ~p).sum()), int((t & p).sum()))

    @property
    def n(self) -> int:
        return self.tn + self.fp + self.fn + self.tp


def wilson(successes: int, trials: int) -> Estimate:
    if trials == 0:
        return Estimate(float("nan"), float("nan"), float("nan"))
    from scipy.stats import binomtest  # imported here: scipy.stats costs every r2l command seconds

    ci = binomtest(successes, trials).proportion_ci(confidence_level=0.95, method="wilson")
    return Estimate(successes / trials, float(ci.low), float(ci.high))


def _floats(*cells):
    """Confusion cells as float arrays: a 0/0 gives NaN, never ZeroDivisionError."""
    return (np.asarray(cell, dtype=float) for cell in cells)


def _f1(tn, fp, fn, tp):
    tn, fp, fn, tp = _floats(tn, fp, fn, tp)
    with np.errstate(invalid="ignore", divide="ignore"):
        return 2 * tp / (2 * tp + fp + fn)


def _mcc(tn, fp, fn, tp):
    """Matthews' correlation; 0 where a row or column of the confusion matrix is empty (as scikit-learn)."""
    tn, fp, fn, tp = _floats(tn, fp, fn, tp)
    denominator = np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, (tp * tn - fp * fn) / denominator, 0.0)


def _kappa(tn, fp, fn, tp):
    tn, fp, fn, tp = _floats(tn, fp, fn, tp)
    n = tn + fp + fn + tp
    with np.errstate(invalid="ignore", divide="ignore"):
        observed = (tp + tn) / n
        expected = ((tp + fp) * (tp + fn) + (fn + tn) * (fp + tn)) / n**2
        return (observed - expected) / (1 - expected)


def _bootstrapped(statistic, c: Confusion, n_boot: int, seed: int) -> Estimate:
    value = float(statistic(c.tn, c.fp, c.fn, c.tp))
    if c.n == 0:
        return Estimate(value, float("nan"), float("nan"))
    cells = np.random.default_rng(seed).multinomial(c.n, np.array([c.tn, c.fp, c.fn, c.tp]) / c.n, size=n_boot)
    draws = statistic(*cells.T.astype(float))
    draws = draws[np.isfinite(draws)]
    if draws.size == 0:
        return Estimate(value, float("nan"), float("nan"))
    low, high = np.percentile(draws, [2.5, 97.5])
    return Estimate(value, float(low), float(high))


def binary_agreement(c: Confusion, n_boot: int = 2000, seed: int = 0) -> dict[str, Estimate]:
    """Accuracy, sensitivity, specificity, PPV, NPV, F1 and Cohen's kappa of a confusion matrix."""
    return {
        "accuracy": wilson(c.tp + c.tn, c.n),
        "sensitivity": wilson(c.tp, c.tp + c.fn),
        "specificity": wilson(c.tn, c.tn + c.fp),
        "ppv": wilson(c.tp, c.tp + c.fp),
        "npv": wilson(c.tn, c.tn + c.fn),
        "f1": _bootstrapped(_f1, c, n_boot, seed),
        "kappa": _bootstrapped(_kappa, c, n_boot, seed),
    }


def scores(truth: np.ndarray, prob: np.ndarray, threshold: float) -> dict[str, float]:
    """Threshold and ranking metrics of one binary label (AUC is NaN when one class is missing)."""
    truth = np.asarray(truth).astype(int)
    predicted = (np.asarray(prob) >= threshold).astype(int)
    c = Confusion.of(truth, predicted)
    with np.errstate(invalid="ignore", divide="ignore"):
        values = {
            "accuracy": (c.tp + c.tn) / c.n if c.n else float("nan"),
            "auc": auc(truth, prob),
            "sensitivity": c.tp / (c.tp + c.fn) if c.tp + c.fn else float("nan"),
            "specificity": c.tn / (c.tn + c.fp) if c.tn + c.fp else float("nan"),
            "ppv": c.tp / (c.tp + c.fp) if c.tp + c.fp else float("nan"),
            "npv": c.tn / (c.tn + c.fn) if c.tn + c.fn else float("nan"),
            "f1": float(_f1(c.tn, c.fp, c.fn, c.tp)),
            "mcc": float(_mcc(c.tn, c.fp, c.fn, c.tp)) if c.n else float("nan"),
        }
    return {name: float(value) for name, value in values.items()}


def bootstrap_scores(
    truth: np.ndarray, prob: np.ndarray, threshold: float, n_boot: int = 1000, seed: int = 0
) -> dict[str, Estimate]:
    """:func:`scores` with percentile 95% intervals from resampling the images."""
    point = scores(truth, prob, threshold)
    rng = np.random.default_rng(seed)
    draws: dict[str, list[float]] = {name: [] for name in point}
    for _ in range(n_boot):
        index = rng.integers(0, len(truth), len(truth))
        for name, value in scores(truth[index], prob[index], threshold).items():
            draws[name].append(value)
    return {name: _interval(value, draws[name]) for name, value in point.items()}


def _interval(value: float, draws: list[float]) -> Estimate:
    """``value`` with the percentile 95% interval of the finite ``draws`` (NaN when none is)."""
    finite = np.array(draws)[np.isfinite(draws)]
    low, high = np.percentile(finite, [2.5, 97.5]) if finite.size else (float("nan"), float("nan"))
    return Estimate(value, float(low), float(high))


def macro_mean(values: list[float]) -> float:
    """The mean of the finite ``values`` (labels where a metric is defined); NaN when none is."""
    finite = np.asarray(values, dtype=float)
    finite = finite[np.isfinite(finite)]
    return float(finite.mean()) if finite.size else float("nan")


def auc(truth: np.ndarray, prob: np.ndarray) -> float:
    """ROC-AUC as the Mann-Whitney statistic (ties count half); NaN when one class is missing."""
    from scipy.stats import rankdata

    positives = int(np.sum(truth == 1))
    negatives = len(truth) - positives
    if not positives or not negatives:
        return float("nan")
    ranks = rankdata(prob)
    return float((ranks[truth == 1].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def _macro_micro(truth: np.ndarray, prob: np.ndarray) -> tuple[float, float]:
    known = ~np.isnan(truth)
    macro = macro_mean([auc(truth[known[:, i], i], prob[known[:, i], i]) for i in range(truth.shape[1])])
    return macro, auc(truth[known], prob[known])


def multilabel_auc(truth: np.ndarray, prob: np.ndarray, n_boot: int = 1000, seed: int = 0) -> dict[str, Estimate]:
    """Macro and micro AUC of [N, labels] targets (NaN: masked) with 95% intervals from resampling images."""
    macro, micro = _macro_micro(truth, prob)
    rng = np.random.default_rng(seed)
    draws = [_macro_micro(truth[index], prob[index]) for index in rng.integers(0, len(truth), (n_boot, len(truth)))]
    return {
        "macro_auc": _interval(macro, [d[0] for d in draws]),
        "micro_auc": _interval(micro, [d[1] for d in draws]),
    }


def youden_threshold(truth: np.ndarray, prob: np.ndarray) -> float:
    """The threshold maximising sensitivity + specificity - 1."""
    from sklearn.metrics import roc_curve

    fpr, tpr, thresholds = roc_curve(truth, prob)
    best = int(np.argmax(tpr - fpr))
    return float(min(thresholds[best], 1.0))
