"""Prompt variants × backends on gold-labelled reports: a leaderboard with intervals and McNemar tests.

Each combination of a backend configuration and a prompt variant (backends that take no prompt,
such as ``rules``, make one combination each) labels the reports that have gold labels into its
own label folder ``OUTDIR/<combination>/`` through :func:`~report2label.core.labelling.label`, so
its store makes a rerun ask the backend only for what is not stored yet. Then every combination
is measured against the gold labels:

- per label: accuracy, sensitivity, specificity, PPV, NPV (Wilson 95% intervals), F1 and Cohen's
  kappa (bootstrap percentile intervals), on the reports the combination labelled (failed rows
  are counted, not scored, as in ``r2l eval-labels``); four-state labels and gold become 0/1
  through the uncertainty policy (:func:`~report2label.core.task.training_value`; ``ignore`` leaves
  those reports out of that label);
- over labels: the mean accuracy and the micro-F1 (TP, FP and FN summed over labels), with
  intervals from a bootstrap over reports;
- the ranking: by mean accuracy for a one-label task, by micro-F1 for a multi-label one (accuracy
  over sparse findings mostly counts the reports without them); ``rank_by`` chooses;
- an exact McNemar test of the best combination against each other one: a two-sided binomial test
  (p = 1/2) on the discordant reports, those that exactly one of the two got right, among the
  reports both labelled; per label, and pooled over the labels for the leaderboard (the cells of
  one report are then counted as if independent).

Writes ``OUTDIR/compare.json`` (everything), ``OUTDIR/compare.csv`` (a row per combination and
label), ``OUTDIR/<combination>/disagreements.csv`` and ``OUTDIR/gold_reports.csv`` (the reports
that are labelled).
"""

from __future__ import annotations

import json
import re
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .. import registry
from ..atomic import atomic_path
from ..errors import R2LError
from ..metrics import Confusion, Estimate, binary_agreement
from ..prompt_file import with_prompt_file
from ..reports import read_reports, read_table
from ..task import UNCERTAIN_POLICIES, TaskSpec, UncertainPolicy, training_value
from .engine import build_options, label
from .folder import LabelFolder
from .gold import Gold, read_gold
from .multilabel_metrics import averaged_agreement

RANK_BY = ("auto", "accuracy", "f1")
METRICS = ("accuracy", "sensitivity", "specificity", "ppv", "npv", "f1", "kappa")
GOLD_REPORTS = "gold_reports.csv"
_OPTION = re.compile(r'\s*([A-Za-z_][\w.-]*)=("(?:[^"\\]|\\.)*"|\S*)')


@dataclass(frozen=True)
class BackendRun:
    """One backend configuration: the backend's name and its options (``model`` among them)."""

    backend: str
    options: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def parse(cls, spec: str) -> BackendRun:
        """``NAME [KEY=VALUE ...]``: values are JSON where they parse (``n_ctx=512``, ``model="/a b.gguf"``)."""
        parts = spec.split(None, 1)
        if not parts:
            raise R2LError("--backend: empty; expected NAME [KEY=VALUE ...]")
        name, rest = parts[0], (parts[1].strip() if len(parts) > 1 else "")
        options: dict[str, Any] = {}
        position = 0
        while position < len(rest):
            match = _OPTION.match(rest, position)
            if not match or match.end() == position:
                word = rest[position:].split()[0]
                raise R2LError(f"--backend {spec!r}: {word!r} is not KEY=VALUE")
            key, value = match.groups()
            try:
                options[key] = json.loads(value)
            except json.JSONDecodeError:
                options[key] = value
            position = match.end()
            while position < len(rest) and rest[position].isspace():
                position += 1
        return cls(name, options)

    def describe(self) -> str:
        return " ".join(
            [self.backend, *(f"{k}={json.dumps(v) if not isinstance(v, str) else v}" for k, v in self.options.items())]
        )


