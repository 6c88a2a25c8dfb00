"""Hook specifications: every task, labelling backend and trainer arrives through these hooks."""

from collections.abc import Callable

import pluggy

hookspec = pluggy.HookspecMarker("report2label")
hookimpl = pluggy.HookimplMarker("report2label")


@hookspec
def register_tasks(register: Callable) -> None:
    """Register tasks: ``register(task_spec)`` with a :class:`report2label.core.task.TaskSpec`."""


@hookspec
def register_labelers(register: Callable) -> None:
    """Register labelling backends: ``register(LabelerClass)``, see :mod:`report2label.core.labelling.labeler`."""


@hookspec
def register_trainers(register: Callable) -> None:
    """Register training backends: ``register(trainer)`` with a :class:`report2label.core.training.trainer.Trainer`."""


@hookspec
def register_examples(register: Callable) -> None:
    """Register example-data writers: ``register(task_name, write)``.

    ``write(directory, seed, n_reports, image_size)`` writes the data and returns counts by kind.
    """


@hookspec
def register_describers(register: Callable) -> None:
    """Register image-describing backends: ``register(DescriberClass)``, see :mod:`report2label.core.describe`."""


@hookspec
def register_engines(register: Callable) -> None:
    """Register labelling engines: ``register(EngineClass)``, see :mod:`report2label.core.labelling.engines`."""
