"""``r2l compare``: prompt variants × backends on gold-labelled reports, as a leaderboard."""

from __future__ import annotations

from pathlib import Path

import click
from rich.table import Table

from report2label.cli.options import (
    console,
    estimate_cell,
    gold_format_option,
    parse_options,
    uncertain_metrics_option,
)
from report2label.core.errors import EXIT_PARTIAL
from report2label.core.labelling.compare import RANK_BY, CompareReport
from report2label.core.labelling.compare import compare as run_compare

METRICS = ("accuracy", "sensitivity", "specificity", "f1", "kappa")


def _p(value: float | None) -> str:
    if value is None:
        return "best"
    return f"{value:.3f}" if value >= 0.001 else f"{value:.1e}"


def _speed(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f}"


def print_report(report: CompareReport) -> None:
    """The leaderboard (and, for a multi-label task, a per-label table)."""
    ranking = {"accuracy": "mean accuracy over labels", "f1": "micro-F1 over labels"}[report.rank_by]
    if len(report.evaluated) == 1:
        ranking = "accuracy" if report.rank_by == "accuracy" else "F1"
    title = f"{report.task}: {report.reports} gold-labelled reports, ranked by {ranking}; value and 95% CI" + (
        f" (uncertain → {report.uncertain})" if report.gold_format == "states" or report.uncertain != "ones" else ""
    )
    common = ("failed", "calls", "reports/s", "McNemar p\nvs #1")
    if len(report.evaluated) == 1:
        names = ("accuracy", "sensitivity", "specificity", "f1", "kappa")
        table = Table("#", "combination", "accuracy", "sensitivity", "specificity", "F1", "kappa", *common, title=title)
        for c in report.combinations:
            result = c.labels[0]
            table.add_row(
                str(c.rank),
                c.name,
                *(estimate_cell(result.metrics[name]) for name in names),
                str(c.failed),
                str(c.backend_calls),
                _speed(c.reports_per_second),
                _p(c.mcnemar.p if c.mcnemar else None),
            )
        console.print(table)
    else:
        table = Table("#", "combination", "mean accuracy", "micro-F1", *common, title=title)
        for c in report.combinations:
            table.add_row(
                str(c.rank),
                c.name,
                estimate_cell(c.mean_accuracy),
                estimate_cell(c.micro_f1),
                str(c.failed),
                str(c.backend_calls),
                _speed(c.reports_per_second),
                _p(c.mcnemar.p if c.mcnemar else None),
            )
        console.print(table)
        per_label = Table(
            "label",
            "#",
            "combination",
            "n",
            "accuracy",
            "sensitivity",
            "specificity",
            "F1",
            "kappa",
            "McNemar p\nvs #1",
            title="per label",
        )
        for j, name in enumerate(report.evaluated):
            for c in report.combinations:
                result = c.labels[j]
                per_label.add_row(
                    name if c.rank == 1 else "",
                    str(c.rank),
                    c.name,
                    str(result.confusion.n),
                    *(estimate_cell(result.metrics[m]) for m in METRICS),
                    _p(result.mcnemar.p if result.mcnemar else None),
                    end_section=c is report.combinations[-1],
                )
        console.print(per_label)
    console.print(
        "McNemar: exact two-sided binomial test on the reports that exactly one of #1 and the combination got right"
        + (" (pooled over labels)" if len(report.evaluated) > 1 else "")
        + "; calls: backend calls of this run (0: every label was stored)"
    )
    if report.skipped:
        console.print(f"skipped, no gold column: {', '.join(report.skipped)}")
    best = report.best
    console.print(
        f"best: [bold]{best.name}[/] (backend {best.run.backend}"
        + (f", model {best.model}" if best.model else "")
        + (f", prompt {best.prompt} {best.prompt_hash}" if best.prompt else "")
        + ")"
    )
    console.print(
        f"leaderboard: {report.table}\nsummary: {report.summary}\n"
        f"labels and disagreements: {report.summary.parent}/<combination>/labels.csv, disagreements.csv"
    )


