"""A third-party plugin as a user would write one: a task of its own and a scriptable fake labeler.

The tests install it through a real ``report2label`` entry point (a dist-info folder on the path),
so it loads exactly as a pip-installed package would.
"""

import json
import time
from collections import Counter

from pydantic import BaseModel, ConfigDict

from report2label.core import Binary, Labeler, PromptVariant, RowFailure, TaskSpec, hookimpl


class SmokeAnswer(BaseModel):
    model_config = ConfigDict(extra="forbid")
    smoke: Binary


TASK = TaskSpec(
    name="smoke-test",
    version="1",
    description="Does the note mention smoke?",
    languages=("en",),
    prompts=(
        PromptVariant(name="plain", language="en", instructions='Answer {"smoke": 1} or {"smoke": 0}.'),
        PromptVariant(name="terse", language="en", instructions="Smoke? JSON only."),
    ),
    answer_model=SmokeAnswer,
)


class FakeLabeler(Labeler):
    """Answers 1 when the report contains a keyword; scriptable failures; logs what it is asked."""

    name = "fake"
    batch_size = 4

    class Options(Labeler.Options):
        log: str | None = None
        delay: float = 0.0
        invalid_first: int = 0
        garbage: str = "maybe"
        fail_ids: list[str] = []

    def __init__(self, task, prompt, options) -> None:
        super().__init__(task, prompt, options)
        self.seen: Counter[str] = Counter()

    @property
    def model_id(self) -> str:
        return "fake-1"

    def label(self, requests):
        time.sleep(self.options.delay)
        answers = []
        for request in requests:
            self.seen[request.report_id] += 1
            if self.options.log:
                with open(self.options.log, "a") as log:
                    log.write(json.dumps({"id": request.report_id, "messages": request.messages}) + "\n")
            if request.report_id in self.options.fail_ids:
                answers.append(RowFailure("server unreachable"))
            elif self.seen[request.report_id] <= self.options.invalid_first:
                answers.append(self.options.garbage)
            else:
                hit = any(word in request.report.lower() for word in ("smoke", "fraktur"))
                answers.append(json.dumps({self.task.labels[0]: int(hit)}))
        return answers


@hookimpl
def register_tasks(register):
    register(TASK)


@hookimpl
def register_labelers(register):
    register(FakeLabeler)
