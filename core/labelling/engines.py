"""Labelling engines: where a checked labelling run is carried out, registered with ``register_engines``.

An engine gets a :class:`~report2label.core.labelling.engine.LabelJob` (the task, backend,
prompt variant, report table and output folder, all checked) and returns the run's
:class:`~report2label.core.labelling.engine.LabelSummary`. Every engine labels with the same
:func:`~report2label.core.labelling.engine.label_batch` (validation, bounded corrective re-ask)
and writes the same ``labels.csv``; engines differ in where the batches run and where results
are stored as they arrive. ``local`` (this process, ``labels.sqlite``) is registered here, as a
default plugin that ``R2L_PLUGINS`` cannot turn off.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, ValidationError

from .. import registry
from ..errors import R2LError
from ..hookspecs import hookimpl
from .engine import LabelJob, LabelSummary, label_locally


class Engine(ABC):
    """A labelling engine: ``name`` (what ``--engine`` selects), ``Options`` and :meth:`label`."""

    name: ClassVar[str]
    description: ClassVar[str] = ""

    class Options(BaseModel):
        model_config = ConfigDict(extra="forbid")

    def __init__(self, options: Options) -> None:
        self.options = options

    @abstractmethod
    def label(self, job: LabelJob) -> LabelSummary:
        """Label the job's reports, store results as they arrive, write ``labels.csv``; summarise."""


def engine_for(name: str, options: dict[str, Any]) -> Engine:
    """The registered engine ``name`` with validated ``options``, naming the offending option."""
    cls = registry.engine(name)
    try:
        return cls(cls.Options.model_validate(options))
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "options"
        raise R2LError(f"engine {name!r}: option {where!r}: {err['msg'].removeprefix('Value error, ')}") from None


class LocalEngine(Engine):
    """In this process: batch after batch, each committed to ``labels.sqlite``; ``--shard`` for several."""

    name = "local"
    description = "In this process; results in OUTDIR/labels.sqlite; --shard K/N for several processes."

    def label(self, job: LabelJob) -> LabelSummary:
        return label_locally(job)


@hookimpl
def register_engines(register) -> None:
    register(LocalEngine)
