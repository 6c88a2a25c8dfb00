"""Look-ups by name over what the plugins registered: tasks, labelers, engines, trainers, example writers.

Every registration is checked here: something of the wrong kind is a one-line :class:`R2LError`
naming the plugin that registered it.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING

from .errors import R2LError
from .plugins import Registration, collect, plugin_label
from .task import TaskSpec

if TYPE_CHECKING:
    from .labelling.engines import Engine
    from .labelling.labeler import Labeler
    from .training.trainer import Trainer


def _describe(value: object) -> str:
    if inspect.isclass(value):
        return f"the class {value.__qualname__}"
    if inspect.isroutine(value):
        return f"the function {value.__qualname__}"
    text = repr(value)
    if len(text) <= 40 and "\n" not in text:
        return f"a {type(value).__name__} ({text})"
    return f"a {type(value).__name__}"


def _wrong(item: Registration, hook: str, got: str, expected: str) -> R2LError:
    return R2LError(f"{plugin_label(item.plugin)}: {hook} got {got}; expected {expected}")


def _args(item: Registration, hook: str, usage: str) -> tuple:
    if len(item.args) != len(usage.split(",")):
        count = len(item.args)
        raise _wrong(item, hook, f"{count} argument{'' if count == 1 else 's'}", f"register({usage})")
    return item.args


def _check_task(item: Registration) -> tuple[str, str, TaskSpec]:
    (spec,) = _args(item, "register_tasks", "task_spec")
    if not isinstance(spec, TaskSpec):
        raise _wrong(item, "register_tasks", _describe(spec), "a TaskSpec instance")
    return item.plugin, spec.name, spec


def _check_class(item: Registration, hook: str, base: type, base_path: str) -> tuple[str, str, type]:
    """A registered class: a named, concrete subclass of ``base`` (public as ``base_path``)."""
    (cls,) = _args(item, hook, f"{base.__name__}Class")
    expected = f"a subclass of {base_path} (the class, not an instance)"
    if not (inspect.isclass(cls) and issubclass(cls, base)):
        got = f"an instance of {type(cls).__qualname__}" if isinstance(cls, base) else _describe(cls)
        raise _wrong(item, hook, got, expected)
    if not isinstance(getattr(cls, "name", None), str) or not cls.name:
        raise _wrong(item, hook, f"{_describe(cls)} without a name", "a class attribute name = '...'")
    if inspect.isabstract(cls):
        missing = ", ".join(sorted(cls.__abstractmethods__))
        raise _wrong(item, hook, f"{_describe(cls)}, which does not implement {missing}", expected)
    return item.plugin, cls.name, cls


def _check_labeler(item: Registration) -> tuple[str, str, type[Labeler]]:
    from .labelling.labeler import Labeler

    return _check_class(item, "register_labelers", Labeler, "report2label.core.Labeler")


def _check_engine(item: Registration) -> tuple[str, str, type[Engine]]:
    from .labelling.engines import Engine

    return _check_class(item, "register_engines", Engine, "report2label.core.labelling.engines.Engine")


def _check_describer(item: Registration) -> tuple[str, str, type]:
    from .describe import Describer

    return _check_class(item, "register_describers", Describer, "report2label.core.describe.Describer")


def _check_trainer(item: Registration) -> tuple[str, str, Trainer]:
    from .training.trainer import Trainer

    (trainer,) = _args(item, "register_trainers", "trainer")
    if not isinstance(trainer, Trainer):
        raise _wrong(item, "register_trainers", _describe(trainer), "a report2label.core.training.trainer.Trainer")
    return item.plugin, trainer.name, trainer


def _check_example(item: Registration) -> tuple[str, str, Callable]:
    name, write = _args(item, "register_examples", "task_name, write")
    if not isinstance(name, str) or not name:
        raise _wrong(item, "register_examples", f"the task name {name!r}", "a task name (str) first")
    if not callable(write):
        raise _wrong(item, "register_examples", _describe(write), "a callable write(directory, seed, ...)")
    return item.plugin, name, write


def _by_name(kind: str, items: list[tuple[str, str, object]]) -> dict[str, object]:
    found: dict[str, object] = {}
    owners: dict[str, str] = {}
    for plugin, name, item in items:
        if name in found:
            raise R2LError(
                f"two plugins register a {kind} named {name!r} ({plugin_label(owners[name])} and "
                f"{plugin_label(plugin)}); restrict plugins with R2L_PLUGINS"
            )
        found[name], owners[name] = item, plugin
    return found


def _pick(kind: str, name: str, found: dict) -> object:
    if name not in found:
        known = ", ".join(sorted(found)) or "none installed"
        raise R2LError(f"unknown {kind} {name!r} (available: {known})")
    return found[name]


def tasks() -> dict[str, TaskSpec]:
    return _by_name("task", [_check_task(item) for item in collect("register_tasks")])  # type: ignore[return-value]


def task(name: str) -> TaskSpec:
    return _pick("task", name, tasks())  # type: ignore[return-value]


def labelers() -> dict[str, type[Labeler]]:
    return _by_name("labeler", [_check_labeler(item) for item in collect("register_labelers")])  # type: ignore[return-value]


def labeler(name: str) -> type[Labeler]:
    return _pick("labelling backend", name, labelers())  # type: ignore[return-value]


def engines() -> dict[str, type[Engine]]:
    return _by_name("engine", [_check_engine(item) for item in collect("register_engines")])  # type: ignore[return-value]


def engine(name: str) -> type[Engine]:
    return _pick("labelling engine", name, engines())  # type: ignore[return-value]


def describers() -> dict[str, type]:
    return _by_name("describer", [_check_describer(item) for item in collect("register_describers")])  # type: ignore[return-value]


def describer(name: str) -> type:
    return _pick("describing backend", name, describers())  # type: ignore[return-value]


def trainers() -> dict[str, Trainer]:
    return _by_name("trainer", [_check_trainer(item) for item in collect("register_trainers")])  # type: ignore[return-value]


def trainer(name: str) -> Trainer:
    return _pick("trainer", name, trainers())  # type: ignore[return-value]


def examples() -> dict[str, Callable]:
    return _by_name("example", [_check_example(item) for item in collect("register_examples")])  # type: ignore[return-value]


def example(name: str) -> Callable:
    return _pick("example", name, examples())  # type: ignore[return-value]