@dataclass(frozen=True)
class McNemar:
    """Exact McNemar test of the best combination against another: ``b`` reports only the best got
    right, ``c`` only the other; ``p`` two-sided."""

    b: int
    c: int
    p: float

    def as_dict(self) -> dict[str, Any]:
        return {"best_only_right": self.b, "other_only_right": self.c, "p": self.p}


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value: the binomial test of ``b`` successes in ``b + c`` trials at 1/2."""
    if b + c == 0:
        return 1.0
    from scipy.stats import binomtest  # imported here: scipy.stats costs every r2l command seconds

    return float(binomtest(b, b + c, 0.5).pvalue)


@dataclass
class LabelResult:
    label: str
    gold_column: str
    confusion: Confusion
    metrics: dict[str, Estimate]
    dropped: int
    """Reports left out of this label because gold or label was uncertain (policy ``ignore``)."""
    mcnemar: McNemar | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "gold_column": self.gold_column,
            "n": self.confusion.n,
            "confusion": vars(self.confusion),
            "metrics": {name: est.as_dict() for name, est in self.metrics.items()},
            "dropped_uncertain": self.dropped,
            "mcnemar_vs_best": self.mcnemar.as_dict() if self.mcnemar else None,
        }


@dataclass
class Combination:
    """One backend configuration with one prompt variant, its run and its agreement with gold."""

    name: str
    run: BackendRun
    prompt: str
    """The prompt variant's name; empty for a backend that takes no prompt."""
    prompt_hash: str
    folder: Path
    model: str = ""
    total: int = 0
    labelled: int = 0
    failed: int = 0
    reused: int = 0
    backend_calls: int = 0
    """Backend calls of this run (0 when every label was stored already)."""
    stored_attempts: int = 0
    """Backend calls that made the stored labels (their attempts summed)."""
    reports_per_second: float | None = None
    """Measured when the combination last asked the backend; None when never measured."""
    labels: list[LabelResult] = field(default_factory=list)
    mean_accuracy: Estimate | None = None
    micro_f1: Estimate | None = None
    score: float = float("nan")
    rank: int = 0
    mcnemar: McNemar | None = None
    """Pooled over labels, against the best combination (None for the best itself)."""
    disagreements: Path | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "rank": self.rank,
            "name": self.name,
            "backend": self.run.backend,
            "options": self.run.options,
            "model": self.model,
            "prompt": self.prompt,
            "prompt_hash": self.prompt_hash,
            "folder": str(self.folder),
            "score": self.score,
            "total": self.total,
            "labelled": self.labelled,
            "failed": self.failed,
            "reused": self.reused,
            "backend_calls": self.backend_calls,
            "stored_attempts": self.stored_attempts,
            "reports_per_second": self.reports_per_second,
            "mean_accuracy": self.mean_accuracy.as_dict() if self.mean_accuracy else None,
            "micro_f1": self.micro_f1.as_dict() if self.micro_f1 else None,
            "mcnemar_vs_best": self.mcnemar.as_dict() if self.mcnemar else None,
            "per_label": [result.as_dict() for result in self.labels],
            "disagreements": str(self.disagreements) if self.disagreements else None,
        }


@dataclass
class CompareReport:
    task: str
    gold: Path
    reports: int
    """Gold-labelled reports, each labelled by every combination."""
    uncertain: str
    gold_format: str
    rank_by: str
    evaluated: tuple[str, ...]
    skipped: tuple[str, ...]
    combinations: list[Combination]
    """Best first."""
    summary: Path
    table: Path

    @property
    def best(self) -> Combination:
        return self.combinations[0]


# --- combinations --------------------------------------------------------------------------------


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._") or "x"


def _combination_name(run: BackendRun, prompt: str) -> str:
    name = run.backend
    model = run.options.get("model")
    if model:
        stem = Path(str(model)).name
        name += "-" + _slug(stem.removesuffix(".gguf") if stem else str(model))
    return _slug(name) + (f"__{_slug(prompt)}" if prompt else "")