@click.command(short_help="Rank prompt variants and backends on gold labels.")
@click.argument("task")
@click.argument("reports", type=click.Path(path_type=Path))
@click.argument("gold", type=click.Path(path_type=Path))
@click.option("-o", "--outdir", type=click.Path(path_type=Path), required=True, help="Output folder (resumable).")
@click.option(
    "--backend",
    "backends",
    multiple=True,
    metavar="'NAME [KEY=VALUE ...]'",
    help="A backend configuration, repeatable (default: rules), e.g. --backend rules "
    "--backend 'llamacpp model=m.gguf n_gpu_layers=-1'.",
)
@click.option("--model", help="Model of every backend that takes a prompt (not rules); inline settings win.")
@click.option(
    "-O",
    "--option",
    "options",
    multiple=True,
    metavar="KEY=VALUE",
    help="Option of every backend that takes a prompt, repeatable; inline settings win.",
)
@click.option(
    "--prompt",
    "prompts",
    multiple=True,
    help="Prompt variant, repeatable (default: all, the task's and --prompt-file's).",
)
@click.option("--prompt-file", type=click.Path(path_type=Path), help="TOML file of further prompt variants.")
@click.option("--id-col", default="report_id", show_default=True, help="Report id column of REPORTS and GOLD.")
@click.option("--text-col", default="text", show_default=True, help="Report text column of REPORTS.")
@click.option("--gold-col", help="Gold column of a one-label task (default: gold_<label>, <label>_gold or <label>).")
@gold_format_option
@uncertain_metrics_option
@click.option(
    "--rank-by",
    type=click.Choice(RANK_BY),
    default="auto",
    show_default=True,
    help="accuracy (mean over labels) or f1 (micro-F1); auto: accuracy for one label, f1 for several.",
)
@click.option("--batch-size", type=click.IntRange(1), help="Reports per backend call (default: the backend's).")
@click.option("--max-attempts", type=click.IntRange(1), default=3, show_default=True)
@click.option("--max-chars", type=click.IntRange(1), default=50_000, show_default=True)
@click.option("--bootstrap", type=click.IntRange(100), default=2000, show_default=True, help="Bootstrap resamples.")
@click.option("--allow-remote", is_flag=True, help="Allow a server outside loopback and private networks.")
@click.option("--no-progress", is_flag=True, help="No progress bars.")
def compare(
    task,
    reports,
    gold,
    outdir,
    backends,
    model,
    options,
    prompts,
    prompt_file,
    id_col,
    text_col,
    gold_col,
    gold_format,
    uncertain,
    rank_by,
    batch_size,
    max_attempts,
    max_chars,
    bootstrap,
    allow_remote,
    no_progress,
) -> None:
    """Label the reports of REPORTS that GOLD labels with every backend × prompt variant; rank them.

    Each combination labels into its own folder OUTDIR/<combination>/ (a store: a rerun asks the
    backends only for what is not stored). Writes OUTDIR/compare.json, compare.csv and each
    combination's disagreements.csv. REPORTS and GOLD may be the same table.
    """
    shared = parse_options(options)
    if model:
        shared["model"] = model
    report = run_compare(
        task,
        reports,
        gold,
        outdir,
        backends=backends or ("rules",),
        options=shared,
        prompts=prompts or None,
        prompt_file=prompt_file,
        id_col=id_col,
        text_col=text_col,
        gold_col=gold_col,
        gold_format=gold_format,
        uncertain=uncertain,
        rank_by=rank_by,
        batch_size=batch_size,
        max_attempts=max_attempts,
        max_chars=max_chars,
        allow_remote=allow_remote,
        n_boot=bootstrap,
        show_progress=not no_progress,
        announce=lambda message: console.rule(message, align="left"),
    )
    print_report(report)
    if any(c.failed for c in report.combinations):
        console.print("some reports failed (see each labels.csv); rerun the same command to try them again")
        click.get_current_context().exit(EXIT_PARTIAL)
