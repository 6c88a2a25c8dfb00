"""Labels against gold labels: how a prompt or backend is validated on manually labelled reports."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .. import registry
from ..atomic import atomic_path
from ..errors import R2LError
from ..metrics import Confusion, Estimate, binary_agreement
from ..reports import LABELS_HINT, read_table, require_columns
from .folder import LabelFolder


@dataclass(frozen=True)
class LabelAgreement:
    label: str
    gold_column: str
    confusion: Confusion
    metrics: dict[str, Estimate]

    def as_dict(self) -> dict:
        return {
            "label": self.label,
            "gold_column": self.gold_column,
            "n": self.confusion.n,
            "confusion": vars(self.confusion),
            "metrics": {name: est.as_dict() for name, est in self.metrics.items()},
        }


@dataclass(frozen=True)
class AgreementReport:
    task: str
    compared: int
    failed: int
    missing: int
    labels: list[LabelAgreement]
    disagreements: Path
    summary: Path


def _gold_column(gold: pd.DataFrame, path: Path, label: str, explicit: str | None) -> str:
    candidates = [explicit] if explicit else [f"gold_{label}", f"{label}_gold", label]
    for column in candidates:
        if column in gold.columns:
            return column
    raise R2LError(
        f"{path}: no gold column for label {label!r} (looked for {', '.join(map(repr, candidates))}); "
        "choose it with --gold-col"
    )


def _binary(values: pd.Series, path: Path, column: str, ids: pd.Series) -> pd.Series:
    numeric = pd.to_numeric(values, errors="coerce")
    bad = ~numeric.isin([0, 1])
    if bad.any():
        where = bad.to_numpy().nonzero()[0][0]
        raise R2LError(
            f"{path}: row {where + 1} (id {ids.iloc[where]!r}): {column!r} is {values.iloc[where]!r}, expected 0 or 1"
        )
    return numeric.astype(int)


def eval_labels(
    labels: str | Path,
    gold: str | Path,
    *,
    id_col: str = "report_id",
    gold_col: str | None = None,
    text_col: str = "text",
    outdir: str | Path | None = None,
) -> AgreementReport:
    """Compare ``labels`` (a ``labels.csv``) with ``gold``; write ``disagreements.csv`` and ``label_eval.json``."""
    labels, gold = Path(labels), Path(gold)
    ours = read_table(labels, ("report_id",))
    require_columns(ours, labels, dict.fromkeys(("report_id", "task", "status"), LABELS_HINT))
    tasks = ours["task"].dropna().unique()
    if len(tasks) != 1:
        raise R2LError(f"{labels}: expected the labels of one task, found {len(tasks)}")
    spec = registry.task(str(tasks[0]))
    if gold_col and len(spec.labels) > 1:
        raise R2LError(f"--gold-col names one column, but task {spec.name!r} has {len(spec.labels)} labels")
    theirs = read_table(gold, (id_col,))
    require_columns(theirs, gold, {id_col: "choose it with --id-col"})
    theirs = theirs.rename(columns={id_col: "report_id"})
    theirs["report_id"] = theirs["report_id"].astype(str).str.strip()
    columns = {name: _gold_column(theirs, gold, name, gold_col) for name in spec.labels}
    for name, column in columns.items():
        theirs[f"gold:{name}"] = _binary(theirs[column], gold, column, theirs["report_id"])
    keep = ["report_id", *(f"gold:{n}" for n in spec.labels)] + ([text_col] if text_col in theirs.columns else [])
    joined = theirs[keep].merge(ours, on="report_id", how="left", validate="one_to_one")
    missing = int(joined["status"].isna().sum())
    failed = int((joined["status"] == "failed").sum())
    compared = joined[joined["status"] == "labelled"]
    if compared.empty:
        raise R2LError(f"no report of {gold} has a label in {labels} (ids are matched on {id_col!r})")
    results, disagreeing = [], []
    for name in spec.labels:
        truth, predicted = compared[f"gold:{name}"].to_numpy(), compared[name].astype(int).to_numpy()
        confusion = Confusion.of(truth, predicted)
        results.append(LabelAgreement(name, columns[name], confusion, binary_agreement(confusion)))
        wrong = compared[truth != predicted]
        disagreeing.append(
            pd.DataFrame(
                {
                    "report_id": wrong["report_id"],
                    "label": name,
                    "predicted": wrong[name].astype(int),
                    "gold": wrong[f"gold:{name}"],
                    "raw_answer": wrong["raw_answer"],
                    **({"text": wrong[text_col]} if text_col in wrong.columns else {}),
                }
            )
        )
    folder = LabelFolder(Path(outdir) if outdir else labels.parent)
    disagreements, summary = folder.disagreements, folder.evaluation
    with atomic_path(disagreements) as tmp:
        pd.concat(disagreeing).to_csv(tmp, index=False)
    report = {
        "labels": str(labels),
        "gold": str(gold),
        "task": spec.name,
        "compared": len(compared),
        "failed": failed,
        "missing": missing,
        "per_label": [r.as_dict() for r in results],
    }
    with atomic_path(summary) as tmp:
        tmp.write_text(json.dumps(report, indent=2))
    return AgreementReport(spec.name, len(compared), failed, missing, results, disagreements, summary)