def _plan(spec: TaskSpec, runs: Sequence[BackendRun], prompts: Sequence[str] | None, outdir: Path) -> list[Combination]:
    """Every (backend configuration, prompt variant) pair, named and validated; nothing runs yet."""
    names = [p.name for p in spec.prompts] if not prompts or "all" in prompts else list(dict.fromkeys(prompts))
    variants = [spec.prompt(name) for name in names]
    plan: list[Combination] = []
    taken: set[str] = set()
    unique = {(run.backend, json.dumps(run.options, sort_keys=True, default=str)): run for run in reversed(runs)}
    for run in reversed(unique.values()):
        cls = registry.labeler(run.backend)
        build_options(cls, run.options)
        for variant in variants if cls.uses_prompt else [None]:
            base = _combination_name(run, variant.name if variant else "")
            name, number = base, 1
            while name in taken:
                number += 1
                name = f"{base}-{number}"
            taken.add(name)
            plan.append(
                Combination(
                    name=name,
                    run=run,
                    prompt=variant.name if variant else "",
                    prompt_hash=variant.hash if variant else "",
                    folder=outdir / name,
                )
            )
    return plan


# --- metrics -------------------------------------------------------------------------------------


def _binary(values: pd.Series, uncertain: UncertainPolicy) -> np.ndarray:
    return np.array([np.nan if v is None or v is pd.NA else training_value(v, uncertain) for v in values], float)


def _predicted(labels: pd.DataFrame, gold: Gold, evaluated: Sequence[str]) -> tuple[pd.DataFrame, np.ndarray]:
    """The combination's labels aligned to the gold rows (None where not labelled)."""
    labelled = labels[labels["status"] == "labelled"].set_index("report_id")
    aligned = labelled.reindex(gold.ids)
    out = pd.DataFrame(index=range(len(gold.ids)))
    for name in evaluated:
        column = aligned[name] if name in aligned.columns else pd.Series([None] * len(gold.ids))
        values = []
        for value in column.tolist():
            if value is None or (not isinstance(value, str) and pd.isna(value)):
                values.append(None)
            elif isinstance(value, str):
                values.append(value)
            else:
                values.append(int(value))
        out[name] = pd.Series(values, dtype=object)
    raw = aligned["raw_answer"].to_numpy() if "raw_answer" in aligned.columns else np.full(len(gold.ids), None)
    return out, raw


def _mean_accuracy(truth: np.ndarray, predicted: np.ndarray, mask: np.ndarray, n_boot: int, seed: int) -> Estimate:
    """Mean accuracy over labels, with a percentile interval from resampling reports."""
    correct, counted = (mask & (truth == predicted)).astype(float), mask.astype(float)
    n = len(truth)
    if n == 0 or not mask.any():
        return Estimate(float("nan"), float("nan"), float("nan"))

    def accuracy(weights: np.ndarray) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            per_label = np.where((w := weights @ counted) > 0, (weights @ correct) / w, np.nan)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # nanmean of a label no report counts
            return np.nanmean(per_label, axis=-1)

    weights = np.random.default_rng(seed).multinomial(n, np.full(n, 1 / n), size=n_boot).astype(float)
    sample = accuracy(weights)
    finite = sample[np.isfinite(sample)]
    low, high = np.percentile(finite, [2.5, 97.5]) if finite.size else (float("nan"), float("nan"))
    return Estimate(float(accuracy(np.ones((1, n)))[0]), float(low), float(high))


def _mcnemar(best: tuple[np.ndarray, np.ndarray], other: tuple[np.ndarray, np.ndarray], truth: np.ndarray) -> McNemar:
    (pb, mb), (po, mo) = best, other
    both = mb & mo
    right_b, right_o = both & (pb == truth), both & (po == truth)
    b, c = int((right_b & ~right_o).sum()), int((~right_b & right_o).sum())
    return McNemar(b, c, mcnemar_exact(b, c))


def _finite(value: float) -> bool:
    return value == value  # not NaN


# --- the comparison ------------------------------------------------------------------------------


