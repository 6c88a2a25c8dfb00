"""The crash-safe label store: one SQLite file per output directory, a row per labelled report.

Rows are keyed by report id, report-text hash, task and version, prompt hash, backend and model,
so a rerun finds finished rows, and a changed text or prompt is labelled anew. Each batch is
committed in one transaction: a killed run loses at most the batch in flight. Version 2 added
per label ``evidence`` (grounded spans) and ``confidence`` (JSON); a version-1 store is migrated
in place when opened (the two columns added, its rows kept).
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ..errors import R2LError

SCHEMA = """
CREATE TABLE IF NOT EXISTS labels (
    report_id    TEXT NOT NULL,
    text_hash    TEXT NOT NULL,
    task         TEXT NOT NULL,
    task_version TEXT NOT NULL,
    prompt_hash  TEXT NOT NULL,
    backend      TEXT NOT NULL,
    model        TEXT NOT NULL,
    status       TEXT NOT NULL CHECK (status IN ('labelled', 'failed')),
    answer       TEXT,
    reason       TEXT,
    attempts     INTEGER NOT NULL,
    raw_answer   TEXT,
    prompt       TEXT NOT NULL,
    params       TEXT NOT NULL,
    labelled_at  TEXT NOT NULL,
    evidence     TEXT,
    confidence   TEXT,
    PRIMARY KEY (report_id, text_hash, task, task_version, prompt_hash, backend, model)
)
"""
VERSION = 2  # PRAGMA user_version of the layout above
COLUMNS = [line.split()[0] for line in SCHEMA.strip().splitlines()[1:-2]]
ADDED = {2: ("evidence", "confidence")}
"""Columns each version added, at the end: what the migration of an older store adds."""
KEY = ("task", "task_version", "prompt_hash", "backend", "model")


def _columns(version: int) -> list[str]:
    """The columns of the labels table as written by store ``version``."""
    later = {column for v, added in ADDED.items() if v > version for column in added}
    return [column for column in COLUMNS if column not in later]


@dataclass(frozen=True)
class RunKey:
    """What, besides the report, identifies a label: task, prompt and backend."""

    task: str
    task_version: str
    prompt_hash: str
    backend: str
    model: str

    def values(self) -> tuple[str, ...]:
        return tuple(getattr(self, field) for field in KEY)


@dataclass(frozen=True)
class Result:
    report_id: str
    text_hash: str
    status: str
    answer: dict | None
    reason: str | None
    attempts: int
    raw_answer: str | None
    labelled_at: str
    confidence: dict[str, float] | None = None
    """Per label, the backend's confidence in (0, 1] (token probability, sample agreement, rule certainty)."""
    evidence: dict[str, list[dict]] | None = None
    """Per label, the spans of the report that support it (:mod:`.evidence`)."""


class LabelStore:
    """Open (or create) the store at ``path`` for ``task``; refuse another layout, version or task."""

    def __init__(self, path: Path, task: str) -> None:
        self.path = path
        try:
            self.db = sqlite3.connect(path, timeout=60)
        except sqlite3.OperationalError as exc:
            raise R2LError(f"{path}: cannot open the label store ({exc})") from None
        try:
            self._open()
            self._check_task(task)
        except BaseException:
            self.db.close()
            raise

    def _open(self) -> None:
        for attempt in range(100):  # processes of one sharded run may create the store together
            try:
                with self.db:
                    self._check_layout()
                self.db.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or attempt == 99:
                    raise R2LError(f"{self.path}: not a usable label store ({exc})") from None
                time.sleep(0.05)
            except sqlite3.DatabaseError as exc:
                raise R2LError(f"{self.path}: not a usable label store ({exc})") from None

    def _check_layout(self) -> None:
        found = self.db.execute("PRAGMA user_version").fetchone()[0]
        if not 0 <= found <= VERSION:
            raise R2LError(
                f"{self.path}: label store version {found} is unknown to this report2label (it reads version "
                f"{VERSION}); use the report2label that wrote it, or label into another folder"
            )
        columns = [row[1] for row in self.db.execute("PRAGMA table_info(labels)")]
        written = max(found, 1)  # a store without a version has the layout of version 1
        if columns and columns != _columns(written):
            raise R2LError(
                f"{self.path}: its labels table has another layout ({', '.join(columns)}); "
                "not a report2label label store: label into another folder"
            )
        if not columns:
            self.db.execute(SCHEMA)
            self.db.execute(f"PRAGMA user_version = {VERSION}")
        elif found < VERSION:
            self._migrate(written)

    def _migrate(self, found: int) -> None:
        """Bring a store of version ``found`` to :data:`VERSION`: add the later versions' columns."""
        for version in range(found + 1, VERSION + 1):
            for column in ADDED[version]:
                self.db.execute(f"ALTER TABLE labels ADD COLUMN {column} TEXT")
        self.db.execute(f"PRAGMA user_version = {VERSION}")

    def _check_task(self, task: str) -> None:
        other = self.db.execute("SELECT task FROM labels WHERE task != ? LIMIT 1", (task,)).fetchone()
        if other:
            raise R2LError(
                f"{self.path}: holds labels of task {other[0]!r}, not {task!r}; label {task!r} into another folder"
            )

    def empty(self) -> bool:
        return self.db.execute("SELECT 1 FROM labels LIMIT 1").fetchone() is None

    def done(self, key: RunKey) -> set[tuple[str, str]]:
        """(report_id, text_hash) of every row already labelled under ``key``."""
        sql = "SELECT report_id, text_hash FROM labels WHERE status = 'labelled' AND " + " AND ".join(
            f"{field} = ?" for field in KEY
        )
        return set(self.db.execute(sql, key.values()))

    def put(self, key: RunKey, prompt: str, params: dict, results: list[Result]) -> None:
        """Store a batch of results in one transaction."""
        settings = json.dumps(params, sort_keys=True)
        rows = [
            (
                r.report_id,
                r.text_hash,
                *key.values(),
                r.status,
                json.dumps(r.answer) if r.answer is not None else None,
                r.reason,
                r.attempts,
                r.raw_answer,
                prompt,
                settings,
                r.labelled_at,
                json.dumps(r.evidence, ensure_ascii=False) if r.evidence is not None else None,
                json.dumps(r.confidence) if r.confidence is not None else None,
            )
            for r in results
        ]
        sql = f"INSERT OR REPLACE INTO labels ({', '.join(COLUMNS)}) VALUES ({','.join('?' * len(COLUMNS))})"
        with self.db:
            self.db.executemany(sql, rows)

    def table(self, key: RunKey) -> pd.DataFrame:
        """Every stored row under ``key``."""
        sql = "SELECT * FROM labels WHERE " + " AND ".join(f"{field} = ?" for field in KEY)
        return pd.read_sql_query(sql, self.db, params=key.values())

    def close(self) -> None:
        self.db.close()
