"""Prompt variants from a TOML file, validated like a task's built-in ones.

The file holds one or more ``[[variant]]`` tables (and optionally ``task = "NAME"``, refused when
another task reads it)::

    task = "ankle-fracture"

    [[variant]]
    name = "de-short"                    # required; not the name of a built-in variant
    language = "de"                      # required
    instructions = \"\"\"…\"\"\"             # required: the system text (definition, answer format)
    report_template = "Befund: {report}" # optional (default "{report}"); must contain {report}
    correction = "…{reason}…{schema}…"   # optional: sent after an invalid answer

    [[variant.examples]]                 # optional few-shot examples, in order
    report = "Weber-B-Fraktur der distalen Fibula."
    answer = { fracture = 1 }            # validated against the task's answer model

    [[variant]]
    name = "de-few-shot-short-template"
    based_on = "de-few-shot"             # optional: the keys not given come from this variant
    report_template = "{report}"

Every error is one line naming the file and the key, for example
``prompts.toml: variant 'x': key 'report_template': must contain {report}``. A variant's hash (of
its content, name included) is stored with every label, as for the built-in variants.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from .errors import R2LError
from .task import PromptVariant, TaskSpec

VARIANT_KEYS = ("name", "language", "instructions", "examples", "report_template", "correction", "evidence", "based_on")
EXAMPLE_KEYS = ("report", "answer")
TOP_KEYS = ("task", "variant")


def _where(index: int, raw: dict[str, Any]) -> str:
    name = raw.get("name")
    return f"variant {name!r}" if isinstance(name, str) and name else f"variant {index}"


def _key_of(loc: tuple[Any, ...]) -> str:
    """A pydantic error location as the file's key: ``key 'language'``, ``example 2: key 'answer'``."""
    if len(loc) >= 2 and loc[0] == "examples" and isinstance(loc[1], int):
        rest = ".".join(str(p) for p in loc[2:])
        return f"example {loc[1] + 1}" + (f": key {rest!r}" if rest else "")
    return f"key {'.'.join(str(p) for p in loc) or '(variant)'!r}"


def _fillable(template: str, **values: str) -> str | None:
    """Why ``template`` cannot be filled with ``values`` (None when it can)."""
    try:
        template.format(**values)
    except KeyError as exc:
        return f"has the placeholder {{{exc.args[0]}}}, which is not filled; write a literal brace as {{{{ or }}}}"
    except (ValueError, IndexError) as exc:
        return f"cannot be filled ({exc}); write a literal brace as {{{{ or }}}}"
    return None


def _variant(path: Path, index: int, raw: Any, task: TaskSpec) -> PromptVariant:
    if not isinstance(raw, dict):
        raise R2LError(f"{path}: variant {index}: expected a table ([[variant]]), got {type(raw).__name__}")
    where = _where(index, raw)
    unknown = [key for key in raw if key not in VARIANT_KEYS]
    if unknown:
        raise R2LError(f"{path}: {where}: key {unknown[0]!r}: unknown (keys: {', '.join(VARIANT_KEYS)})")
    data = dict(raw)
    base_name = data.pop("based_on", None)
    if base_name is not None:
        if not isinstance(base_name, str) or base_name not in {p.name for p in task.prompts}:
            choices = ", ".join(p.name for p in task.prompts)
            raise R2LError(
                f"{path}: {where}: key 'based_on': task {task.name!r} has no prompt variant {base_name!r} "
                f"(variants: {choices})"
            )
        base = task.prompt(base_name).model_dump(exclude={"hash", "name"})
        data = base | data
    for key in ("name", "language", "instructions"):
        if key not in data:
            raise R2LError(f"{path}: {where}: key {key!r}: missing")
    examples = data.get("examples", [])
    if isinstance(examples, list):
        for number, example in enumerate(examples, 1):
            if isinstance(example, dict):
                extra = [key for key in example if key not in EXAMPLE_KEYS]
                if extra:
                    raise R2LError(
                        f"{path}: {where}: example {number}: key {extra[0]!r}: unknown (keys: report, answer)"
                    )
    template = data.get("report_template")
    if isinstance(template, str):
        if "{report}" not in template:
            raise R2LError(f"{path}: {where}: key 'report_template': must contain {{report}}")
        problem = _fillable(template, report="")
        if problem:
            raise R2LError(f"{path}: {where}: key 'report_template': {problem}")
    correction = data.get("correction")
    if isinstance(correction, str):
        problem = _fillable(correction, reason="", schema="")
        if problem:
            raise R2LError(f"{path}: {where}: key 'correction': {problem} (placeholders: {{reason}}, {{schema}})")
    try:
        variant = PromptVariant.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        message = err["msg"].removeprefix("Value error, ")
        raise R2LError(f"{path}: {where}: {_key_of(tuple(err['loc']))}: {message}") from None
    for number, example in enumerate(variant.examples, 1):
        reason = task.for_prompt(variant).validate_answer(json.dumps(example.answer)).reason
        if reason:
            raise R2LError(
                f"{path}: variant {variant.name!r}: example {number}: key 'answer': not an answer of task "
                f"{task.name!r}: {reason}"
            )
    return variant


def read_prompt_file(path: str | Path, task: TaskSpec) -> tuple[PromptVariant, ...]:
    """The prompt variants of ``path`` for ``task``, each validated (examples against its answer model)."""
    path = Path(path)
    if not path.is_file():
        raise R2LError(f"{path}: no such file" if not path.exists() else f"{path}: is not a file")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise R2LError(f"{path}: not valid TOML ({exc})") from None
    unknown = [key for key in data if key not in TOP_KEYS]
    if unknown:
        raise R2LError(f"{path}: key {unknown[0]!r}: unknown (keys: task, variant — a variant is a [[variant]] table)")
    if "task" in data and data["task"] != task.name:
        raise R2LError(f"{path}: key 'task': the file is for task {data['task']!r}, not {task.name!r}")
    raw = data.get("variant")
    if isinstance(raw, dict):  # a single [variant] table
        raw = [raw]
    if not isinstance(raw, list) or not raw:
        raise R2LError(f"{path}: key 'variant': no prompt variant; write each as a [[variant]] table")
    variants = tuple(_variant(path, index, entry, task) for index, entry in enumerate(raw, 1))
    builtin = {p.name for p in task.prompts}
    seen: set[str] = set()
    for variant in variants:
        if variant.name in builtin:
            raise R2LError(
                f"{path}: variant {variant.name!r}: key 'name': task {task.name!r} has a built-in variant of that "
                "name; choose another"
            )
        if variant.name in seen:
            raise R2LError(f"{path}: variant {variant.name!r}: key 'name': appears more than once")
        seen.add(variant.name)
    return variants


def with_prompt_file(task: TaskSpec, path: str | Path | None) -> TaskSpec:
    """``task`` with the variants of ``path`` after its own (``task`` itself when ``path`` is None).

    The task is built anew through its validation, as a task with those variants built in would be.
    """
    if path is None:
        return task
    variants = read_prompt_file(path, task)
    fields = {name: getattr(task, name) for name in type(task).model_fields}
    try:
        return type(task).model_validate(fields | {"prompts": (*task.prompts, *variants)})
    except ValidationError as exc:
        raise R2LError(f"{path}: {exc.errors()[0]['msg'].removeprefix('Value error, ')}") from None
