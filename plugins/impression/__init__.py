"""The impression task: the Impression section written from the Findings (seed 001), a free-text answer.

Its own plugin rather than part of the chest one: it asks another question (write a text, not
classify findings) of another input (a report without its Impression) and is scored otherwise
(ROUGE and BLEU, not agreement), and nothing in it is specific to the chest.
"""

from pydantic import BaseModel, ConfigDict, Field

from report2label.core.hookspecs import hookimpl
from report2label.core.task import TaskSpec

from .example import write_example
from .prompts import PROMPTS

MAX_CHARS = 1000
"""The longest impression accepted: about 1.5 times the longest of 3,055 Indiana chest impressions (660)."""


class ImpressionAnswer(BaseModel):
    """The Impression section: free text of 1 to 1,000 characters."""

    model_config = ConfigDict(extra="forbid")
    impression: str = Field(min_length=1, max_length=MAX_CHARS, description="The report's Impression section.")


TASK = TaskSpec(
    name="impression",
    version="1",
    description="The Impression section written from the Findings (and the indication or history): free text.",
    languages=("en",),
    prompts=PROMPTS,
    answer_model=ImpressionAnswer,
)


@hookimpl
def register_tasks(register) -> None:
    register(TASK)


@hookimpl
def register_examples(register) -> None:
    register(TASK.name, write_example)