def compare(
    task: str | TaskSpec,
    reports: str | Path,
    gold: str | Path,
    outdir: str | Path,
    *,
    backends: Sequence[str | BackendRun] = ("rules",),
    options: dict[str, Any] | None = None,
    prompts: Sequence[str] | None = None,
    prompt_file: str | Path | None = None,
    id_col: str = "report_id",
    text_col: str = "text",
    gold_col: str | None = None,
    gold_format: str = "auto",
    uncertain: UncertainPolicy = "ones",
    rank_by: str = "auto",
    batch_size: int | None = None,
    max_attempts: int = 3,
    max_chars: int = 50_000,
    allow_remote: bool = False,
    n_boot: int = 2000,
    seed: int = 0,
    show_progress: bool = True,
    announce: Callable[[str], None] | None = None,
) -> CompareReport:
    """Label the gold-labelled reports with every backend × prompt combination and rank them.

    ``backends``: ``"NAME [KEY=VALUE ...]"`` strings or :class:`BackendRun`. ``options`` (``--model``,
    ``-O``) go to every backend that takes a prompt (the LLM backends, not ``rules``), under each
    backend's own; ``allow_remote`` to the backends that have that option. ``prompts``: variant
    names (None or ``"all"``: every variant of the task and of ``prompt_file``). Everything is
    checked (task, prompts, backends and their options, gold, reports, output folder) before the
    first combination is labelled.
    """
    if uncertain not in UNCERTAIN_POLICIES:
        raise R2LError(f"unknown uncertainty policy {uncertain!r} (choose {', '.join(UNCERTAIN_POLICIES)})")
    if rank_by not in RANK_BY:
        raise R2LError(f"unknown ranking {rank_by!r} (choose {', '.join(RANK_BY)})")
    spec = with_prompt_file(registry.task(task) if isinstance(task, str) else task, prompt_file)
    if spec.text_field:
        raise R2LError(
            f"task {spec.name!r} answers free text, which r2l compare cannot rank; label each combination and "
            "score it with r2l eval-labels (ROUGE, BLEU)"
        )
    runs = [run if isinstance(run, BackendRun) else BackendRun.parse(run) for run in backends]
    if not runs:
        raise R2LError("no backend to compare; give at least one --backend")
    if options:
        runs = [
            BackendRun(run.backend, options | run.options) if registry.labeler(run.backend).uses_prompt else run
            for run in runs
        ]
    if allow_remote:
        runs = [
            BackendRun(run.backend, {"allow_remote": True} | run.options)
            if "allow_remote" in registry.labeler(run.backend).Options.model_fields
            else run
            for run in runs
        ]
    outdir, gold = Path(outdir), Path(gold)
    plan = _plan(spec, runs, prompts, outdir)
    truth = read_gold(gold, spec, id_col=id_col, gold_col=gold_col, gold_format=gold_format)
    skipped = truth.skipped
    evaluated = tuple(name for name in spec.labels if name in truth.columns)
    table = read_reports(reports, id_col, text_col)
    missing = truth.ids[~truth.ids.isin(table["report_id"])]
    if not missing.empty:
        shown = ", ".join(map(repr, missing.iloc[:3]))
        raise R2LError(
            f"{gold}: {len(missing)} gold-labelled report{'s' * (len(missing) > 1)} not in {reports} "
            f"({shown}{', …' if len(missing) > 3 else ''}); ids are matched on {id_col!r}"
        )
    subset = table.set_index("report_id").loc[truth.ids, ["text"]].reset_index()
    LabelFolder(outdir).check(spec.name)
    for combination in plan:
        LabelFolder(combination.folder).check(spec.name)
    outdir.mkdir(parents=True, exist_ok=True)
    reports_path = outdir / GOLD_REPORTS
    with atomic_path(reports_path) as tmp:
        subset.to_csv(tmp, index=False)
    previous = _previous(outdir / "compare.json")

    rank_by = ("accuracy" if len(evaluated) == 1 else "f1") if rank_by == "auto" else rank_by
    gold01 = np.column_stack([_binary(truth.values[name], uncertain) for name in evaluated])
    decisions: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for number, combination in enumerate(plan, 1):
        if announce:
            what = combination.run.describe() + (f", prompt {combination.prompt}" if combination.prompt else "")
            announce(f"[{number}/{len(plan)}] {combination.name}: {what}")
        summary = label(
            spec,
            reports_path,
            combination.folder,
            backend=combination.run.backend,
            options=combination.run.options,
            prompt=combination.prompt or None,
            batch_size=batch_size,
            max_attempts=max_attempts,
            max_chars=max_chars,
            show_progress=show_progress,
        )
        labels = read_table(LabelFolder(combination.folder).csv, ("report_id",))
        models = labels["model"].dropna()
        combination.model = str(models.iloc[0]) if not models.empty else ""
        combination.total, combination.labelled, combination.failed = summary.total, summary.labelled, summary.failed
        combination.reused, combination.backend_calls = summary.reused, summary.backend_calls
        combination.stored_attempts = int(pd.to_numeric(labels["attempts"], errors="coerce").fillna(0).sum())
        if summary.asked:
            combination.reports_per_second = summary.reports_per_second
        else:
            combination.reports_per_second = previous.get(
                (combination.name, combination.prompt_hash, combination.model)
            )
        predicted, raw = _predicted(labels, truth, evaluated)
        pred01 = np.column_stack([_binary(predicted[name], uncertain) for name in evaluated])
        mask = ~(np.isnan(gold01) | np.isnan(pred01))
        decisions[combination.name] = (np.nan_to_num(pred01, nan=-1), mask)
        labelled = np.array([v is not None for v in predicted[evaluated[0]]])
        for j, name in enumerate(evaluated):
            kept = mask[:, j]
            confusion = Confusion.of(gold01[kept, j], pred01[kept, j])
            dropped = int((labelled & ~kept).sum())
            metrics = binary_agreement(confusion, n_boot=n_boot, seed=seed)
            combination.labels.append(LabelResult(name, truth.columns[name], confusion, metrics, dropped))
        if len(evaluated) == 1:  # the label's own: Wilson interval for accuracy, F1's bootstrap
            combination.mean_accuracy = combination.labels[0].metrics["accuracy"]
            combination.micro_f1 = combination.labels[0].metrics["f1"]
        else:
            gold0, labels0 = np.nan_to_num(gold01, nan=0), np.nan_to_num(pred01, nan=0)  # masked where NaN
            combination.mean_accuracy = _mean_accuracy(gold0, labels0, mask, n_boot, seed)
            combination.micro_f1 = averaged_agreement(gold0, labels0, mask, n_boot, seed)["micro"]["f1"]
        score = combination.mean_accuracy if rank_by == "accuracy" else combination.micro_f1
        combination.score = score.value
        combination.disagreements = _write_disagreements(
            combination, truth, evaluated, predicted, raw, gold01, pred01, mask, subset
        )

    def order(c: Combination) -> tuple:
        kappas = [r.metrics["kappa"].value for r in c.labels if _finite(r.metrics["kappa"].value)]
        kappa = sum(kappas) / len(kappas) if kappas else -2.0
        return (-(c.score if _finite(c.score) else -1.0), -kappa, c.failed, c.name)

    ranked = sorted(plan, key=order)
    best = ranked[0]
    truth01 = np.nan_to_num(gold01, nan=-2)
    for rank, combination in enumerate(ranked, 1):
        combination.rank = rank
        if combination is best:
            continue
        per_label = []
        for j, result in enumerate(combination.labels):
            pb, mb = decisions[best.name]
            po, mo = decisions[combination.name]
            result.mcnemar = _mcnemar((pb[:, j], mb[:, j]), (po[:, j], mo[:, j]), truth01[:, j])
            per_label.append(result.mcnemar)
        b, c = sum(m.b for m in per_label), sum(m.c for m in per_label)
        combination.mcnemar = McNemar(b, c, mcnemar_exact(b, c))
    report = CompareReport(
        task=spec.name,
        gold=gold,
        reports=len(truth.ids),
        uncertain=uncertain,
        gold_format=truth.fmt,
        rank_by=rank_by,
        evaluated=evaluated,
        skipped=skipped,
        combinations=ranked,
        summary=outdir / "compare.json",
        table=outdir / "compare.csv",
    )
    _write_summary(report, reports, n_boot, seed)
    return report


