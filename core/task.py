"""Task specs: the question asked of a report, its prompt variants and the answer's schema."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from functools import cache
from typing import Annotated, Any, Literal, get_args, get_origin

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    computed_field,
    create_model,
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
TEXT_CORRECTION = "Your answer was invalid: {reason}. Answer again with the text only, nothing else."
"""The correction of a free-text task's prompt variants (no JSON Schema to show)."""


EVIDENCE = "evidence"
"""The answer key of a variant that asks for evidence: an object of one quote (or null) per label."""
DEFAULT_EVIDENCE_INSTRUCTIONS = (
    'Also give, under the key "evidence", an object with one entry per label: a verbatim quote from the '
    "report that supports your answer for that label, copied character for character, or null when no "
    "text of the report speaks of it."
)


@cache
def _with_evidence(answer_model: type[BaseModel], labels: tuple[str, ...]) -> type[BaseModel]:
    """``answer_model`` with a required ``evidence`` object: per label a verbatim quote from the report, or null."""
    quote = (str | None, Field(description="A verbatim quote from the report that supports this answer, or null."))
    quotes = create_model(
        f"{answer_model.__name__}Evidence", __config__=ConfigDict(extra="forbid"), **dict.fromkeys(labels, quote)
    )  # type: ignore[call-overload]
    return create_model(f"{answer_model.__name__}WithEvidence", __base__=answer_model, **{EVIDENCE: (quotes, ...)})  # type: ignore[call-overload]


class FewShotExample(Spec):
    """A worked example shown to the model before the report."""

    report: str
    answer: dict[str, Any] | str
    """The answer as JSON fields, or the text itself for a free-text task."""


class PromptVariant(Spec):
    """One wording of a task's question; its hash identifies it in every stored label."""

    name: str
    language: str
    instructions: str = Field(description="System text: the task definition and the answer format.")
    examples: tuple[FewShotExample, ...] = ()
    report_template: str = Field("{report}", description="The user turn; must contain {report}.")
    correction: str = Field(DEFAULT_CORRECTION, description="Sent after an invalid answer; {reason}, {schema}.")
    evidence: bool = Field(
        False, description=f"Ask for a verbatim quote per label: the answer gains an {EVIDENCE!r} object."
    )

    @model_validator(mode="after")
    def _check_templates(self) -> PromptVariant:
        if "{report}" not in self.report_template:
            raise ValueError(f"prompt {self.name!r}: report_template must contain {{report}}")
        return self

    @computed_field  # type: ignore[prop-decorator]
    @property
    def hash(self) -> str:
        content = self.model_dump(exclude={"hash"} | (set() if self.evidence else {"evidence"}), mode="json")
        return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()[:12]

    def messages(self, report: str) -> list[dict[str, str]]:
        """Chat messages for one report: instructions first, the report last (a shared prefix)."""
        messages = [{"role": "system", "content": self.instructions}]
        for example in self.examples:
            messages.append({"role": "user", "content": self.report_template.format(report=example.report)})
            answer = example.answer if isinstance(example.answer, str) else json.dumps(example.answer)
            messages.append({"role": "assistant", "content": answer})
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
    evidence_instructions: dict[str, str] = Field(
        {}, description="Per language: what an evidence variant adds to the instructions (default: English, generic)."
    )

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
        text_field = self.text_field
        if text_field and self.answer_schema["properties"][text_field].get("maxLength") is None:
            raise ValueError(f"task {self.name!r}: free-text field {text_field!r} needs a max_length")
        for variant in self.prompts:
            for number, example in enumerate(variant.examples, 1):
                answer = example.answer
                asked = self.for_prompt(variant)  # with the evidence object where the variant asks for it
                reason = asked.validate_answer(answer if isinstance(answer, str) else json.dumps(answer)).reason
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
    def text_field(self) -> str | None:
        """The answer's one field when it is free text (a string without choices), else None.

        A free-text task's raw answer is the text itself; its field must set ``max_length``.
        """
        properties = self.answer_schema.get("properties", {})
        if len(properties) != 1:
            return None
        name, schema = next(iter(properties.items()))
        free = schema.get("type") == "string" and not {"enum", "const", "pattern", "format"} & schema.keys()
        return name if free else None

    def answer_text(self, answer: dict[str, Any]) -> str:
        """A validated answer as a model should write it: the text of a free-text task, else JSON of the
        asked fields (computed fields left out), spaced as ``json.dumps`` does."""
        if self.text_field:
            return answer[self.text_field]
        return json.dumps({name: answer[name] for name in self.answer_model.model_fields})

    @property
    def state_labels(self) -> tuple[str, ...]:
        """The labels whose answers are :data:`Finding` states rather than 0/1."""
        fields = self.answer_model.model_fields
        return tuple(name for name in self.labels if name in fields and fields[name].annotation == Finding)

    @property
    def evidence_labels(self) -> tuple[str, ...]:
        """The labels a variant asking for evidence quotes: those that are answer fields (not computed)."""
        return tuple(name for name in self.labels if name in self.answer_model.model_fields)

    def for_prompt(self, variant: PromptVariant) -> TaskSpec:
        """The task as ``variant`` asks it: with the :data:`EVIDENCE` object when the variant asks for evidence."""
        if not variant.evidence or EVIDENCE in self.answer_model.model_fields:
            return self
        return self.model_copy(update={"answer_model": _with_evidence(self.answer_model, self.evidence_labels)})

    def evidence_variant(self, variant: PromptVariant) -> PromptVariant:
        """``variant`` asking for evidence too: named ``<name>+evidence``, its instructions extended.

        Few-shot examples must then show evidence in their answers (write such a variant in a prompt file).
        """
        if variant.evidence:
            return variant
        text = self.evidence_instructions.get(variant.language, DEFAULT_EVIDENCE_INSTRUCTIONS)
        asked = variant.model_copy(
            update={
                "name": f"{variant.name}+evidence",
                "evidence": True,
                "instructions": f"{variant.instructions}\n\n{text}",
            }
        )
        for number, example in enumerate(asked.examples, 1):
            answer = example.answer if isinstance(example.answer, str) else json.dumps(example.answer)
            reason = self.for_prompt(asked).validate_answer(answer).reason
            if reason:
                raise R2LError(
                    f"task {self.name!r}: prompt {variant.name!r} cannot ask for evidence: its example {number} "
                    f"gives none ({reason}); use a zero-shot variant or a prompt file variant with evidence = true"
                )
        return PromptVariant.model_validate(asked.model_dump(exclude={"hash"}))

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
        A free-text task's answer is the text itself (stripped), or a JSON object of its one field
        (what a backend constraining every task to its JSON Schema writes).
        """
        if self.text_field:
            return self._validate_text(raw)
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
        return self._validated(value)

    def _validate_text(self, raw: str) -> Validation:
        field, text = self.text_field, raw.strip()
        if text.startswith("{"):
            try:
                value = json.loads(text)
            except json.JSONDecodeError:
                value = None
            if isinstance(value, dict) and list(value) == [field] and isinstance(value[field], str):
                text = value[field].strip()
        if not text:
            return Validation(reason="empty answer")
        return self._validated({field: text})

    def _validated(self, value: dict[str, Any]) -> Validation:
        try:
            answer = self.answer_model.model_validate(value)
        except ValidationError as exc:
            problems = [
                f"field {'.'.join(str(p) for p in err['loc']) or '(root)'!r}: {err['msg']}" for err in exc.errors()
            ]
            return Validation(reason="; ".join(problems))
        return Validation(answer=answer.model_dump(mode="json"))
