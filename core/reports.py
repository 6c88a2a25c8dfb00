"""Reading report tables (CSV, TSV, Parquet, JSONL) into ``report_id``/``text`` rows, with clear errors."""

from __future__ import annotations

import hashlib
import io
import json
import re
from pathlib import Path, PurePosixPath
from urllib.parse import urlparse

import pandas as pd

from .errors import R2LError

URL = re.compile(r"[a-z][a-z0-9+.-]*://", re.IGNORECASE)
FORMATS = {".csv": "csv", ".tsv": "tsv", ".parquet": "parquet", ".pq": "parquet", ".jsonl": "jsonl", ".ndjson": "jsonl"}


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _decode(path: Path | str, data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise R2LError(
            f"{path}: line {line}: byte 0x{data[exc.start]:02x} at offset {exc.start} is not UTF-8; "
            "re-save the file as UTF-8"
        ) from None


def is_url(path: str | Path) -> bool:
    """A store URL (``s3://bucket/reports.parquet``) rather than a local path."""
    return isinstance(path, str) and URL.match(path) is not None


def source_name(path: str | Path) -> Path | str:
    """How errors name a table: its path, or its URL as :func:`shown`."""
    return shown(path) if is_url(path) else Path(path)


def shown(url: str) -> str:
    """A URL as errors show it: without user info and query, which may hold credentials."""
    parts = urlparse(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}{parts.path}"


def _fetch(url: str) -> bytes:
    """The bytes of the file at ``url``, from a store that pyarrow reaches (credentials from the environment)."""
    from pyarrow import ArrowException, fs

    try:
        store, inner = fs.FileSystem.from_uri(url)
        kind = store.get_file_info(inner).type
        if kind == fs.FileType.NotFound:
            raise R2LError(f"{shown(url)}: no such file")
        if kind == fs.FileType.Directory:
            raise R2LError(f"{shown(url)}: is a directory; give a table file ({', '.join(sorted(FORMATS))})")
        with store.open_input_stream(inner) as stream:
            return stream.read()
    except (ArrowException, OSError, ValueError) as exc:
        raise R2LError(f"{shown(url)}: cannot be read: {str(exc).splitlines()[0]}") from None


LABELS_HINT = "is it a labels.csv written by r2l label?"
IMAGES_HINT = "the images table needs the columns image, report_id and patient_id"
#: Cell texts that mean "no value" in exported tables; a report reading just this is empty.
MISSING_MARKERS = frozenset({"nan", "na", "n/a", "null", "none", "<na>"})


def _read_jsonl(path: Path | str, data: bytes) -> pd.DataFrame:
    rows = []
    for number, line in enumerate(_decode(path, data).splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise R2LError(f"{path}: line {number}: not valid JSON: {exc.msg} (column {exc.colno})") from None
        if not isinstance(row, dict):
            raise R2LError(f"{path}: line {number}: expected a JSON object, found {type(row).__name__}")
        rows.append(row)
    return pd.DataFrame(rows)


def read_table(path: str | Path, str_columns: tuple[str, ...] = ()) -> pd.DataFrame:
    """Read a CSV/TSV/Parquet/JSONL table; ``str_columns`` are kept as text (ids).

    ``path`` is a local file or the URL of one in a store that pyarrow reaches (``s3://``, ``gs://``,
    ``abfs://``, ``hdfs://``; options such as ``?region=…`` in the query, credentials from the
    environment as the store's own tools read them).
    """
    url, name = is_url(path), source_name(path)
    if url:
        suffix = PurePosixPath(urlparse(path).path).suffix
    else:
        path = name
        if path.is_dir():
            raise R2LError(f"{path}: is a directory; give a table file ({', '.join(sorted(FORMATS))})")
        if not path.is_file():
            raise R2LError(f"{path}: no such file")
        suffix = path.suffix
    kind = FORMATS.get(suffix.lower())
    if kind is None:
        raise R2LError(f"{name}: unknown table format {suffix!r} (use {', '.join(sorted(FORMATS))})")
    data = _fetch(path) if url else path.read_bytes()
    if not data:
        raise R2LError(f"{name}: the file is empty")
    try:
        if kind == "parquet":
            frame = pd.read_parquet(io.BytesIO(data))
        elif kind == "jsonl":
            frame = _read_jsonl(name, data)
        else:
            dtype = {column: str for column in str_columns}
            sep = "\t" if kind == "tsv" else ","
            text = io.StringIO(_decode(name, data))
            frame = pd.read_csv(text, sep=sep, dtype=dtype, keep_default_na=False, na_values=[""])
    except R2LError:
        raise
    except (ValueError, OSError, pd.errors.ParserError) as exc:
        raise R2LError(f"{name}: cannot be read as {kind}: {str(exc).splitlines()[0]}") from None
    if frame.empty:
        raise R2LError(f"{name}: the table has no rows")
    return frame


def require_columns(frame: pd.DataFrame, path: Path | str, columns: dict[str, str]) -> None:
    """Fail naming the first missing column; ``columns`` maps each column to a hint on how to fix it."""
    for column, hint in columns.items():
        if column not in frame.columns:
            have = ", ".join(map(str, frame.columns))
            raise R2LError(f"{path}: no column {column!r} (columns: {have}); {hint}")


def _texts(frame: pd.DataFrame, path: Path | str, text_col: str) -> pd.Series:
    """The report texts; missing values and missing-value markers become empty texts, numbers are refused."""
    column = frame[text_col]
    present = column.dropna()
    numeric = pd.api.types.is_numeric_dtype(column) or present.map(lambda v: isinstance(v, int | float)).any()
    if numeric and not present.empty:
        raise R2LError(
            f"{path}: column {text_col!r} holds numbers ({column.dtype}), not report texts; "
            "choose the text column with --text-col"
        )
    texts = column.fillna("").astype(str)
    return texts.mask(texts.str.strip().str.lower().isin(MISSING_MARKERS), "")


def read_reports(path: str | Path, id_col: str = "report_id", text_col: str = "text") -> pd.DataFrame:
    """Reports as a frame with ``report_id``, ``text`` and ``text_hash``, one row per id, in file order
    (``path``: a local file or a store URL, as :func:`read_table` reads).

    Rows repeating an id with the same text are merged; the same id with different texts is an error.
    An empty text is kept (the engine records it as failed).
    """
    frame = read_table(path, (id_col,))
    path = source_name(path)
    require_columns(frame, path, {id_col: "choose it with --id-col", text_col: "choose it with --text-col"})
    ids = frame[id_col]
    missing = ids.isna() | (ids.astype(str).str.strip() == "")
    if missing.any():
        row = int(missing.to_numpy().nonzero()[0][0]) + 1
        raise R2LError(f"{path}: row {row}: empty {id_col!r}")
    reports = pd.DataFrame(
        {
            "report_id": ids.astype(str).str.strip(),
            "text": _texts(frame, path, text_col),
        }
    )
    reports["text_hash"] = reports["text"].map(text_hash)
    reports["row"] = range(1, len(reports) + 1)
    distinct = reports.drop_duplicates(["report_id", "text_hash"])
    conflicts = distinct[distinct.duplicated("report_id", keep=False)]
    if not conflicts.empty:
        report_id = conflicts["report_id"].iloc[0]
        rows = " and ".join(str(r) for r in conflicts.loc[conflicts["report_id"] == report_id, "row"].iloc[:2])
        raise R2LError(f"{path}: report id {report_id!r} appears in rows {rows} with different texts")
    return reports.drop_duplicates("report_id").reset_index(drop=True)