def _previous(path: Path) -> dict[tuple[str, str, str], float]:
    """Reports/s of an earlier comparison in the folder, by (combination, prompt hash, model)."""
    try:
        earlier = json.loads(path.read_text())
        return {
            (c["name"], c["prompt_hash"], c["model"]): float(c["reports_per_second"])
            for c in earlier.get("combinations", [])
            if c.get("reports_per_second") is not None
        }
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}


def _write_disagreements(
    combination: Combination,
    truth: Gold,
    evaluated: Sequence[str],
    predicted: pd.DataFrame,
    raw: np.ndarray,
    gold01: np.ndarray,
    pred01: np.ndarray,
    mask: np.ndarray,
    subset: pd.DataFrame,
) -> Path:
    rows = []
    texts = subset["text"].to_numpy()
    for j, name in enumerate(evaluated):
        wrong = mask[:, j] & (gold01[:, j] != pred01[:, j])
        for i in wrong.nonzero()[0]:
            rows.append(
                {
                    "report_id": truth.ids.iloc[i],
                    "label": name,
                    "predicted": predicted[name].iloc[i],
                    "gold": truth.values[name].iloc[i],
                    "raw_answer": raw[i],
                    "text": texts[i],
                }
            )
    path = LabelFolder(combination.folder).disagreements
    frame = pd.DataFrame(rows, columns=["report_id", "label", "predicted", "gold", "raw_answer", "text"])
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)
    return path


