"""Labelling: the engine, the store and the Labeler interface backends implement."""

from .engine import LabelSummary, label
from .labeler import Labeler, LabelRequest, RowFailure

__all__ = ["LabelRequest", "LabelSummary", "Labeler", "RowFailure", "label"]
