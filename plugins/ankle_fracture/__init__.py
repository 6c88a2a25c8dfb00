"""The ankle-fracture task of Al Mohamad et al. (Acad Radiol 2025): is there an upper ankle joint fracture?"""

from pydantic import BaseModel, ConfigDict

from report2label.core.hookspecs import hookimpl
from report2label.core.task import Binary, TaskSpec

from .example import write_example
from .patterns import RULES
from .prompts import EVIDENCE_INSTRUCTIONS, PROMPTS
from .recipe import RECIPE


class AnkleAnswer(BaseModel):
    """1 if the report describes a fracture of the upper ankle joint (distal tibia, distal fibula, talus)."""

    model_config = ConfigDict(extra="forbid")
    fracture: Binary


TASK = TaskSpec(
    name="ankle-fracture",
    version="1",
    description=(
        "Upper ankle joint (OSG) fracture in German ankle X-ray reports: distal tibia, distal fibula or "
        "talus; other bones and the foot do not count; a suspected fracture counts; a treated fracture "
        "counts unless no fracture line is visible any more."
    ),
    languages=("de",),
    prompts=PROMPTS,
    answer_model=AnkleAnswer,
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
