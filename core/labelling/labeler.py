"""The Labeler interface every labelling backend implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from ..task import PromptVariant, TaskSpec


@dataclass(frozen=True)
class LabelRequest:
    """One report to label; ``messages`` holds the prompt, the report and any corrective turns."""

    report_id: str
    report: str
    messages: tuple[dict[str, str], ...]


OPEN_ENDED_MAX_TOKENS = 256
"""The answer budget of a task whose answers have no longest form (free text, numbers)."""


def answer_budget(task: TaskSpec, count: Callable[[str], int] = lambda text: len(text.encode())) -> int:
    """Tokens enough for the task's longest answer; ``count`` tokenises (default: bytes, an upper bound)."""
    longest = task.longest_answer
    return count(longest) + 8 if longest else OPEN_ENDED_MAX_TOKENS


class RowFailure(str):
    """A backend's per-row failure reason (server down, report too long): the row becomes ``failed``."""


class Labeler(ABC):
    """A labelling backend: turns requests into raw answer texts, which the engine validates.

    Subclasses set ``name``, may extend ``Options`` (validated from ``--model`` and ``-O KEY=VALUE``)
    and implement :meth:`label`. The engine never trusts an answer it has not validated.
    """

    name: ClassVar[str]
    description: ClassVar[str] = ""
    uses_prompt: ClassVar[bool] = True
    batch_size: ClassVar[int] = 16

    class Options(BaseModel):
        model_config = ConfigDict(extra="forbid")
        model: str | None = None

    def __init__(self, task: TaskSpec, prompt: PromptVariant, options: Options) -> None:
        self.task = task
        self.prompt = prompt
        self.options = options

    @property
    def model_id(self) -> str:
        """Identifies the model in stored labels (a name, or a file hash); part of the resume key."""
        return self.options.model or ""

    @property
    def params(self) -> dict[str, Any]:
        """Decoding parameters recorded with every label."""
        return {}

    def prepare(self, reports: Sequence[str]) -> None:  # noqa: B027 (optional hook, no-op by default)
        """Called once with every pending report text before labelling (to size a context, say)."""

    def count_tokens(self, messages: Sequence[dict[str, str]]) -> int | None:
        """Prompt tokens of ``messages`` by the model's own tokenizer, or None where the backend cannot tell."""
        return None

    @abstractmethod
    def label(self, requests: list[LabelRequest]) -> list[str | RowFailure]:
        """Return one raw answer text (or a :class:`RowFailure`) per request, in order."""

    def close(self) -> None:  # noqa: B027 (optional hook, no-op by default)
        """Release servers, models or connections."""
