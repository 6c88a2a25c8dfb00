"""Images → reports: a vision-language backend writes a report per image; ``r2l label`` then labels them.

``r2l describe IMAGES -o OUTDIR`` reads an images table (a path column, relative to the table),
asks a describing backend (a :class:`Describer`, registered through ``register_describers``)
for a report per image, ``concurrency`` images at a time, and commits each report to
``OUTDIR/reports.sqlite`` the moment it arrives, keyed by image id, image content hash, backend,
model and prompt hash: a rerun after a crash or ``kill -9`` asks only for images without a stored
report, and a changed image or prompt is described anew. ``OUTDIR/reports.csv`` (written
atomically at the end) is a reports table for ``r2l label``: ``report_id``, ``text`` and the
provenance of each generated report. Images without a report (the server failed) have an empty
``text``, which ``r2l label`` records as failed; a rerun asks for them again.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from abc import ABC, abstractmethod
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import pandas as pd
from pydantic import BaseModel, ConfigDict

from . import registry
from .atomic import atomic_path, sweep
from .errors import R2LError
from .labelling.engine import build_options
from .labelling.labeler import RowFailure
from .progress import progress_bar
from .reports import read_table, require_columns

DEFAULT_INSTRUCTIONS = """\
You are a radiologist. Write the report of this radiograph as a radiologist would: a FINDINGS
section describing what the image shows (and what it does not: state relevant normal findings)
and an IMPRESSION section with the conclusion. Answer with the report only, in this form:
FINDINGS: ... IMPRESSION: ..."""

SCHEMA = """
CREATE TABLE IF NOT EXISTS reports (
    image_id     TEXT NOT NULL,
    image_hash   TEXT NOT NULL,
    backend      TEXT NOT NULL,
    model        TEXT NOT NULL,
    prompt_hash  TEXT NOT NULL,
    status       TEXT NOT NULL CHECK (status IN ('described', 'failed')),
    text         TEXT,
    reason       TEXT,
    params       TEXT NOT NULL,
    described_at TEXT NOT NULL,
    PRIMARY KEY (image_id, image_hash, backend, model, prompt_hash)
)
"""
COLUMNS = ("report_id", "image", "text", "status", "reason", "backend", "model", "prompt_hash", "params")


@dataclass(frozen=True)
class ImageRequest:
    """One image to describe: its id, its file and the instructions."""

    image_id: str
    path: Path
    instructions: str


class Describer(ABC):
    """A describing backend: writes one report text (or a :class:`RowFailure`) per image.

    Subclasses set ``name``, may extend ``Options`` and implement :meth:`describe`, which runs
    in ``concurrency`` threads at once.
    """

    name: ClassVar[str]
    description: ClassVar[str] = ""

    class Options(BaseModel):
        model_config = ConfigDict(extra="forbid")
        model: str | None = None

    def __init__(self, options: Options) -> None:
        self.options = options

    @property
    def model_id(self) -> str:
        return self.options.model or ""

    @property
    def params(self) -> dict[str, Any]:
        return {}

    @property
    def concurrency(self) -> int:
        return 1

    @abstractmethod
    def describe(self, request: ImageRequest) -> str | RowFailure:
        """The report text of one image, or why there is none."""

    def close(self) -> None:  # noqa: B027 (optional hook, no-op by default)
        """Release connections."""


@dataclass(frozen=True)
class ReportFolder:
    """The layout of ``r2l describe``'s output folder, owned here alone."""

    root: Path

    @property
    def store(self) -> Path:
        return self.root / "reports.sqlite"

    @property
    def csv(self) -> Path:
        return self.root / "reports.csv"


@dataclass
class DescribeSummary:
    output: Path
    total: int
    described: int
    failed: int
    reused: int
    asked: int
    seconds: float
    failure_reasons: dict[str, int]


def _image_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def _images(path: Path, image_col: str, id_col: str | None) -> pd.DataFrame:
    """The images table: ``image_id``, ``image`` (as written) and ``path``; every file must exist."""
    table = read_table(path, tuple(c for c in (id_col, image_col) if c))
    require_columns(table, path, {image_col: "choose the image path column with --image-col"})
    if id_col:
        require_columns(table, path, {id_col: "choose it with --id-col"})
    images = pd.DataFrame({"image": table[image_col].astype(str).str.strip()})
    images["image_id"] = table[id_col].astype(str).str.strip() if id_col else images["image"]
    images["path"] = [p if p.is_absolute() else path.parent / p for p in map(Path, images["image"])]
    duplicated = images["image_id"].duplicated()
    if duplicated.any():
        row = int(duplicated.to_numpy().nonzero()[0][0]) + 1
        raise R2LError(f"{path}: row {row}: image id {images['image_id'].iloc[row - 1]!r} appears more than once")
    missing = ~images["path"].map(Path.is_file)
    if missing.any():
        row = int(missing.to_numpy().nonzero()[0][0]) + 1
        first = str(images["path"].iloc[row - 1])
        raise R2LError(f"{path}: row {row}: no such image file {first!r} ({int(missing.sum())} missing)")
    return images


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


