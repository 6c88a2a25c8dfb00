"""The crash-safe label store: one SQLite file per output directory, a row per labelled report.

Rows are keyed by report id, report-text hash, task and version, prompt hash, backend and model,
so a rerun finds finished rows, and a changed text or prompt is labelled anew. Each batch is
committed in one transaction: a killed run loses at most the batch in flight.
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
    PRIMARY KEY (report_id, text_hash, task, task_version, prompt_hash, backend, model)
)
"""
KEY = ("task", "task_version", "prompt_hash", "backend", "model")


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


class LabelStore:
    """Open (or create) the store at ``path``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(path, timeout=60)
        for attempt in range(100):  # processes of one sharded run may create the store together
            try:
                self.db.execute("PRAGMA journal_mode=WAL")
                self.db.execute(SCHEMA)
                break
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or attempt == 99:
                    self.db.close()
                    raise R2LError(f"{path}: not a usable label store ({exc})") from None
                time.sleep(0.05)
            except sqlite3.DatabaseError as exc:
                self.db.close()
                raise R2LError(f"{path}: not a usable label store ({exc})") from None

    def done(self, key: RunKey) -> set[tuple[str, str]]:
        """(report_id, text_hash) of every row already labelled under ``key``."""
        sql = "SELECT report_id, text_hash FROM labels WHERE status = 'labelled' AND " + " AND ".join(
            f"{field} = ?" for field in KEY
        )
        return set(self.db.execute(sql, key.values()))

    def put(self, key: RunKey, prompt: str, params: dict, results: list[Result]) -> None:
        """Store a batch of results in one transaction."""
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
                json.dumps(params, sort_keys=True),
                r.labelled_at,
            )
            for r in results
        ]
        with self.db:
            self.db.executemany(f"INSERT OR REPLACE INTO labels VALUES ({','.join('?' * 15)})", rows)

    def table(self, key: RunKey) -> pd.DataFrame:
        """Every stored row under ``key``."""
        sql = "SELECT * FROM labels WHERE " + " AND ".join(f"{field} = ?" for field in KEY)
        return pd.read_sql_query(sql, self.db, params=key.values())

    def close(self) -> None:
        self.db.close()
