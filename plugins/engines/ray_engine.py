"""The ``ray`` labelling engine: the in-process engine's batches, validation and re-ask, on Ray actors.

The driver reads and checks the report table exactly as the in-process engine does, asks one
actor for the run key (backend and model id: the labeler is built on the actors only, so a vLLM
model is never loaded on the driver), skips every report stored under that key in
``OUTDIR/parts/``, and hands the rest out block by block to actors that each hold one labeler.
An actor labels a block with :func:`~report2label.core.labelling.engine.label_batch` and writes
it as one Parquet part, atomically, before it answers: a killed driver, actor or node loses at
most the blocks in flight. Actors restart when they die and their blocks are asked again
(``max_restarts=-1``, ``max_task_retries=-1``). At the end the parts become ``labels.csv``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from dataclasses import fields, replace
from typing import Any
from urllib.parse import urlparse

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import Field

from report2label.core.atomic import atomic_path
from report2label.core.errors import R2LError
from report2label.core.hookspecs import hookimpl
from report2label.core.labelling.engine import (
    CARRIED,
    CELLS,
    LabelJob,
    LabelSummary,
    finish,
    label_batch,
    output_label_columns,
    prechecked,
    run_key,
    stored_label_columns,
)
from report2label.core.labelling.engines import Engine
from report2label.core.labelling.folder import LabelFolder
from report2label.core.labelling.store import KEY, Result, RunKey
from report2label.core.privacy import is_loopback_host, is_private_host
from report2label.core.progress import progress_bar
from report2label.core.task import TaskSpec

log = logging.getLogger(__name__)
IN_FLIGHT = 2  # blocks queued per actor: one labelled, one waiting
SAMPLE = 8  # the longest reports each actor's labeler is prepared with (to size a context)
# Arrow types as pandas nullable ones: a label column with a gap stays integer, as labels.csv has it
NULLABLE = {pa.int64(): pd.Int64Dtype(), pa.float64(): pd.Float64Dtype(), pa.bool_(): pd.BooleanDtype()}


def _import_ray():
    try:
        import ray
    except ImportError:
        raise R2LError("the ray engine needs Ray: pip install 'report2label[ray]'") from None
    return ray


def part_name(key: RunKey, rows: pd.DataFrame) -> str:
    """A block's part name: the same reports under the same key always give the same name."""
    digest = hashlib.sha256("\0".join(key.values()).encode())
    for report_id, text_hash in zip(rows["report_id"], rows["text_hash"], strict=True):
        digest.update(f"\0{report_id}\0{text_hash}".encode())
    return digest.hexdigest()[:24]


def _cell(value: Any) -> Any:
    return json.dumps(value) if isinstance(value, dict | list) else value


def write_part(
    folder: LabelFolder, key: RunKey, prompt: str, params: dict, results: list[Result], name: str, spec: TaskSpec
) -> None:
    """Write ``results`` (every field of :class:`Result`, dicts as JSON) with the run key as one part, and
    labels.csv's label columns for them, made here, where the block was labelled, instead of on the driver."""
    columns = {f.name: [_cell(getattr(r, f.name)) for r in results] for f in fields(Result)}
    same = dict(zip(KEY, key.values(), strict=True)) | {"prompt": prompt, "params": json.dumps(params, sort_keys=True)}
    columns |= {field: [value] * len(results) for field, value in same.items()}
    made = output_label_columns(*([getattr(r, n) or {} for r in results] for n in CELLS), spec)
    columns |= {CARRIED + column: values for column, values in made.items()}
    with atomic_path(folder.part(name)) as tmp:
        pq.write_table(pa.table(columns), tmp)


def _read_part(path, spec: TaskSpec) -> pa.Table:
    """One part, with its label columns made now if it has none."""
    table = pq.read_table(path)
    if not any(name.startswith(CARRIED) for name in table.column_names):
        for column, values in stored_label_columns(table.select(CELLS).to_pandas(), spec).items():
            table = table.append_column(CARRIED + column, pa.array(values, from_pandas=True))
    return table


def read_parts(folder: LabelFolder, key: RunKey, spec: TaskSpec) -> pd.DataFrame:
    """Every stored row under ``key``, one per report and text: labelled before failed, then the latest."""
    files = folder.part_files()
    if not files:
        return pd.DataFrame(columns=["report_id", "text_hash", "status"])
    parts = [_read_part(f, spec) for f in files]
    table = pa.concat_tables(parts, promote_options="permissive").to_pandas(types_mapper=NULLABLE.get)
    for field, value in zip(KEY, key.values(), strict=True):
        table = table[table[field] == value]
    table = table.assign(_rank=(table["status"] == "labelled").astype(int))
    table = table.sort_values(["_rank", "labelled_at"], kind="stable").drop(columns="_rank")
    return table.drop_duplicates(["report_id", "text_hash"], keep="last").reset_index(drop=True)


