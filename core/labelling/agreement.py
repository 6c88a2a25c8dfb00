"""Labels against gold labels: how a prompt or backend is validated on manually labelled reports.

A task's labels are 0/1 or four-state findings (positive / negative / uncertain / not_mentioned).
A label's gold column is found by name (``gold_<label>``, ``<label>_gold`` or ``<label>``, also
case, spaces and hyphens aside: "Pleural Effusion" is ``pleural_effusion``); labels without one
are skipped. Gold values are 0/1, or states: the words, or CheXpert's codes 1 / 0 / -1 / blank.
Where gold or label is a state, the 0/1 metrics compare both through the uncertainty policy
(:func:`~report2label.core.task.training_value`); where both are states, a gold × predicted
confusion of the four states is kept as well.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .. import registry
from ..atomic import atomic_path
from ..errors import R2LError
from ..metrics import Confusion, Estimate, binary_agreement
from ..reports import LABELS_HINT, read_table, require_columns
from ..task import STATES, UNCERTAIN_POLICIES, UncertainPolicy, training_value
from .folder import LabelFolder
from .gold import read_gold
from .multilabel_metrics import StateConfusion, averaged_agreement, state_agreement
from .text_metrics import TextAgreement, eval_text

"""How gold values are read: ``states`` (blank = not mentioned), ``binary`` (0/1 only) or ``auto``:
states when any gold cell is -1 or a state word, else binary."""


@dataclass(frozen=True)
class LabelAgreement:
    label: str
    gold_column: str
    confusion: Confusion
    metrics: dict[str, Estimate]
    gold_values: str = "binary"
    """``binary`` (gold read as 0/1) or ``states``."""
    predicted_values: str = "binary"
    """``binary`` (a 0/1 label) or ``states`` (a finding)."""
    dropped: int = 0
    """Reports left out of ``confusion`` because gold or label was uncertain (policy ``ignore``)."""
    states: StateConfusion | None = None
    """Gold × predicted states, where both are states."""
    state_metrics: dict[str, Estimate] | None = None

    def as_dict(self) -> dict:
        result = {
            "label": self.label,
            "gold_column": self.gold_column,
            "n": self.confusion.n,
            "confusion": vars(self.confusion),
            "metrics": {name: est.as_dict() for name, est in self.metrics.items()},
            "gold_values": self.gold_values,
            "predicted_values": self.predicted_values,
            "dropped_uncertain": self.dropped,
        }
        if self.states is not None:
            result["state_confusion"] = self.states.as_dict()
            result["state_metrics"] = {name: est.as_dict() for name, est in (self.state_metrics or {}).items()}
        return result


@dataclass(frozen=True)
class AgreementReport:
    task: str
    compared: int
    failed: int
    missing: int
    labels: list[LabelAgreement]
    disagreements: Path
    summary: Path
    skipped: tuple[str, ...] = ()
    """Labels of the task without a gold column."""
    averages: dict[str, dict[str, Estimate]] = field(default_factory=dict)
    """``micro`` and ``macro`` precision, recall and F1 over the evaluated labels."""
    uncertain: str = "ones"
    gold_format: str = "binary"


def _predicted(compared: pd.DataFrame, path: Path, label: str, is_state: bool) -> pd.Series:
    values = compared[label]
    if is_state:
        ok = values.isin(STATES)
    else:
        values = pd.to_numeric(values, errors="coerce")
        ok = values.isin([0, 1])
    if not ok.all():
        where = (~ok).to_numpy().nonzero()[0][0]
        raise R2LError(
            f"{path}: report {compared['report_id'].iloc[where]!r}: label {label!r} is "
            f"{compared[label].iloc[where]!r}, "
            f"expected {'a state' if is_state else '0 or 1'}; {LABELS_HINT}"
        )
    return values if is_state else values.astype(int)


def _as_binary(gold01: float, ours01: float) -> str:
    if np.isnan(gold01) or np.isnan(ours01):
        return "uncertain ignored"
    if gold01 == ours01:
        return "agree"
    return "FP" if ours01 else "FN"


def eval_labels(
    labels: str | Path,
    gold: str | Path,
    *,
    id_col: str = "report_id",
    gold_col: str | None = None,
    text_col: str = "text",
    outdir: str | Path | None = None,
    uncertain: UncertainPolicy = "ones",
    gold_format: str = "auto",
    n_boot: int = 2000,
    seed: int = 0,
) -> AgreementReport | TextAgreement:
    """Compare ``labels`` (a ``labels.csv``) with ``gold``; write ``disagreements.csv`` and ``label_eval.json``.

    A free-text task is scored by :func:`~report2label.core.labelling.text_metrics.eval_text` instead.

    ``uncertain`` maps states to 0/1 for the binary metrics (``ignore``: leave those reports out of
    that label's metrics); ``gold_format`` says how gold cells are read (:data:`GOLD_FORMATS`).
    """
    if uncertain not in UNCERTAIN_POLICIES:
        raise R2LError(f"unknown uncertainty policy {uncertain!r} (choose {', '.join(UNCERTAIN_POLICIES)})")
    labels, gold = Path(labels), Path(gold)
    ours = read_table(labels, ("report_id",))
    require_columns(ours, labels, dict.fromkeys(("report_id", "task", "status"), LABELS_HINT))
    tasks = ours["task"].dropna().unique()
    if len(tasks) != 1:
        raise R2LError(f"{labels}: expected the labels of one task, found {len(tasks)}")
    spec = registry.task(str(tasks[0]))
    if spec.text_field:  # free text: ROUGE and BLEU instead of agreement
        where = {"id_col": id_col, "gold_col": gold_col, "text_col": text_col, "outdir": outdir}
        return eval_text(spec, labels, gold, **where, n_boot=n_boot, seed=seed)
    truth = read_gold(gold, spec, id_col=id_col, gold_col=gold_col, gold_format=gold_format)
    columns, fmt, skipped = truth.columns, truth.fmt, truth.skipped
    evaluated = [name for name in spec.labels if name in columns]
    state_labels = set(spec.state_labels)
    theirs = pd.DataFrame({"report_id": truth.ids, **{f"gold:{name}": truth.values[name] for name in evaluated}})
    if text_col in truth.table.columns:
        theirs[text_col] = truth.table[text_col]
    keep = ["report_id", *(f"gold:{n}" for n in evaluated)] + ([text_col] if text_col in theirs.columns else [])
    joined = theirs[keep].merge(ours, on="report_id", how="left", validate="one_to_one")
    missing = int(joined["status"].isna().sum())
    failed = int((joined["status"] == "failed").sum())
    compared = joined[joined["status"] == "labelled"].reset_index(drop=True)
    if compared.empty:
        raise R2LError(f"no report of {gold} has a label in {labels} (ids are matched on {id_col!r})")

    def binary(value) -> float:
        return training_value(value, uncertain)

    results, disagreeing, truth01, ours01, masks = [], [], [], [], []
    show_binary = fmt == "states" and any(name in state_labels for name in evaluated)
    for name in evaluated:
        is_state = name in state_labels
        truth, predicted = compared[f"gold:{name}"], _predicted(compared, labels, name, is_state)
        t01, p01 = truth.map(binary).to_numpy(float), predicted.map(binary).to_numpy(float)
        kept = ~(np.isnan(t01) | np.isnan(p01))
        confusion = Confusion.of(t01[kept], p01[kept])
        states = StateConfusion.of(truth, predicted) if is_state and fmt == "states" else None
        results.append(
            LabelAgreement(
                name,
                columns[name],
                confusion,
                binary_agreement(confusion, n_boot=n_boot, seed=seed),
                gold_values=fmt,
                predicted_values="states" if is_state else "binary",
                dropped=int((~kept).sum()),
                states=states,
                state_metrics=state_agreement(states, n_boot=n_boot, seed=seed) if states else None,
            )
        )
        truth01.append(np.where(kept, t01, 0))
        ours01.append(np.where(kept, p01, 0))
        masks.append(kept)
        wrong = (truth != predicted).to_numpy() if states else kept & (t01 != p01)
        rows = compared[wrong]
        as_binary = [_as_binary(t, p) for t, p in zip(t01[wrong], p01[wrong], strict=True)]
        disagreeing.append(
            pd.DataFrame(
                {
                    "report_id": rows["report_id"],
                    "label": name,
                    "predicted": predicted[wrong],
                    "gold": truth[wrong],
                    **({"as_binary": as_binary} if show_binary else {}),
                    "raw_answer": rows["raw_answer"],
                    **({"text": rows[text_col]} if text_col in rows.columns else {}),
                }
            )
        )
    averages = averaged_agreement(
        np.column_stack(truth01), np.column_stack(ours01), np.column_stack(masks), n_boot=n_boot, seed=seed
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
        "uncertain": uncertain,
        "gold_format": fmt,
        "evaluated": evaluated,
        "skipped": list(skipped),
        "per_label": [r.as_dict() for r in results],
        "averages": {
            "labels": evaluated,
            "n_boot": n_boot,
            "seed": seed,
            **{kind: {name: est.as_dict() for name, est in values.items()} for kind, values in averages.items()},
        },
    }
    with atomic_path(summary) as tmp:
        tmp.write_text(json.dumps(report, indent=2))
    return AgreementReport(
        spec.name, len(compared), failed, missing, results, disagreements, summary, skipped, averages, uncertain, fmt
    )
