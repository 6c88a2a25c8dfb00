"""The Labeler interface every labelling backend implements."""

from __future__ import annotations

import json
import math
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from ..task import EVIDENCE, PromptVariant, TaskSpec


@dataclass(frozen=True)
class LabelRequest:
    """One report to label; ``messages`` holds the prompt, the report and any corrective turns."""

    report_id: str
    report: str
    messages: tuple[dict[str, str], ...]


OPEN_ENDED_MAX_TOKENS = 256
"""The answer budget of a task whose answers have no longest form (free text, numbers)."""
EVIDENCE_MAX_TOKENS = 64
"""The answer budget each quoted label adds when a variant asks for evidence."""


def answer_budget(task: TaskSpec, count: Callable[[str], int] = lambda text: len(text.encode())) -> int:
    """Tokens enough for the task's longest answer; ``count`` tokenises (default: bytes, an upper bound)."""
    if EVIDENCE in task.answer_model.model_fields:  # the task as an evidence variant asks it
        plain = task.model_copy(update={"answer_model": task.answer_model.__bases__[0]})
        return answer_budget(plain, count) + EVIDENCE_MAX_TOKENS * len(task.evidence_labels)
    longest = task.longest_answer
    return count(longest) + 8 if longest else OPEN_ENDED_MAX_TOKENS


class RowFailure(str):
    """A backend's per-row failure reason (server down, report too long): the row becomes ``failed``."""


class Answer(str):
    """A raw answer text with what the backend knows beyond it; a plain ``str`` answer stays valid.

    ``confidence``: per label a probability in (0, 1] (of the chosen value's tokens, the agreement
    of samples, a rule's certainty). ``evidence``: per label the spans of the report the backend
    decided on, as :func:`~report2label.core.labelling.evidence.span` dicts (the ``rules`` backend).
    """

    confidence: dict[str, float] | None
    evidence: dict[str, list[dict[str, Any]]] | None

    def __new__(
        cls,
        text: str,
        confidence: dict[str, float] | None = None,
        evidence: dict[str, list[dict[str, Any]]] | None = None,
    ) -> Answer:
        answer = super().__new__(cls, text)
        answer.confidence = confidence
        answer.evidence = evidence
        return answer


_KEY = re.compile(r'\s*"((?:[^"\\]|\\.)*)"\s*:\s*')
_NEXT = re.compile(r"\s*,?")


def value_spans(text: str) -> dict[str, tuple[int, int]]:
    """Character spans of the values of a flat JSON answer's top-level keys; a bare value is the one span ``""``.

    Empty when the text is not such an answer.
    """
    decoder = json.JSONDecoder()
    brace = text.find("{")
    if brace < 0:
        stripped = text.strip()
        start = text.find(stripped) if stripped else 0
        return {"": (start, start + len(stripped))} if stripped else {}
    spans: dict[str, tuple[int, int]] = {}
    position = brace + 1
    while key := _KEY.match(text, position):
        try:
            _, end = decoder.raw_decode(text, key.end())
            spans[json.loads(f'"{key.group(1)}"')] = (key.end(), end)
        except json.JSONDecodeError:
            return {}
        position = _NEXT.match(text, end).end()  # type: ignore[union-attr]
    return spans


def token_confidence(
    text: str, tokens: Sequence[tuple[bytes, float]], labels: Sequence[str]
) -> dict[str, float] | None:
    """Per label, the probability of its value's tokens: exp(sum of their log-probabilities), in (0, 1].

    ``tokens`` are the generated tokens as (bytes, log-probability), in order; a token that straddles
    the value's edge counts. None when the tokens do not spell ``text`` (bytes before it aside).
    """
    base = b"".join(piece for piece, _ in tokens).find(text.encode())  # a detokenizer may add a leading space
    if base < 0 or not text:
        return None
    spans = value_spans(text)
    if "" in spans and len(labels) == 1:
        spans = {labels[0]: spans[""]}
    edges, offset = [], -base
    for piece, _ in tokens:
        edges.append((offset, offset + len(piece)))
        offset += len(piece)
    confidence = {}
    for label in labels:
        if label not in spans:
            continue
        start, end = (len(text[:i].encode()) for i in spans[label])
        logprob = sum(lp for (a, b), (_, lp) in zip(edges, tokens, strict=True) if a < end and b > start)
        confidence[label] = min(1.0, max(math.exp(logprob), 5e-324))
    return confidence


def confidence_kind(samples: int, temperature: float) -> str:
    """How a backend measures confidence, as its params record it: token probability or sample agreement."""
    return "token_probability" if samples == 1 else f"agreement of {samples} answers at temperature {temperature}"


def agreement(task: TaskSpec, chosen: str, samples: Sequence[str]) -> dict[str, float] | None:
    """Per label, the share of ``[chosen, *samples]`` whose valid answer gives the chosen value (self-consistency)."""
    answer = task.validate_answer(chosen).answer
    if answer is None:
        return None
    others = [task.validate_answer(s).answer for s in samples]
    votes = 1 + len(samples)
    return {
        label: (1 + sum(1 for o in others if o is not None and o.get(label) == answer.get(label))) / votes
        for label in task.labels
    }


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
        """Return one raw answer text (or a :class:`RowFailure`) per request, in order.

        An :class:`Answer` (a ``str``) may carry per-label ``confidence`` and ``evidence``.
        """

    def close(self) -> None:  # noqa: B027 (optional hook, no-op by default)
        """Release servers, models or connections."""
