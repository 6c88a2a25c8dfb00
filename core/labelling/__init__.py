"""Labelling: the engine, the store and the Labeler interface backends implement."""

from .engine import LabelSummary, label
from .labeler import Answer, Labeler, LabelRequest, RowFailure

__all__ = ["Answer", "LabelRequest", "LabelSummary", "Labeler", "RowFailure", "label"]
