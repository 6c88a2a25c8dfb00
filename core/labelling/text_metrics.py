"""Free-text answers against gold texts: ROUGE-1/2/L and BLEU with bootstrap 95% intervals.

ROUGE (the ``rouge-score`` package, Porter stemming) is the F-measure of each report, averaged
over reports; BLEU (``sacrebleu``, its 13a tokenisation, 0–100) is corpus-level: n-gram counts
are summed over the reports, then scored. Intervals are percentiles of a seeded bootstrap over
reports: each resample draws reports with replacement and recomputes every metric on them.
``worst_cases.csv`` lists the reports with the lowest ROUGE-L first, for review.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..atomic import atomic_path
from ..errors import R2LError
from ..metrics import Estimate
from ..reports import LABELS_HINT, read_table, require_columns
from ..task import TaskSpec
from .folder import LabelFolder
from .gold import find_gold_column

ROUGE = ("rouge1", "rouge2", "rougeL")
METRICS = (*ROUGE, "bleu")


@dataclass(frozen=True)
class TextAgreement:
    """What :func:`eval_text` measured: the metrics of a free-text label against its gold texts."""

    task: str
    label: str
    gold_column: str
    compared: int
    failed: int
    missing: int
    metrics: dict[str, Estimate]
    worst_cases: Path
    summary: Path


def _scorers():
    try:
        from rouge_score import rouge_scorer
        from sacrebleu.metrics import BLEU
    except ImportError:
        raise R2LError(
            "eval-labels of a free-text task needs rouge-score and sacrebleu: pip install 'report2label[text]'"
        ) from None
    return rouge_scorer.RougeScorer(list(ROUGE), use_stemmer=True), BLEU()


def text_scores(predicted: list[str], gold: list[str]) -> tuple[np.ndarray, np.ndarray, object]:
    """Per report: ROUGE F-measures ``[n, 3]`` and BLEU's n-gram statistics ``[n, 10]``; and the BLEU scorer."""
    rouge, bleu = _scorers()
    scores = [rouge.score(target, prediction) for prediction, target in zip(predicted, gold, strict=True)]
    f = np.array([[s[name].fmeasure for name in ROUGE] for s in scores], dtype=float).reshape(-1, len(ROUGE))
    # sacrebleu's own bootstrap resamples these per-sentence statistics the same way
    stats = np.array(bleu._extract_corpus_statistics(predicted, [gold]), dtype=float).reshape(len(predicted), -1)
    return f, stats, bleu


def text_metrics(
    predicted: list[str], gold: list[str], n_boot: int = 2000, seed: int = 0
) -> tuple[dict[str, Estimate], np.ndarray]:
    """ROUGE-1/2/L (mean F-measure) and corpus BLEU, each with a 95% bootstrap interval over reports;
    and each report's ROUGE F-measures ``[n, 3]``."""
    rouge, stats, bleu = text_scores(predicted, gold)

    def corpus_bleu(rows: np.ndarray) -> float:
        return float(bleu._compute_score_from_stats(rows.sum(axis=0).astype(int).tolist()).score)

    draws = np.random.default_rng(seed).integers(0, len(predicted), size=(n_boot, len(predicted)))
    resampled = {name: rouge[draws, i].mean(axis=1) for i, name in enumerate(ROUGE)}
    resampled["bleu"] = np.array([corpus_bleu(stats[d]) for d in draws])
    values = {name: float(rouge[:, i].mean()) for i, name in enumerate(ROUGE)} | {"bleu": corpus_bleu(stats)}
    intervals = {name: np.percentile(resampled[name], [2.5, 97.5]) for name in METRICS}
    return {name: Estimate(values[name], *map(float, intervals[name])) for name in METRICS}, rouge


def _gold_texts(path: Path, task: TaskSpec, id_col: str, gold_col: str | None) -> tuple[pd.DataFrame, str]:
    field = task.text_field
    table = read_table(path, (id_col,))
    require_columns(table, path, {id_col: "choose it with --id-col"})
    column = gold_col or find_gold_column(table, path, field)
    if column is None or column not in table.columns:
        looked = repr(gold_col) if gold_col else f"'gold_{field}', '{field}_gold' or '{field}'"
        raise R2LError(f"{path}: no gold column for label {field!r} (looked for {looked}); choose it with --gold-col")
    table = table.reset_index(drop=True)
    table["report_id"] = table[id_col].astype(str).str.strip()
    duplicated = table["report_id"].duplicated()
    if duplicated.any():
        where = int(duplicated.to_numpy().nonzero()[0][0])
        raise R2LError(f"{path}: row {where + 1}: id {table['report_id'].iloc[where]!r} appears more than once")
    blank = table[column].isna() | (table[column].astype(str).str.strip() == "")
    if blank.any():
        where = int(blank.to_numpy().nonzero()[0][0])
        raise R2LError(
            f"{path}: row {where + 1} (id {table['report_id'].iloc[where]!r}): {column!r} is blank; "
            "every gold row needs a text"
        )
    return table, column


def eval_text(
    task: TaskSpec,
    labels: Path,
    gold: Path,
    *,
    id_col: str,
    gold_col: str | None,
    text_col: str,
    outdir: str | Path | None,
    n_boot: int,
    seed: int,
    worst: int = 50,
) -> TextAgreement:
    """Score a free-text task's ``labels`` against the gold texts of ``gold``; write the summary and worst cases."""
    field = task.text_field
    ours = read_table(labels, ("report_id", field))
    require_columns(ours, labels, dict.fromkeys(("report_id", "status", field), LABELS_HINT))
    table, column = _gold_texts(gold, task, id_col, gold_col)
    keep = ["report_id", column] + ([text_col] if text_col in table.columns and text_col != column else [])
    joined = (
        table[keep]
        .rename(columns={column: "gold:"})
        .merge(ours[["report_id", "status", field]], on="report_id", how="left", validate="one_to_one")
    )
    missing = int(joined["status"].isna().sum())
    failed = int((joined["status"] == "failed").sum())
    compared = joined[joined["status"] == "labelled"].reset_index(drop=True)
    if compared.empty:
        raise R2LError(f"no report of {gold} has a label in {labels} (ids are matched on {id_col!r})")
    predicted, truth = compared[field].fillna("").astype(str).tolist(), compared["gold:"].astype(str).tolist()
    metrics, rouge = text_metrics(predicted, truth, n_boot=n_boot, seed=seed)
    cases = pd.DataFrame({"report_id": compared["report_id"], **{name: rouge[:, i] for i, name in enumerate(ROUGE)}})
    cases["predicted"], cases["gold"] = predicted, truth
    if text_col in compared.columns:
        cases["text"] = compared[text_col]
    folder = LabelFolder(Path(outdir) if outdir else labels.parent)
    with atomic_path(folder.worst_cases) as tmp:
        cases.sort_values("rougeL", kind="stable").head(worst).to_csv(tmp, index=False)
    report = {
        "labels": str(labels),
        "gold": str(gold),
        "task": task.name,
        "label": field,
        "gold_column": column,
        "compared": len(compared),
        "failed": failed,
        "missing": missing,
        "n_boot": n_boot,
        "seed": seed,
        "metrics": {name: est.as_dict() for name, est in metrics.items()},
    }
    with atomic_path(folder.evaluation) as tmp:
        tmp.write_text(json.dumps(report, indent=2))
    return TextAgreement(
        task.name, field, column, len(compared), failed, missing, metrics, folder.worst_cases, folder.evaluation
    )