class BlockLabeler:
    """A Ray actor holding one labeler: labels a block with the engine's code and stores it as a part."""

    def __init__(self, run, max_attempts: int, sample: list[str]) -> None:
        self.run, self.max_attempts, self.folder = run, max_attempts, run.folder
        try:
            self.labeler = run.cls(run.spec, run.variant, run.options)
            self.labeler.prepare(sample)
        except R2LError as exc:  # kept for describe(): Ray would pass it on as a traceback, not a one-line error
            self.error = str(exc)
            return
        self.error = None
        self.key = run_key(run.spec, run.variant, self.labeler)
        self.prompt = run.variant.name if run.cls.uses_prompt else ""
        self.checked: dict = {}

    def describe(self) -> tuple[RunKey, str, dict]:
        if self.error:
            raise R2LError(self.error)
        return self.key, self.prompt, self.labeler.params

    def label(self, rows: pd.DataFrame) -> tuple[int, int]:
        """Label ``rows``, write their part, return (reports, backend calls)."""
        results = self._results(rows)
        write_part(
            self.folder, self.key, self.prompt, self.labeler.params, results, part_name(self.key, rows), self.run.spec
        )
        return len(rows), sum(r.attempts for r in results)

    def _results(self, rows: pd.DataFrame) -> list[Result]:
        """The block's results; a block the backend raises on is asked row by row, and a row it raises
        on becomes a ``failed`` row, so one bad report never stops the run."""
        run = self.run
        try:
            return label_batch(self.labeler, run.spec, run.variant, rows, self.max_attempts, self.checked)
        except Exception as exc:
            if len(rows) == 1:
                row = rows.iloc[0]
                reason = f"backend error: {type(exc).__name__}: {exc}"[:300]
                stamp = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())
                return [Result(row["report_id"], row["text_hash"], "failed", None, reason, 1, None, stamp)]
            return [r for i in range(len(rows)) for r in self._results(rows.iloc[i : i + 1])]


def _check_address(address: str | None, allow_remote: bool) -> None:
    """A cluster outside loopback and private networks gets report texts only with ``allow_remote``."""
    if address in (None, "auto", "local"):
        return
    host = urlparse(address if "://" in address else f"ray://{address}").hostname or ""
    if not (is_loopback_host(host) or is_private_host(host) or allow_remote):
        raise R2LError(
            f"Ray address {address}: {host} is neither loopback nor a private network; report texts would "
            "leave this network (pass --allow-remote to send them there)"
        )
    if allow_remote and not (is_loopback_host(host) or is_private_host(host)):
        log.warning("report texts go to the Ray cluster at %s", host)


