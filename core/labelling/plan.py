"""``r2l label --plan``: what a labelling run would send, without storing anything or calling the backend.

The plan checks what :func:`~report2label.core.labelling.engine.label` checks, finds the pending
reports as a rerun would (reading an existing store read-only), and counts: requests, the most
attempts, the prompt tokens of every request (by the model's own tokenizer where the backend has
one, else an estimate of bytes/4) and the answer budget. ``probe=N`` labels the first N pending
reports for real, stores nothing, and extrapolates the run's time.
"""

from __future__ import annotations

import math
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from ..errors import R2LError
from ..privacy import is_loopback_host
from ..task import TaskSpec
from .engine import checked_run, prechecked, run_key
from .folder import LabelFolder
from .labeler import LabelRequest, RowFailure
from .store import KEY, RunKey

SHOWN_CHARS = 200
"""Characters of the first report that the plan shows."""


@dataclass
class Probe:
    """N real backend requests, timed, their answers validated and not stored."""

    requests: int
    valid: int
    setup_seconds: float
    seconds: float
    estimated_seconds: float


@dataclass
class Plan:
    """What ``r2l label`` would do."""

    task: str
    backend: str
    model: str
    prompt: str | None
    total: int
    stored: int
    prechecked_failures: int
    requests: int
    max_attempts: int
    max_tokens: int | None
    first_report_id: str | None = None
    messages: list[dict[str, str]] = field(default_factory=list)
    tokens: list[int] = field(default_factory=list)
    tokens_exact: bool = False
    remote_host: str | None = None
    remote_chars: int = 0
    probe: Probe | None = None

    @property
    def max_requests(self) -> int:
        """Backend requests at most: every pending report re-asked until ``max_attempts``."""
        return self.requests * self.max_attempts


def estimate_tokens(messages: list[dict[str, str]]) -> int:
    """A rough token count where the backend has no tokenizer: UTF-8 bytes / 4."""
    return math.ceil(sum(len(m["content"].encode()) for m in messages) / 4)


def _stored(folder: LabelFolder, key: RunKey) -> set[tuple[str, str]]:
    """(report_id, text_hash) already labelled under ``key``; the store is opened read-only."""
    if not folder.store.is_file():
        return set()
    sql = "SELECT report_id, text_hash FROM labels WHERE status = 'labelled' AND " + " AND ".join(
        f"{name} = ?" for name in KEY
    )
    try:
        db = sqlite3.connect(f"{folder.store.resolve().as_uri()}?mode=ro", uri=True)
        try:
            return set(db.execute(sql, key.values()))
        finally:
            db.close()
    except sqlite3.DatabaseError as exc:
        raise R2LError(f"{folder.store}: not a usable label store ({exc})") from None


def shown_report(text: str, limit: int = SHOWN_CHARS) -> str:
    """The report as the plan displays it: its first ``limit`` characters."""
    return text if len(text) <= limit else f"{text[:limit]}… [{len(text) - limit} more characters]"


def plan(
    task: str | TaskSpec,
    reports: str | Path,
    outdir: str | Path,
    *,
    backend: str = "rules",
    options: dict[str, Any] | None = None,
    prompt: str | None = None,
    prompt_file: str | Path | None = None,
    id_col: str = "report_id",
    text_col: str = "text",
    max_attempts: int = 3,
    max_chars: int = 50_000,
    shard: tuple[int, int] | None = None,
    probe: int = 0,
    evidence: bool = False,
) -> Plan:
    """Plan ``label(...)`` with the same arguments; nothing is written and, unless ``probe``, nothing asked.

    The backend is constructed as for a run (a llamacpp model's vocabulary is loaded, an OpenAI server
    may be asked for its model list), but no report is sent unless ``probe`` > 0.
    """
    if probe < 0:
        raise R2LError("probe must be at least 0")
    run = checked_run(
        task, reports, outdir, backend, options, prompt, prompt_file, id_col, text_col, max_attempts, shard, evidence
    )
    spec, variant, table = run.spec, run.variant, run.table
    labeler = run.cls(spec, variant, run.options)
    try:
        done = _stored(run.folder, run_key(spec, variant, labeler))
        finished = [(i, h) in done for i, h in zip(table["report_id"], table["text_hash"], strict=True)]
        pending, failures = prechecked(table[[not f for f in finished]], max_chars)
        conversations = [variant.messages(text) for text in pending["text"]]
        counted = [labeler.count_tokens(m) for m in conversations] if run.cls.uses_prompt else []
        exact = all(n is not None for n in counted)
        result = Plan(
            task=spec.name,
            backend=run.cls.name,
            model=labeler.model_id,
            prompt=variant.name if run.cls.uses_prompt else None,
            total=len(table),
            stored=int(sum(finished)),
            prechecked_failures=len(failures),
            requests=len(pending),
            max_attempts=max_attempts,
            max_tokens=labeler.params.get("max_tokens"),
            tokens=[n for n in counted if n is not None] if exact else [estimate_tokens(m) for m in conversations],
            tokens_exact=exact and bool(counted),
        )
        if len(pending):
            first = pending.iloc[0]
            result.first_report_id = str(first["report_id"])
            result.messages = variant.messages(shown_report(first["text"])) if run.cls.uses_prompt else []
        base_url = getattr(run.options, "base_url", None)
        host = urlparse(base_url).hostname if isinstance(base_url, str) else None
        if host and not is_loopback_host(host):
            result.remote_host = host
            result.remote_chars = int(pending["text"].str.len().sum())
        if probe and len(pending):
            result.probe = _probe(labeler, spec, pending.iloc[:probe], conversations, len(pending))
    finally:
        labeler.close()
    return result


def _probe(labeler, spec: TaskSpec, rows, conversations: list[list[dict[str, str]]], requests: int) -> Probe:
    """Label ``rows`` once each, for real, and time it; the answers are validated, not stored."""
    start = time.perf_counter()
    labeler.prepare(rows["text"].tolist())
    setup = time.perf_counter() - start
    batch = [LabelRequest(r.report_id, r.text, tuple(conversations[i])) for i, r in enumerate(rows.itertuples())]
    start = time.perf_counter()
    answers = labeler.label(batch)
    seconds = time.perf_counter() - start
    valid = sum(not isinstance(a, RowFailure) and spec.validate_answer(a).answer is not None for a in answers)
    return Probe(len(batch), valid, setup, seconds, setup + seconds / len(batch) * requests)