def _write_summary(report: CompareReport, reports: str | Path, n_boot: int, seed: int) -> None:
    best = report.best
    document = {
        "task": report.task,
        "reports": str(reports),
        "gold": str(report.gold),
        "gold_reports": report.reports,
        "gold_format": report.gold_format,
        "uncertain": report.uncertain,
        "rank_by": report.rank_by,
        "evaluated": list(report.evaluated),
        "skipped": list(report.skipped),
        "n_boot": n_boot,
        "seed": seed,
        "best": best.name,
        "combinations": [c.as_dict() for c in report.combinations],
    }
    with atomic_path(report.summary) as tmp:
        tmp.write_text(json.dumps(document, indent=2, default=str))
    rows = []
    for c in report.combinations:
        for result in c.labels:
            row: dict[str, Any] = {
                "rank": c.rank,
                "combination": c.name,
                "backend": c.run.backend,
                "model": c.model,
                "prompt": c.prompt,
                "prompt_hash": c.prompt_hash,
                "score": c.score,
                "mean_accuracy": c.mean_accuracy.value if c.mean_accuracy else None,
                "micro_f1": c.micro_f1.value if c.micro_f1 else None,
                "label": result.label,
                "n": result.confusion.n,
                "tp": result.confusion.tp,
                "fp": result.confusion.fp,
                "fn": result.confusion.fn,
                "tn": result.confusion.tn,
            }
            for name in METRICS:
                est = result.metrics[name]
                row |= {name: est.value, f"{name}_low": est.low, f"{name}_high": est.high}
            row |= {
                "mcnemar_b": result.mcnemar.b if result.mcnemar else None,
                "mcnemar_c": result.mcnemar.c if result.mcnemar else None,
                "mcnemar_p": result.mcnemar.p if result.mcnemar else None,
                "labelled": c.labelled,
                "failed": c.failed,
                "backend_calls": c.backend_calls,
                "stored_attempts": c.stored_attempts,
                "reports_per_second": c.reports_per_second,
            }
            rows.append(row)
    with atomic_path(report.table) as tmp:
        pd.DataFrame(rows).to_csv(tmp, index=False)
