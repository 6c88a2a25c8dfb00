"""Look-ups by name over what the plugins registered: tasks, labelers, trainers, example writers."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from .errors import R2LError
from .plugins import collect
from .task import TaskSpec

if TYPE_CHECKING:
    from .labelling.labeler import Labeler
    from .training.trainer import Trainer


def _by_name(kind: str, items: list[tuple[str, object]]) -> dict[str, object]:
    found: dict[str, object] = {}
    for name, item in items:
        if name in found:
            raise R2LError(f"two plugins register a {kind} named {name!r}; restrict plugins with R2L_PLUGINS")
        found[name] = item
    return found


def _pick(kind: str, name: str, found: dict) -> object:
    if name not in found:
        known = ", ".join(sorted(found)) or "none installed"
        raise R2LError(f"unknown {kind} {name!r} (available: {known})")
    return found[name]


def tasks() -> dict[str, TaskSpec]:
    items = collect("register_tasks")
    for (spec,) in items:
        if not isinstance(spec, TaskSpec):
            raise R2LError(f"register_tasks got {type(spec).__name__}, expected a TaskSpec")
    return _by_name("task", [(spec.name, spec) for (spec,) in items])  # type: ignore[return-value]


def task(name: str) -> TaskSpec:
    return _pick("task", name, tasks())  # type: ignore[return-value]


def labelers() -> dict[str, type[Labeler]]:
    return _by_name("labeler", [(cls.name, cls) for (cls,) in collect("register_labelers")])  # type: ignore[return-value]


def labeler(name: str) -> type[Labeler]:
    return _pick("labelling backend", name, labelers())  # type: ignore[return-value]


def trainers() -> dict[str, Trainer]:
    return _by_name("trainer", [(t.name, t) for (t,) in collect("register_trainers")])  # type: ignore[return-value]


def trainer(name: str) -> Trainer:
    return _pick("trainer", name, trainers())  # type: ignore[return-value]


def examples() -> dict[str, Callable]:
    return _by_name("example", collect("register_examples"))  # type: ignore[return-value]


def example(name: str) -> Callable:
    return _pick("example", name, examples())  # type: ignore[return-value]