_WHERE = "backend = ? AND model = ? AND prompt_hash = ?"


class ReportStore:
    """The generated reports in SQLite, one row per image and run key; each report committed alone."""

    def __init__(self, path: Path, key: tuple[str, str, str]) -> None:
        self.key = key
        try:
            self.db = sqlite3.connect(path, timeout=60)
            with self.db:
                self.db.execute(SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise R2LError(f"{path}: not a usable report store ({exc})") from None

    def done(self) -> set[tuple[str, str]]:
        """(image_id, image_hash) of every image described under this key."""
        sql = "SELECT image_id, image_hash FROM reports WHERE status = 'described' AND " + _WHERE
        return set(self.db.execute(sql, self.key))

    def put(self, image_id: str, image_hash: str, text: str | RowFailure, params: str) -> None:
        failed = isinstance(text, RowFailure)
        row = (image_id, image_hash, *self.key, "failed" if failed else "described")
        with self.db:
            self.db.execute(
                "INSERT OR REPLACE INTO reports VALUES (?,?,?,?,?,?,?,?,?,?)",
                (*row, None if failed else text, str(text) if failed else None, params, _now()),
            )

    def table(self) -> pd.DataFrame:
        return pd.read_sql_query(f"SELECT * FROM reports WHERE {_WHERE}", self.db, params=self.key)

    def close(self) -> None:
        self.db.close()


def _ask(describer: Describer, todo: list, instructions: str, store: ReportStore, show_progress: bool) -> None:
    """Ask for every image of ``todo``, ``concurrency`` at a time, storing each report as it arrives."""
    params = json.dumps(describer.params, sort_keys=True)
    with (
        progress_bar(f"describing ({describer.name})", total=len(todo), enabled=show_progress) as advance,
        ThreadPoolExecutor(describer.concurrency) as pool,
    ):
        futures = {pool.submit(describer.describe, ImageRequest(r.image_id, r.path, instructions)): r for r in todo}
        for future in as_completed(futures):
            row = futures[future]
            store.put(row.image_id, row.image_hash, future.result(), params)
            advance(1)


def describe(
    images: str | Path,
    outdir: str | Path,
    *,
    backend: str = "openai-vision",
    options: dict[str, Any] | None = None,
    instructions: str = DEFAULT_INSTRUCTIONS,
    image_col: str = "image",
    id_col: str | None = None,
    show_progress: bool = True,
) -> DescribeSummary:
    """Write a report per image of the table ``images`` into ``outdir/reports.csv``; resumes from its store.

    The backend, its options, the images table and every image file are checked before the
    output folder is created.
    """
    images, folder = Path(images), ReportFolder(Path(outdir))
    cls = registry.describer(backend)
    opts = build_options(cls, options or {})
    table = _images(images, image_col, id_col)
    if folder.root.exists() and not folder.root.is_dir():
        raise R2LError(f"{folder.root}: is a file, not a folder; choose another output folder")
    table["image_hash"] = table["path"].map(_image_hash)
    prompt_hash = hashlib.sha256(instructions.encode()).hexdigest()[:12]
    start = time.perf_counter()
    describer = cls(opts)
    try:
        folder.root.mkdir(parents=True, exist_ok=True)
        sweep(folder.root)
        store = ReportStore(folder.store, (cls.name, describer.model_id, prompt_hash))
        try:
            done = store.done()
            todo = [r for r in table.itertuples() if (r.image_id, r.image_hash) not in done]
            _ask(describer, todo, instructions, store, show_progress)
            stored = store.table()
        finally:
            store.close()
    finally:
        describer.close()
    merged = table.merge(stored, on=["image_id", "image_hash"], how="left")
    out = merged.rename(columns={"image_id": "report_id"})[[*COLUMNS, "image_hash", "described_at"]]
    with atomic_path(folder.csv) as tmp:
        out.to_csv(tmp, index=False)
    failed = out[out["status"] == "failed"]
    return DescribeSummary(
        output=folder.csv,
        total=len(out),
        described=int((out["status"] == "described").sum()),
        failed=len(failed),
        reused=len(table) - len(todo),
        asked=len(todo),
        seconds=time.perf_counter() - start,
        failure_reasons=dict(failed["reason"].value_counts().head(5)),
    )
