"""Task specs: the question asked of a report, its prompt variants and the answer's schema."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Annotated, Any, Literal, get_args, get_origin

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    computed_field,
    model_validator,
)

from .errors import R2LError
from .image_model import ImageModelSpec
from .rulespec import RuleSet
from .spec import Spec


def _exact_int(value: Any) -> Any:
    if type(value) is not int:
        raise ValueError("must be the integer 0 or 1")
    return value


Binary = Annotated[Literal[0, 1], BeforeValidator(_exact_int)]
"""A 0/1 answer field that refuses ``true``, ``1.0`` and ``"1"``: use it in answer models."""

Finding = Literal["positive", "negative", "uncertain", "not_mentioned"]
"""A four-state answer field: CheXpert's 1 / 0 / -1 / blank. Training labels come from its states
through the uncertainty policy chosen at data-set time (:func:`training_value`)."""

STATES: tuple[str, ...] = get_args(Finding)
CHEXPERT_CODES: dict[str, str] = {"1": "positive", "0": "negative", "-1": "uncertain", "": "not_mentioned"}
"""CheXpert's codes (as table text) → states: how gold files in CheXpert's format are read."""

UncertainPolicy = Literal["ones", "zeros", "ignore"]
"""What an uncertain finding becomes for training: 1, 0, or no label (masked in loss and metrics)."""

UNCERTAIN_POLICIES: tuple[str, ...] = get_args(UncertainPolicy)


def training_value(value: Any, policy: UncertainPolicy) -> float:
    """A label's training target: 0/1 answers as they are; states through ``policy`` (NaN: masked).

    positive → 1; negative and not mentioned → 0 (CheXpert's convention for a blank);
    uncertain → 1 (``ones``), 0 (``zeros``) or NaN (``ignore``).
    """
    if value in (0, 1):
        return float(value)
    if value == "positive":
        return 1.0
    if value in ("negative", "not_mentioned"):
        return 0.0
    if value == "uncertain":
        return {"ones": 1.0, "zeros": 0.0, "ignore": float("nan")}[policy]
    raise ValueError(f"{value!r} is neither 0/1 nor a state ({', '.join(STATES)})")


DEFAULT_CORRECTION = (
    "Your answer was invalid: {reason}. Answer again with only a JSON object that matches "
    "this JSON Schema, nothing else: {schema}"
)


class FewShotExample(Spec):
    """A worked example shown to the model before the report."""

    report: str
    answer: dict[str, Any]


class PromptVariant(Spec):
    """One wording of a task's question; its hash identifies it in every stored label."""

    name: str
    language: str
    instructions: str = Field(description="System text: the task definition and the answer format.")
    examples: tuple[FewShotExample, ...] = ()
    report_template: str = Field("{report}", description="The user turn; must contain {report}.")
    correction: str = Field(DEFAULT_CORRECTION, description="Sent after an invalid answer; {reason}, {schema}.")

    @model_validator(mode="after")
    def _check_templates(self) -> PromptVariant:
        if "{report}" not in self.report_template:
            raise ValueError(f"prompt {self.name!r}: report_template must contain {{report}}")
        return self

    @computed_field  # type: ignore[prop-decorator]
    @property
    def hash(self) -> str:
        content = self.model_dump(exclude={"hash"}, mode="json")
        return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()[:12]

    def messages(self, report: str) -> list[dict[str, str]]:
        """Chat messages for one report: instructions first, the report last (a shared prefix)."""
        messages = [{"role": "system", "content": self.instructions}]
        for example in self.examples:
            messages.append({"role": "user", "content": self.report_template.format(report=example.report)})
            messages.append({"role": "assistant", "content": json.dumps(example.answer)})
        messages.append({"role": "user", "content": self.report_template.format(report=report)})
        return messages

    def corrective_turns(self, raw: str, reason: str, schema: dict) -> list[dict[str, str]]:
        """The turns appended after an invalid answer ``raw``."""
        text = self.correction.format(reason=reason, schema=json.dumps(schema, separators=(",", ":")))
        return [{"role": "assistant", "content": raw}, {"role": "user", "content": text}]


@dataclass(frozen=True)
class Validation:
    """A raw answer checked against the task's schema: ``answer`` or the ``reason`` it is invalid."""

    answer: dict[str, Any] | None = None
    reason: str | None = None


_FENCE = re.compile(r"^```(?:json)?\s*(.*?)\s*```$", re.DOTALL)


class TaskSpec(Spec):
    """A question asked of each report, with everything needed to ask, check and learn it."""

    model_config = ConfigDict(arbitrary_types_allowed=True)
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    version: str
    description: str
    languages: tuple[str, ...]
    prompts: tuple[PromptVariant, ...] = Field(min_length=1)
    answer_model: type[BaseModel] = Field(exclude=True)
    labels: tuple[str, ...] = ()
    rules: RuleSet | None = None
    recipe: ImageModelSpec | None = None

    @model_validator(mode="after")
    def _check(self) -> TaskSpec:
        fields = (*self.answer_model.model_fields, *self.answer_model.model_computed_fields)
        if not self.labels:
            object.__setattr__(self, "labels", fields)
        unknown = set(self.labels) - set(fields)
        if unknown:
            raise ValueError(f"task {self.name!r}: labels {sorted(unknown)} are not fields of the answer model")
        names = [p.name for p in self.prompts]
        if len(set(names)) != len(names):
            raise ValueError(f"task {self.name!r}: prompt variant names must be unique")
        for variant in self.prompts:
            for number, example in enumerate(variant.examples, 1):
                reason = self.validate_answer(json.dumps(example.answer)).reason
                if reason:
                    raise ValueError(f"task {self.name!r}: prompt {variant.name!r}, example {number}: {reason}")
        return self

    @computed_field  # type: ignore[prop-decorator]
    @property
    def answer_schema(self) -> dict[str, Any]:
        """JSON Schema of the answer: what constrained decoding uses (computed fields are not asked)."""
        return self.answer_model.model_json_schema()

    @property
    def longest_answer(self) -> str | None:
        """The longest valid answer as JSON text (spaced as grammars allow), when every field is a Literal.

        Backends size their answer budget (``max_tokens``) from it; None for open-ended fields.
        """
        longest = {}
        for name, field in self.answer_model.model_fields.items():
            values = get_args(field.annotation)
            if get_origin(field.annotation) is Annotated:
                values = get_args(values[0])
            if not values or not all(isinstance(v, str | int | bool | None) for v in values):
                return None
            longest[name] = max(values, key=lambda v: len(json.dumps(v)))
        return "{ " + json.dumps(longest)[1:-1] + " }"

    @property
    def state_labels(self) -> tuple[str, ...]:
        """The labels whose answers are :data:`Finding` states rather than 0/1."""
        fields = self.answer_model.model_fields
        return tuple(name for name in self.labels if name in fields and fields[name].annotation == Finding)

    def prompt(self, name: str | None = None) -> PromptVariant:
        """The named prompt variant, or the first one."""
        if name is None:
            return self.prompts[0]
        for variant in self.prompts:
            if variant.name == name:
                return variant
        choices = ", ".join(p.name for p in self.prompts)
        raise R2LError(f"task {self.name!r} has no prompt variant {name!r} (variants: {choices})")

    def validate_answer(self, raw: str) -> Validation:
        """Turn a model's raw text into a validated answer, or say precisely why not.

        Accepted: a JSON object, optionally in a Markdown code fence; for a one-field answer model
        also the bare value (``1`` for ``{"fracture": 1}``), the answer shape of the original study.
        """
        text = raw.strip()
        fenced = _FENCE.match(text)
        if fenced:
            text = fenced.group(1)
        if not text:
            return Validation(reason="empty answer")
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            return Validation(reason=f"not JSON ({exc.msg} at character {exc.pos})")
        fields = list(self.answer_model.model_fields)
        if not isinstance(value, dict):
            if len(fields) != 1 or isinstance(value, list):
                return Validation(reason=f"expected a JSON object, got {type(value).__name__}")
            value = {fields[0]: value}
        try:
            answer = self.answer_model.model_validate(value)
        except ValidationError as exc:
            problems = [
                f"field {'.'.join(str(p) for p in err['loc']) or '(root)'!r}: {err['msg']}" for err in exc.errors()
            ]
            return Validation(reason="; ".join(problems))
        return Validation(answer=answer.model_dump(mode="json"))
