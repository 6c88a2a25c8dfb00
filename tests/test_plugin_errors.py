"""A plugin that registers something of the wrong kind gets a one-line error naming it.

The plugins here are in-process (``report2label.core.plugins.register``) and unregistered after
each test, so the built-in plugins stay as they are.
"""

from __future__ import annotations

import types

import pytest
from pydantic import BaseModel

from report2label.core import Binary, Labeler, PromptVariant, R2LError, TaskSpec, hookimpl, registry
from report2label.core.plugins import pm, register
from report2label.core.training.trainer import Trainer


class Answer(BaseModel):
    smoke: Binary


TASK = TaskSpec(
    name="smoke-errors",
    version="1",
    description="Does the note mention smoke?",
    languages=("en",),
    prompts=(PromptVariant(name="plain", language="en", instructions='Answer {"smoke": 0|1}.'),),
    answer_model=Answer,
)


class GoodLabeler(Labeler):
    name = "good-errors"

    def label(self, requests):
        return ['{"smoke": 0}' for _ in requests]


class Nameless(Labeler):
    def label(self, requests):
        return []


class Abstract(Labeler):
    name = "abstract-errors"


class NotALabeler:
    name = "not-a-labeler"


TRAINER = Trainer(name="good-trainer", device_type="cpu", ddp_backend="gloo")


def write(directory, seed=0, n_reports=10, image_size=64):
    return {}


@pytest.fixture
def plugin():
    """``plugin(name, hook_name=function, ...)`` registers an in-process plugin for one test."""
    names: list[str] = []

    def add(name: str, **hooks) -> None:
        register(types.SimpleNamespace(**{hook: hookimpl(function) for hook, function in hooks.items()}), name=name)
        names.append(name)

    yield add
    for name in names:
        pm.unregister(name=name)


def error(lookup) -> str:
    with pytest.raises(R2LError) as caught:
        lookup()
    message = str(caught.value)
    assert "\n" not in message, message
    return message


@pytest.mark.parametrize(
    ("value", "got"),
    [
        (TaskSpec, "got the class TaskSpec; expected a TaskSpec instance"),
        (Answer, "got the class Answer; expected a TaskSpec instance"),
        ({"name": "x"}, "got a dict ({'name': 'x'}); expected a TaskSpec instance"),
    ],
)
def test_register_tasks_wants_a_task_spec(plugin, value, got):
    plugin("bad-tasks", register_tasks=lambda register: register(value))
    message = error(registry.tasks)
    assert message == f"plugin 'bad-tasks': register_tasks {got}"
    assert "bad-tasks" in error(lambda: registry.task("ankle-fracture"))


def test_register_tasks_wants_one_argument(plugin):
    plugin("two-args", register_tasks=lambda register: register(TASK, TASK))
    assert error(registry.tasks) == "plugin 'two-args': register_tasks got 2 arguments; expected register(task_spec)"


def test_register_labelers_wants_the_class(plugin):
    instance = GoodLabeler(TASK, TASK.prompt(), GoodLabeler.Options())
    plugin("instance", register_labelers=lambda register: register(instance))
    message = error(registry.labelers)
    assert message.startswith("plugin 'instance': register_labelers got an instance of GoodLabeler; expected a")


@pytest.mark.parametrize(
    ("value", "got"),
    [
        (NotALabeler, "got the class NotALabeler; expected a subclass of report2label.core.Labeler"),
        (write, "got the function write; expected a subclass"),
        ("rules", "got a str ('rules'); expected a subclass"),
        (Nameless, "got the class Nameless without a name; expected a class attribute name = '...'"),
        (Abstract, "got the class Abstract, which does not implement label; expected a subclass"),
    ],
)
def test_register_labelers_wants_a_labeler_subclass(plugin, value, got):
    plugin("bad-labelers", register_labelers=lambda register: register(value))
    message = error(registry.labelers)
    assert message.startswith(f"plugin 'bad-labelers': register_labelers {got}"), message
    assert "bad-labelers" in error(lambda: registry.labeler("rules"))


@pytest.mark.parametrize(
    ("value", "got"),
    [(Trainer, "the class Trainer"), ({"name": "gpu"}, "a dict ({'name': 'gpu'})"), ("cuda", "a str ('cuda')")],
)
def test_register_trainers_wants_a_trainer(plugin, value, got):
    plugin("bad-trainers", register_trainers=lambda register: register(value))
    message = error(registry.trainers)
    assert message == (
        f"plugin 'bad-trainers': register_trainers got {got}; expected a report2label.core.training.trainer.Trainer"
    )


@pytest.mark.parametrize(
    ("args", "got"),
    [
        (("smoke-errors", "write"), "got a str ('write'); expected a callable write(directory, seed, ...)"),
        (("smoke-errors", None), "got a NoneType (None); expected a callable"),
        ((write,), "got 1 argument; expected register(task_name, write)"),
        ((TASK, write), "got the task name TaskSpec"),
    ],
)
def test_register_examples_wants_a_name_and_a_callable(plugin, args, got):
    plugin("bad-examples", register_examples=lambda register: register(*args))
    message = error(registry.examples)
    assert message.startswith(f"plugin 'bad-examples': register_examples {got}"), message


def test_two_plugins_registering_one_name_are_both_named(plugin):
    plugin("first", register_tasks=lambda register: register(TASK))
    plugin("second", register_tasks=lambda register: register(TASK))
    message = error(registry.tasks)
    assert "two plugins register a task named 'smoke-errors'" in message
    assert "plugin 'first'" in message and "plugin 'second'" in message


def test_a_builtin_is_named_with_its_distribution(plugin):
    plugin("clash", register_labelers=lambda register: register(type("Rules", (GoodLabeler,), {"name": "rules"})))
    message = error(registry.labelers)
    assert "plugin 'rules' (report2label 0.1.0)" in message and "plugin 'clash'" in message


def test_good_registrations_are_found(plugin):
    plugin(
        "good",
        register_tasks=lambda register: register(TASK),
        register_labelers=lambda register: register(GoodLabeler),
        register_trainers=lambda register: register(TRAINER),
        register_examples=lambda register: register("smoke-errors", write),
    )
    assert registry.task("smoke-errors") is TASK and "ankle-fracture" in registry.tasks()
    assert registry.labeler("good-errors") is GoodLabeler and "rules" in registry.labelers()
    assert registry.trainer("good-trainer").device_type == "cpu"
    assert registry.example("smoke-errors") is write


def test_the_cli_prints_one_line(plugin, r2l):
    plugin("bad-tasks", register_tasks=lambda register: register(TaskSpec))
    result = r2l("tasks")
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: plugin 'bad-tasks': register_tasks got the class TaskSpec; expected a TaskSpec instance\n"
    )
