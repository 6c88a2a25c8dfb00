"""The chest X-ray task: 13 CheXpert findings in four states plus Normal, from English reports.

A plugin like any third-party one: it imports only report2label's public API and registers
through the ``report2label`` entry-point group (see docs/plugins.md, where it is the worked example).
"""

from report2label.core.hookspecs import hookimpl
from report2label.core.task import TaskSpec

from .answer import ChestAnswer
from .example import write_example
from .patterns import RULES
from .prompts import EVIDENCE_INSTRUCTIONS, PROMPTS
from .recipe import RECIPE

TASK = TaskSpec(
    name="chest-xray",
    version="1",
    description=(
        "13 findings of chest radiograph reports (CheXpert's, as in RadReportX), each positive, negative, "
        "uncertain or not mentioned, plus Normal: none of them positive or uncertain."
    ),
    languages=("en", "de"),
    prompts=PROMPTS,
    answer_model=ChestAnswer,
    rules=RULES,
    recipe=RECIPE,
    evidence_instructions=EVIDENCE_INSTRUCTIONS,
)


@hookimpl
def register_tasks(register) -> None:
    register(TASK)


@hookimpl
def register_examples(register) -> None:
    register(TASK.name, write_example)
