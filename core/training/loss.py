"""Binary cross-entropy over labels with missing targets: a NaN target is masked (contributes nothing)."""

from __future__ import annotations

import numpy as np
import torch


def masked_bce(
    logits: torch.Tensor, target: torch.Tensor, pos_weight: torch.Tensor | None = None, reduction: str = "mean"
) -> torch.Tensor:
    """BCE with logits over the known (non-NaN) targets: their mean (``mean``) or sum (``sum``).

    A masked entry adds neither loss nor gradient; without NaNs ``mean`` equals
    :class:`torch.nn.BCEWithLogitsLoss`. A batch with no known target has loss 0.
    """
    known = ~torch.isnan(target)
    losses = torch.nn.functional.binary_cross_entropy_with_logits(
        logits, torch.where(known, target, 0.0), pos_weight=pos_weight, reduction="none"
    )
    total = torch.where(known, losses, 0.0).sum()
    return total if reduction == "sum" else total / known.sum().clamp(min=1)


def pos_weights(labels: np.ndarray) -> np.ndarray:
    """Per label n_negative / n_positive over the known targets; 1 where a label lacks either class."""
    known = ~np.isnan(labels)
    positives = np.where(known, labels == 1, False).sum(axis=0)
    negatives = np.where(known, labels == 0, False).sum(axis=0)
    defined = (positives > 0) & (negatives > 0)
    return np.where(defined, negatives / np.maximum(positives, 1), 1.0).astype(np.float32)


class MaskedBCE(torch.nn.Module):
    """:func:`masked_bce` as a criterion, with a fixed ``pos_weight`` per label (or none)."""

    def __init__(self, pos_weight: torch.Tensor | None = None) -> None:
        super().__init__()
        self.pos_weight = pos_weight

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return masked_bce(logits, target, self.pos_weight)