class RayEngine(Engine):
    """Blocks of reports on Ray actors (one labeler each); results as Parquet parts in OUTDIR/parts/."""

    name = "ray"
    description = "Ray actors, one labeler each; results as Parquet parts in OUTDIR/parts/ as they arrive."

    class Options(Engine.Options):
        address: str | None = Field(None, description="A running cluster (ray start --head); default: a local Ray.")
        actors: int | None = Field(None, ge=1, description="Default: as many as the cluster's CPUs (GPUs) allow.")
        cpus_per_actor: float = Field(1.0, gt=0)
        gpus_per_actor: float = Field(0.0, ge=0)
        allow_remote: bool = False

    def label(self, job: LabelJob) -> LabelSummary:
        if job.shard is not None:
            raise R2LError("--shard is for the local engine; the ray engine hands the shares to its actors itself")
        opts = self.options
        _check_address(opts.address, opts.allow_remote)
        ray = _import_ray()
        folder = job.run.folder
        start = time.perf_counter()
        created = folder.create()
        started = self._connect(ray)
        try:
            return self._label(ray, job, start)
        except BaseException:
            folder.discard_parts(created)
            raise
        finally:
            if started:
                ray.shutdown()

    def _connect(self, ray) -> bool:
        """Connect to ``address``, or start a local Ray for this run (True); reuse one this process holds."""
        if ray.is_initialized():
            return False
        opts = self.options
        settings: dict[str, Any] = {"logging_level": logging.WARNING, "log_to_driver": False}
        if opts.address is None:
            cpus = opts.actors * opts.cpus_per_actor if opts.actors else os.cpu_count()
            # Ray runs its workers at nice 15; here they do the run's work, so at the driver's priority.
            ray.init(
                num_cpus=max(1, round(cpus)), include_dashboard=False, _system_config={"worker_niceness": 0}, **settings
            )
        else:
            ray.init(address=opts.address, **settings)
        return True

    def _actor_count(self, ray) -> int:
        """``--actors``, or as many as the cluster's CPUs (GPUs with ``gpus_per_actor``) allow."""
        opts, resources = self.options, ray.cluster_resources()
        kind, need = ("GPU", opts.gpus_per_actor) if opts.gpus_per_actor else ("CPU", opts.cpus_per_actor)
        room = int(resources.get(kind, 0) // need)
        if opts.actors and opts.actors > room:
            raise R2LError(
                f"{opts.actors} actors with {need:g} {kind} each need {opts.actors * need:g} {kind}s; "
                f"the Ray cluster has {resources.get(kind, 0):g}"
            )
        return max(1, opts.actors or room)

    def _label(self, ray, job: LabelJob, start: float) -> LabelSummary:
        run, opts = job.run, self.options
        table, folder = run.table, run.folder
        fits = table["text"].str.len() <= job.max_chars
        sample = table.loc[fits, "text"].str.len().nlargest(SAMPLE).index
        actor = ray.remote(BlockLabeler).options(
            num_cpus=opts.cpus_per_actor, num_gpus=opts.gpus_per_actor, max_restarts=-1, max_task_retries=-1
        )
        # The actors get their reports block by block, and the folder by its absolute path.
        bare = replace(run, table=table.iloc[:0], folder=LabelFolder(folder.root.resolve()))
        args = (bare, job.max_attempts, table.loc[sample, "text"].tolist())
        count = self._actor_count(ray)
        actors = [actor.remote(*args)]
        try:
            key, prompt, params = _get(ray, actors[0].describe.remote())
            stored = read_parts(folder, key, run.spec)
            labelled = stored[stored["status"] == "labelled"]
            done = set(zip(labelled["report_id"], labelled["text_hash"], strict=True))
            finished = [(i, h) in done for i, h in zip(table["report_id"], table["text_hash"], strict=True)]
            pending, failures = prechecked(table[[not f for f in finished]], job.max_chars)
            if failures:
                rows = pd.DataFrame(
                    {"report_id": [r.report_id for r in failures], "text_hash": [r.text_hash for r in failures]}
                )
                write_part(folder, key, prompt, params, failures, part_name(key, rows), run.spec)
            size = job.batch_size or run.cls.batch_size
            blocks = [
                pending.iloc[i : i + size][["report_id", "text", "text_hash"]] for i in range(0, len(pending), size)
            ]
            actors += [actor.remote(*args) for _ in range(min(count, len(blocks)) - 1)]
            description = f"labelling ({run.cls.name}, {len(actors)} Ray actor{'s' * (len(actors) > 1)})"
            with progress_bar(description, total=len(pending), enabled=job.show_progress) as advance:
                asked, calls = _dispatch(ray, actors, blocks, advance)
        finally:
            for handle in actors:
                ray.kill(handle)
        return finish(
            job,
            read_parts(folder, key, run.spec),
            reused=int(sum(finished)),
            asked=asked,
            calls=calls,
            seconds=time.perf_counter() - start,
        )


def _get(ray, ref):
    """``ray.get``, with an :class:`R2LError` raised on an actor passed on as itself."""
    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as exc:
        if isinstance(exc.cause, R2LError):
            raise R2LError(str(exc.cause)) from None
        raise


def _dispatch(ray, actors: list, blocks: list[pd.DataFrame], advance) -> tuple[int, int]:
    """Keep every actor :data:`IN_FLIGHT` blocks busy, least-loaded first; (reports asked, backend calls)."""
    queue, busy, owner = list(reversed(blocks)), [0] * len(actors), {}
    asked = calls = 0
    while queue or owner:
        while queue and min(busy) < IN_FLIGHT:
            i = busy.index(min(busy))
            owner[actors[i].label.remote(queue.pop())] = i
            busy[i] += 1
        [ready], _ = ray.wait(list(owner), num_returns=1)
        busy[owner.pop(ready)] -= 1
        n, c = _get(ray, ready)
        asked, calls = asked + n, calls + c
        advance(n)
    return asked, calls


@hookimpl
def register_engines(register) -> None:
    register(RayEngine)
