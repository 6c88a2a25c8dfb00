"""report2label's core: specs, hooks and the report → label flow. It imports no plugin.

Python API (each ``r2l`` command wraps one of these)::

    from report2label.core import label, eval_labels
    summary = label("ankle-fracture", "reports.csv", "out/")
"""

from .errors import R2LError
from .hookspecs import hookimpl
from .image_model import ImageModelSpec
from .labelling import Labeler, LabelRequest, RowFailure, label
from .labelling.agreement import eval_labels
from .rulespec import FindingRule, RuleSet
from .task import Binary, FewShotExample, PromptVariant, TaskSpec

__all__ = [
    "Binary",
    "FewShotExample",
    "FindingRule",
    "ImageModelSpec",
    "LabelRequest",
    "Labeler",
    "PromptVariant",
    "R2LError",
    "RowFailure",
    "RuleSet",
    "TaskSpec",
    "eval_labels",
    "hookimpl",
    "label",
]
