"""Gold-label tables: each label's gold column, read as 0/1 or as four-state values, row errors named.

A label's gold column is ``gold_<label>``, ``<label>_gold`` or ``<label>``, matched exactly first,
then case, spaces and hyphens aside (CheXpert's "Pleural Effusion" is ``pleural_effusion``).
Values are 0/1 or states: ``positive``, ``negative``, ``uncertain``, ``not_mentioned`` or
CheXpert's codes 1 / 0 / -1 / blank. ``eval-labels`` and ``compare`` read gold through here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import R2LError
from ..reports import MISSING_MARKERS, read_table, require_columns
from ..task import CHEXPERT_CODES, STATES, TaskSpec

GOLD_FORMATS = ("auto", "states", "binary")
"""How gold cells are read: ``auto`` is states when any cell is -1 or a state word, else 0/1."""


@dataclass(frozen=True)
class Gold:
    """The gold of the labels found in a table, in its row order; ``skipped``: labels without a column."""

    table: pd.DataFrame
    ids: pd.Series
    columns: dict[str, str]
    values: dict[str, pd.Series]
    """Per label: 0/1 ints (``fmt`` binary) or state names (``fmt`` states)."""
    fmt: str
    skipped: tuple[str, ...]


def _normalised(name: str) -> str:
    return re.sub(r"[\s\-]+", "_", str(name).strip().lower())


def _candidates(label: str) -> list[str]:
    return [f"gold_{label}", f"{label}_gold", label]


def find_gold_column(gold: pd.DataFrame, path: Path, label: str) -> str | None:
    """The gold column of ``label``: an exact name first, then one equal to it case, spaces and hyphens aside."""
    candidates = _candidates(label)
    for column in candidates:
        if column in gold.columns:
            return column
    for candidate in map(_normalised, candidates):
        found = [str(c) for c in gold.columns if _normalised(c) == candidate]
        if len(found) > 1:
            raise R2LError(f"{path}: columns {', '.join(map(repr, found))} all name label {label!r}; keep one")
        if found:
            return found[0]
    return None


def _gold_columns(gold: pd.DataFrame, path: Path, labels: tuple[str, ...]) -> dict[str, str]:
    columns = {label: find_gold_column(gold, path, label) for label in labels}
    found = {label: column for label, column in columns.items() if column is not None}
    if found:
        return found
    if len(labels) == 1:
        looked = ", ".join(map(repr, _candidates(labels[0])))
        raise R2LError(
            f"{path}: no gold column for label {labels[0]!r} (looked for {looked}, case, spaces and hyphens aside); "
            "choose it with --gold-col"
        )
    raise R2LError(
        f"{path}: no gold column for any label ({', '.join(labels)}); a gold column is named like its label, "
        "gold_<label> or <label>_gold (case, spaces and hyphens aside: 'Pleural Effusion' is pleural_effusion)"
    )


def _cell(value: Any) -> str:
    """A gold cell as comparable text: '' for blank, '1' for 1 / 1.0 / ' 1 ', 'not_mentioned' for 'Not mentioned'."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return ""
    if isinstance(value, bool | np.bool_):
        return str(int(value))
    if isinstance(value, int | float | np.integer | np.floating):
        return str(int(value)) if float(value).is_integer() else str(value)
    text = str(value).strip()
    try:
        number = float(text)
    except ValueError:
        text = re.sub(r"\s+", "_", text.lower())
        return "" if text in MISSING_MARKERS else text
    return str(int(number)) if number.is_integer() else text


def _shown(value: Any) -> str:
    """A gold cell for an error message: ``blank``, a number as written, text quoted."""
    text = _cell(value)
    if text == "":
        return "blank"
    return repr(value) if isinstance(value, str) else text


def _values(cells: pd.Series, raw: pd.Series, fmt: str, path: Path, ids: pd.Series, has_states: bool) -> pd.Series:
    """0/1 ints (``binary``) or state names (``states``); a value that is neither names its row and column."""
    if fmt == "states":
        values = cells.map(lambda v: CHEXPERT_CODES.get(v, v if v in STATES else None))
        expected = "1, 0, -1 or blank (CheXpert's codes) or positive, negative, uncertain, not_mentioned"
    else:
        values = cells.map({"0": 0, "1": 1})
        expected = "0 or 1"
        if has_states:
            expected += " (for gold in states, where blank is not mentioned, use --gold-format states)"
    bad = values.isna().to_numpy().nonzero()[0]
    if bad.size:
        where = bad[0]
        raise R2LError(
            f"{path}: row {where + 1} (id {ids.iloc[where]!r}): {raw.name!r} is {_shown(raw.iloc[where])}, "
            f"expected {expected}"
        )
    return values if fmt == "states" else values.astype(int)


def read_gold(path: Path, task: TaskSpec, *, id_col: str, gold_col: str | None, gold_format: str) -> Gold:
    """The gold of ``task``'s labels in the table at ``path``; ids must be unique."""
    if gold_format not in GOLD_FORMATS:
        raise R2LError(f"unknown gold format {gold_format!r} (choose {', '.join(GOLD_FORMATS)})")
    if gold_col and len(task.labels) > 1:
        raise R2LError(f"--gold-col names one column, but task {task.name!r} has {len(task.labels)} labels")
    table = read_table(path, (id_col,))
    require_columns(table, path, {id_col: "choose it with --id-col"})
    table = table.reset_index(drop=True)
    ids = table[id_col].astype(str).str.strip()
    duplicated = ids.duplicated()
    if duplicated.any():
        where = int(duplicated.to_numpy().nonzero()[0][0])
        raise R2LError(f"{path}: row {where + 1}: id {ids.iloc[where]!r} appears more than once")
    if gold_col:
        if gold_col not in table.columns:
            raise R2LError(f"{path}: no column {gold_col!r} (named by --gold-col)")
        columns = {task.labels[0]: gold_col}
    else:
        columns = _gold_columns(table, path, task.labels)
    cells = {name: table[column].map(_cell) for name, column in columns.items()}
    fmt = gold_format
    if fmt == "auto":
        marks = {"-1", *STATES}
        fmt = "states" if any(series.isin(marks).any() for series in cells.values()) else "binary"
    has_states = bool(task.state_labels)
    values = {name: _values(cells[name], table[column], fmt, path, ids, has_states) for name, column in columns.items()}
    skipped = tuple(name for name in task.labels if name not in columns)
    return Gold(table, ids, columns, values, fmt, skipped)
