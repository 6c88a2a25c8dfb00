"""report2label's core: specs, hooks and the report → label → … → predict flow. It imports no plugin.

Python API (each ``r2l`` command wraps one of these)::

    from report2label.core import label, eval_labels, compare, build_dataset, train, run_pipeline
    from report2label.core.evaluate import evaluate
    from report2label.core.export import export
    from report2label.core.predict import predict      # needs no torch

The torch-based functions load on first use, so importing this package never imports torch.
"""

import importlib

from .errors import R2LError
from .hookspecs import hookimpl
from .image_model import ImageModelSpec
from .labelling import Answer, Labeler, LabelRequest, RowFailure, label
from .labelling.agreement import eval_labels
from .rulespec import FindingRule, RuleSet
from .task import Binary, FewShotExample, Finding, PromptVariant, TaskSpec, UncertainPolicy, training_value

_LAZY = {
    "build_dataset": ".data.dataset",
    "compare": ".labelling.compare",
    "train": ".training.loop",
    "run_pipeline": ".pipeline",
}


__all__ = [
    "Answer",
    "Binary",
    "FewShotExample",
    "Finding",
    "FindingRule",
    "ImageModelSpec",
    "LabelRequest",
    "Labeler",
    "PromptVariant",
    "R2LError",
    "RowFailure",
    "RuleSet",
    "TaskSpec",
    "UncertainPolicy",
    "eval_labels",
    "hookimpl",
    "label",
    "training_value",
    *_LAZY,
]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
