"""``r2l``: thin click commands over the report2label Python API."""

from __future__ import annotations

import json
import logging
import os
import re
from importlib.metadata import version
from pathlib import Path
from typing import Any

import click
from rich.table import Table

from report2label.cli.compare import compare
from report2label.cli.describe import describe
from report2label.cli.engine_options import engine_options
from report2label.cli.finetune import finetune
from report2label.cli.new_plugin import new_plugin
from report2label.cli.options import (
    TableSource,
    console,
    estimate_cell,
    gold_format_option,
    parse_options,
    uncertain_metrics_option,
)
from report2label.cli.review import review
from report2label.cli.serve import serve
from report2label.cli.text_eval import print_text_agreement
from report2label.core import registry
from report2label.core.errors import EXIT_ERROR, EXIT_PARTIAL, R2LError
from report2label.core.labelling import label as run_label
from report2label.core.labelling.agreement import eval_labels as run_eval_labels
from report2label.core.labelling.text_metrics import TextAgreement
from report2label.core.plugins import plugin_infos
from report2label.core.task import UNCERTAIN_POLICIES

#: Modules only an optional extra installs, and that extra.
EXTRAS = dict.fromkeys(("torch", "torchvision", "timm", "onnx", "onnxscript", "matplotlib", "sklearn"), "train")
EXTRAS.update(dict.fromkeys(("fastapi", "uvicorn", "gradio", "multipart", "python_multipart"), "serve"))


def _error(message: str, exit_code: int) -> click.ClickException:
    error = click.ClickException(message)
    error.exit_code = exit_code
    return error


class Group(click.Group):
    """Commands in the order of the flow; an :class:`R2LError` becomes ``Error: <message>`` and its exit code."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except R2LError as exc:
            raise _error(str(exc), exc.exit_code) from None
        except ModuleNotFoundError as exc:
            extra = EXTRAS.get((exc.name or "").partition(".")[0])
            if extra is None:
                raise
            command = ctx.invoked_subcommand or "this command"
            raise _error(
                f"r2l {command} needs {exc.name}, which the base install leaves out; "
                f"install it with: pip install 'report2label[{extra}]'",
                EXIT_ERROR,
            ) from None


def _parse_shard(value: str | None) -> tuple[int, int] | None:
    if value is None:
        return None
    match = re.fullmatch(r"(\d+)/(\d+)", value)
    if not match:
        raise click.BadParameter(f"{value!r} is not K/N", param_hint="--shard")
    return int(match.group(1)), int(match.group(2))


@click.group(cls=Group)
@click.version_option(version("report2label"), prog_name="r2l")
@click.option("-v", "--verbose", count=True, help="More log output (-vv: debug, may include model answers).")
def cli(verbose: int) -> None:
    """report2label: radiology reports in, validated labels, a trained model and an ONNX file out."""
    level = {0: logging.WARNING, 1: logging.INFO}.get(verbose, logging.DEBUG)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")


cli.add_command(describe)  # first: images without reports → generated reports, which label reads


@cli.command(short_help="Label reports with rules or an LLM (resumable).")
@click.argument("task")
@click.argument("reports", type=TableSource())
@click.option("-o", "--outdir", type=click.Path(path_type=Path), required=True, help="Output folder (resumable).")
@click.option("--backend", default="rules", show_default=True, help="Labelling backend (see `r2l tasks`).")
@click.option("--model", help="Model for the backend (a GGUF path, a model name).")
@click.option("-O", "--option", "options", multiple=True, metavar="KEY=VALUE", help="Backend option, repeatable.")
@click.option("--prompt", help="Prompt variant, built in or from --prompt-file (default: the task's first).")
@click.option("--prompt-file", type=click.Path(path_type=Path), help="TOML file of further prompt variants.")
@click.option("--id-col", default="report_id", show_default=True)
@click.option("--text-col", default="text", show_default=True)
@click.option("--batch-size", type=click.IntRange(1), help="Reports per backend call (default: the backend's).")
@click.option(
    "--max-attempts",
    type=click.IntRange(1),
    default=3,
    show_default=True,
    help="Attempts per report, the corrective re-asks included.",
)
@click.option(
    "--max-chars",
    type=click.IntRange(1),
    default=50_000,
    show_default=True,
    help="Longer reports are recorded as failed, not sent.",
)
@click.option("--parquet", is_flag=True, help="Also write labels.parquet.")
@click.option("--allow-remote", is_flag=True, help="Allow a server outside loopback and private networks.")
@click.option("--shard", metavar="K/N", help="Label only the K-th of N shares (N processes, one store).")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
@click.option("--plan", "show_plan", is_flag=True, help="Show the requests and their size; store and send nothing.")
@click.option(
    "--probe", type=click.IntRange(0), default=0, help="With --plan: time N real backend requests (not stored)."
)
@click.option("--evidence", is_flag=True, help="Ask for a verbatim quote per label (prompt variant '<name>+evidence').")
@click.option(
    "--samples",
    type=click.IntRange(2),
    help="LLM backends: K answers per report; confidence is their agreement (-O sample_temperature=0.7).",
)
@engine_options
def label(
    task,
    reports,
    outdir,
    backend,
    model,
    options,
    prompt,
    prompt_file,
    id_col,
    text_col,
    batch_size,
    max_attempts,
    max_chars,
    parquet,
    allow_remote,
    shard,
    no_progress,
    show_plan,
    probe,
    evidence,
    samples,
    engine,
) -> None:
    """Label every report of REPORTS (CSV, TSV, Parquet or JSONL; a file or a store URL such as
    s3://bucket/reports.parquet) for TASK into OUTDIR/labels.csv.

    Results are stored in OUTDIR/labels.sqlite as they arrive; a rerun resumes and asks the
    backend only for reports without a stored label (failed ones are tried again).
    """
    opts = parse_options(options)
    if model:
        opts["model"] = model
    if allow_remote:
        opts["allow_remote"] = True
    if samples:
        opts["samples"] = samples
    if probe and not show_plan:
        raise click.UsageError("--probe needs --plan")
    if show_plan and engine[0] != "local":
        raise click.UsageError("--plan plans the local engine; leave out --engine")
    if allow_remote and engine[0] != "local":
        engine[1]["allow_remote"] = True
    common = {
        "backend": backend,
        "options": opts,
        "prompt": prompt,
        "prompt_file": prompt_file,
        "id_col": id_col,
        "text_col": text_col,
        "max_attempts": max_attempts,
        "max_chars": max_chars,
        "shard": _parse_shard(shard),
        "evidence": evidence,
    }
    if show_plan:
        from report2label.core.labelling.plan import plan

        _print_plan(plan(task, reports, outdir, probe=probe, **common))
        return
    summary = run_label(
        task,
        reports,
        outdir,
        batch_size=batch_size,
        parquet=parquet,
        show_progress=not no_progress,
        engine=engine[0],
        engine_options=engine[1],
        **common,
    )
    counts = "; ".join(
        f"{name}: " + ", ".join(f"{k}={v}" for k, v in c.items()) for name, c in summary.label_counts.items() if c
    )
    console.print(
        f"[bold]{summary.total}[/] reports: [green]{summary.labelled} labelled[/], "
        f"[red]{summary.failed} failed[/]; {summary.reused} already stored, {summary.asked} asked "
        f"({summary.backend_calls} backend calls) in {summary.seconds:.1f} s "
        f"= {summary.reports_per_second:.1f} reports/s"
    )
    if counts:
        console.print(f"label counts: {counts}")
    for reason, n in summary.failure_reasons.items():
        console.print(f"[red]failed[/] ({n}): {reason}")
    console.print(f"labels: {summary.output}" if summary.output else "shard done; run without --shard for labels.csv")
    if summary.failed:
        console.print("rerun the same command to try the failed reports again")
        click.get_current_context().exit(EXIT_PARTIAL)


def _print_plan(p) -> None:
    """Print a :class:`~report2label.core.labelling.plan.Plan`; report texts are printed without markup."""
    console.print(f"[bold]plan[/] (nothing stored): task {p.task}, backend {p.backend}, model {p.model!r}")
    console.print(
        f"{p.total} reports: {p.stored} already stored, {p.prechecked_failures} failing before any request "
        f"(empty or too long), {p.requests} to ask"
    )
    if p.first_report_id is not None and p.messages:
        console.print(f"messages for the first pending report ({p.first_report_id}):")
        for message in p.messages:
            console.print(f"--- {message['role']}", style="bold", markup=False, highlight=False)
            console.print(message["content"], markup=False, highlight=False, soft_wrap=True)
    if p.tokens:
        kind = "exact, the model's tokenizer" if p.tokens_exact else "estimate, bytes/4"
        console.print(
            f"prompt tokens per request ({kind}): first {p.tokens[0]}, min {min(p.tokens)}, "
            f"mean {sum(p.tokens) / len(p.tokens):.0f}, max {max(p.tokens)}, total {sum(p.tokens)}"
        )
    console.print(
        f"requests: {p.requests}; at most {p.max_requests} attempts ({p.requests} × max_attempts {p.max_attempts})"
    )
    budget = p.max_tokens if p.max_tokens is not None else "not set by this backend"
    console.print(f"answer budget (max_tokens): {budget}")
    if p.remote_host:
        console.print(f"[red]{p.remote_chars} report characters would leave this machine[/] (to {p.remote_host})")
    if p.probe:
        q = p.probe
        console.print(
            f"probe: {q.requests} real requests (not stored) in {q.seconds:.2f} s after {q.setup_seconds:.2f} s setup, "
            f"{q.valid} valid answers; estimated total: {q.estimated_seconds:.0f} s for {p.requests} requests"
        )


@cli.command("eval-labels", short_help="Measure labels against gold labels, with 95% CIs.")
@click.argument("labels", type=click.Path(path_type=Path))
@click.argument("gold", type=click.Path(path_type=Path))
@click.option("--id-col", default="report_id", show_default=True, help="Report id column of GOLD.")
@click.option(
    "--gold-col",
    help="Gold column of a one-label task (default: gold_<label>, <label>_gold or <label>, "
    "case, spaces and hyphens aside).",
)
@click.option("--text-col", default="text", show_default=True, help="Report text in GOLD, copied to disagreements.")
@uncertain_metrics_option
@gold_format_option
@click.option("-o", "--outdir", type=click.Path(path_type=Path), help="Where to write (default: beside LABELS).")
def eval_labels(labels, gold, id_col, gold_col, text_col, uncertain, gold_format, outdir) -> None:
    """Compare LABELS (from `r2l label`) with gold labels in GOLD, with 95% confidence intervals."""
    report = run_eval_labels(
        labels,
        gold,
        id_col=id_col,
        gold_col=gold_col,
        text_col=text_col,
        outdir=outdir,
        uncertain=uncertain,
        gold_format=gold_format,
    )
    if isinstance(report, TextAgreement):  # a free-text task: ROUGE and BLEU
        print_text_agreement(report)
        return

    if len(report.labels) == 1 and report.labels[0].states is None:
        result = report.labels[0]
        table = Table("metric", "value", "95% CI", title=f"{report.task}: {result.label} vs {result.gold_column}")
        for name, est in result.metrics.items():
            table.add_row(name, f"{est.value:.3f}", f"{est.low:.3f} – {est.high:.3f}")
        console.print(table)
        c = result.confusion
        console.print(f"confusion (gold × label): TN={c.tn} FP={c.fp} FN={c.fn} TP={c.tp}")
    else:
        names = ("ppv", "sensitivity", "specificity", "f1", "accuracy", "kappa")
        table = Table(
            "label",
            "n",
            "TP/FP/FN/TN",
            "precision",
            "recall",
            "specificity",
            "F1",
            "accuracy",
            "kappa",
            title=f"{report.task}: labels vs gold, 0/1 (uncertain → {report.uncertain}); value and 95% CI",
        )
        for result in report.labels:
            c = result.confusion
            counts = f"{c.tp}/{c.fp}/{c.fn}/{c.tn}"
            table.add_row(result.label, str(c.n), counts, *(estimate_cell(result.metrics[name]) for name in names))
        console.print(table)
        averages = Table("average", "precision", "recall", "F1", title="over labels; 95% CI: bootstrap over reports")
        for kind, values in report.averages.items():
            averages.add_row(kind, *(estimate_cell(values[name]) for name in ("precision", "recall", "f1")))
        console.print(averages)
        with_states = [r for r in report.labels if r.states is not None]
        if with_states:
            short = {"positive": "pos", "negative": "neg", "uncertain": "unc", "not_mentioned": "n/m"}
            states = Table("label", "n", "agreement", "kappa", "mismatches (gold→label)", title="four states")
            for result in with_states:
                mismatches = ", ".join(f"{short[g]}→{short[p]} {n}" for g, p, n in result.states.mismatches())
                metrics = result.state_metrics
                agreement, kappa = estimate_cell(metrics["accuracy"]), estimate_cell(metrics["kappa"])
                states.add_row(result.label, str(result.states.n), agreement, kappa, mismatches)
            console.print(states)
        renamed = [f"{r.label} ← {r.gold_column}" for r in report.labels if r.gold_column != r.label]
        if renamed:
            console.print("gold columns: " + ", ".join(renamed))
        dropped = [f"{r.label} {r.dropped}" for r in report.labels if r.dropped]
        if dropped:
            console.print("left out as uncertain (--uncertain ignore): " + ", ".join(dropped))
    if report.skipped:
        console.print(f"skipped, no gold column: {', '.join(report.skipped)}")
    console.print(
        f"compared {report.compared} reports; {report.failed} failed and {report.missing} unlabelled excluded"
    )
    console.print(f"disagreements: {report.disagreements}\nmetrics: {report.summary}")


cli.add_command(compare)  # here: after eval-labels in the flow order of `r2l --help`
cli.add_command(review)  # after compare: look at the labels, correct them, bring gold back
cli.add_command(finetune)  # label-side: labels → a fine-tuned local labeller


@cli.command(short_help="Join labels to images; split them by patient.")
@click.argument("task")
@click.option("--labels", type=click.Path(path_type=Path), required=True, help="labels.csv from r2l label.")
@click.option("--images", type=click.Path(path_type=Path), required=True, help="Table: image, report_id, patient_id.")
@click.option("-o", "--outdir", type=click.Path(path_type=Path), required=True)
@click.option("--val-fraction", type=float, default=0.15, show_default=True)
@click.option("--test-fraction", type=float, default=0.15, show_default=True)
@click.option("--balance/--no-balance", default=None, help="Under-sample validation and test (default: the recipe's).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--skip-missing", is_flag=True, help="Drop images whose file does not exist (counted).")
@click.option("--force", is_flag=True, help="Overwrite a data set in OUTDIR.")
@click.option(
    "--uncertain",
    type=click.Choice(UNCERTAIN_POLICIES),
    default="ones",
    show_default=True,
    help="An uncertain finding's training target: 1 (ones, CheXpert's U-Ones), 0 (zeros), "
    "or none (ignore: masked in loss and metrics).",
)
def dataset(
    task, labels, images, outdir, val_fraction, test_fraction, balance, seed, skip_missing, force, uncertain
) -> None:
    """Join labels to images and split by patient into train/val/test CSVs (the study's format)."""
    from report2label.core.data.dataset import build_dataset

    summary = build_dataset(
        task,
        labels,
        images,
        outdir,
        val_fraction=val_fraction,
        test_fraction=test_fraction,
        balance=balance,
        seed=seed,
        skip_missing=skip_missing,
        force=force,
        uncertain=uncertain,
    )
    console.print(_counts_table(summary.counts))
    for warning in summary.warnings:
        console.print(f"[yellow]warning:[/] {warning}")
    console.print("dropped: " + ", ".join(f"{k}={v}" for k, v in summary.dropped.items()))
    console.print(f"data set: {summary.directory}")


@cli.command(short_help="Train the task's image model on a data set.")
@click.argument("task")
@click.argument("dataset_dir", type=click.Path(path_type=Path))
@click.option("-o", "--rundir", type=click.Path(path_type=Path), required=True)
@click.option(
    "--device", "trainer", default="cpu", show_default=True, help="Training backend: cpu, cuda, cuda-compile."
)
@click.option("--epochs", type=click.IntRange(1))
@click.option("--image-size", type=click.IntRange(16))
@click.option("--batch-size", type=click.IntRange(1))
@click.option("--lr", type=float, help="Initial learning rate (OneCycle starts here).")
@click.option("--pretrained", type=click.Path(path_type=Path), help="Local weights file (never downloaded).")
@click.option("--resume", is_flag=True, help="Continue from RUNDIR/last.pt.")
@click.option("--force", is_flag=True, help="Start over in a RUNDIR that holds a run.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--no-progress", is_flag=True)
def train(
    task, dataset_dir, rundir, trainer, epochs, image_size, batch_size, lr, pretrained, resume, force, seed, no_progress
) -> None:
    """Train TASK's image model (its recipe, with overrides) on DATASET_DIR into RUNDIR.

    Under torchrun, trains with DDP (one process per device).
    """
    from report2label.core.training.loop import train as run_train

    summary = run_train(
        task,
        dataset_dir,
        rundir,
        trainer=trainer,
        epochs=epochs,
        image_size=image_size,
        batch_size=batch_size,
        lr=lr,
        pretrained=pretrained,
        resume=resume,
        force=force,
        seed=seed,
        show_progress=not no_progress,
    )
    if int(os.environ.get("RANK", "0")) == 0:
        resumed = f" (resumed after epoch {summary.resumed_from})" if summary.resumed_from else ""
        console.print(
            f"trained {summary.epochs} epochs{resumed} in {summary.seconds:.0f} s; best epoch {summary.best_epoch} "
            f"(val {summary.metric} {summary.best_value:.3f}); run: {summary.rundir}"
        )
        if summary.world_size > 1:
            console.print(
                f"{summary.world_size} processes agree on the final weights (sha256 {summary.weights_sha256[:16]})"
            )


@cli.command(short_help="Test metrics with 95% CIs and a ROC curve.")
@click.argument("rundir", type=click.Path(path_type=Path))
@click.option("--split", default="test", show_default=True)
@click.option("--bootstrap", type=click.IntRange(100), default=1000, show_default=True, help="Bootstrap resamples.")
def evaluate(rundir, split, bootstrap) -> None:
    """Evaluate RUNDIR's best checkpoint on a split, with bootstrap 95% confidence intervals."""
    from report2label.core.evaluate import evaluate as run_evaluate

    result = run_evaluate(rundir, split, n_boot=bootstrap)
    if len(result.labels) > 1:
        _print_label_table(result)
    for label_result in result.labels if len(result.labels) == 1 else ():
        table = Table(
            "metric",
            "value",
            "95% CI",
            title=f"{label_result.label} on {split} ({result.images} images), threshold {label_result.threshold:.3f}",
        )
        for name, est in label_result.metrics.items():
            table.add_row(name, f"{est.value:.3f}", f"{est.low:.3f} – {est.high:.3f}")
        console.print(table)
        c = label_result.confusion
        console.print(f"confusion: TN={c.tn} FP={c.fp} FN={c.fn} TP={c.tp}")
    for warning in result.warnings:
        console.print(f"[yellow]warning:[/] {warning}")
    if result.skipped:
        console.print(f"[yellow]{result.skipped} unreadable images skipped[/]")
    console.print(f"metrics: {result.metrics_path}\nROC curve: {result.roc_path}")


def _counts_table(counts: dict[str, dict[str, int]]) -> Table:
    """Images and patients per split, then per label column its classes (one row per label if several)."""
    keys = (key.partition("=")[0] for split in counts.values() for key in split)
    columns = [key for key in dict.fromkeys(keys) if key not in ("images", "patients")]
    if len(columns) <= 1:
        table = Table("split", *next(iter(counts.values())).keys())
        for split, values in counts.items():
            table.add_row(split, *map(str, values.values()))
        return table
    table = Table("label", *(f"{split} 0/1/masked" for split in counts), title="images per class and split")
    table.add_row("(images, patients)", *(f"{v['images']}, {v['patients']}" for v in counts.values()))
    for column in columns:
        classes = [[v.get(f"{column}={c}", 0) for c in ("0", "1", "masked")] for v in counts.values()]
        table.add_row(column, *("/".join(map(str, cell)) for cell in classes))
    return table


def _print_label_table(result) -> None:
    """One row per label with the main metrics and intervals, then macro and micro AUC."""
    names = ("auc", "sensitivity", "specificity", "f1", "mcc")
    table = Table("label", "n (masked)", "threshold", *names, title=f"{result.split} ({result.images} images)")
    for r in result.labels:
        cells = []
        for name in names:
            est = r.metrics.get(name)
            defined = est is not None and est.value == est.value
            cells.append(f"{est.value:.3f} ({est.low:.2f}–{est.high:.2f})" if defined else "–")
        table.add_row(r.label, f"{r.n} ({r.masked})", f"{r.threshold:.3f}", *cells)
    console.print(table)
    for name, est in result.summary.items():
        console.print(f"{name}: {est.value:.3f} (95% CI {est.low:.3f} – {est.high:.3f})")


@cli.command(short_help="Export to ONNX behind a parity gate, with a model card.")
@click.argument("rundir", type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True, help="The ONNX file to write.")
@click.option("--quantize", is_flag=True, help="Also write a static int8 (QDQ) model, calibrated on training images.")
@click.option("--atol", type=float, default=1e-4, show_default=True, help="Parity gate: max |Δ probability|.")
def export(rundir, output, quantize, atol) -> None:
    """Export RUNDIR's best checkpoint to ONNX after a parity gate; write MODEL.md beside it."""
    from report2label.core.export import export as run_export

    summary = run_export(rundir, output, quantize=quantize, atol=atol)
    p = summary.parity
    console.print(
        f"parity on {p.images} test images: max |Δp| = {p.max_abs_diff:.2e}, {p.decisions_differ} decisions differ"
    )
    if summary.quantized:
        q = summary.quantized
        console.print(
            f"int8: {q.path} — decisions agree on {q.agreement:.1%}, max |Δp| {q.max_abs_diff:.3f}, "
            f"batch-1 latency {q.int8_ms:.1f} ms vs {q.float_ms:.1f} ms float"
        )
    console.print(f"model: {summary.path}\nmodel card: {summary.card}")


@cli.command(short_help="Predict images with an ONNX model (no PyTorch).")
@click.argument("model", type=click.Path(path_type=Path))
@click.argument("inputs", nargs=-1, required=True)
@click.option("-o", "--output", type=click.Path(path_type=Path), help="CSV to write (default: print CSV).")
@click.option("--batch-size", type=click.IntRange(1), default=16, show_default=True)
def predict(model, inputs, output, batch_size) -> None:
    """Predict with an exported MODEL.onnx on INPUTS: image files, folders, or a CSV of paths.

    Runs on ONNX Runtime alone (no PyTorch); preprocessing comes from the model's metadata.
    """
    from report2label.core.predict import predict as run_predict

    table = run_predict(model, list(inputs), output, batch_size=batch_size)
    failed = int((table["error"].fillna("") != "").sum())
    if output is None:
        click.echo(table.to_csv(index=False), nl=False)
    else:
        console.print(f"{len(table) - failed} images predicted, {failed} unreadable; predictions: {output}")
    if failed:
        for message in table.loc[table["error"].fillna("") != "", "error"].head(5):
            click.echo(f"unreadable: {message}", err=True)
        click.get_current_context().exit(EXIT_PARTIAL)


cli.add_command(serve)  # right after predict: serving is predicting for others


@cli.command("run", short_help="Run the whole study from one TOML file (resumable).")
@click.argument("pipeline", type=click.Path(path_type=Path))
@click.option("--no-progress", is_flag=True)
def run_command(pipeline, no_progress) -> None:
    """Run the whole study described by PIPELINE (TOML): label → dataset → train → evaluate → export.

    Steps whose outputs are complete and up to date are skipped; an interrupted run resumes.
    Exits with 3 when some reports failed labelling (the rest went on).
    """
    from report2label.core.pipeline import run_pipeline

    summary = run_pipeline(pipeline, show_progress=not no_progress, announce=lambda m: console.rule(m))
    table = Table("step", "result", title="pipeline summary")
    for step, result in summary.steps.items():
        table.add_row(step, result)
    console.print(table)
    if summary.label_accuracy:
        console.print("label accuracy vs gold: " + ", ".join(f"{k} {v:.3f}" for k, v in summary.label_accuracy.items()))
    console.print("test ROC-AUC: " + ", ".join(f"{k} {v:.3f}" for k, v in (summary.test_auc or {}).items()))
    console.print(f"ONNX model: {summary.model}\nmodel card: {summary.card}")
    if summary.failed:
        console.print(f"[red]{summary.failed} reports failed labelling[/]; rerun to try them again")
        click.get_current_context().exit(EXIT_PARTIAL)


@cli.command(short_help="Write a synthetic example study.")
@click.argument("name")
@click.argument("directory", type=click.Path(path_type=Path))
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--n-reports", type=click.IntRange(1), default=200, show_default=True)
@click.option("--image-size", type=click.IntRange(64), default=256, show_default=True)
@click.option("--force", is_flag=True, help="Write into a folder that is not empty.")
def example(name, directory, seed, n_reports, image_size, force) -> None:
    """Write the synthetic example data set of task NAME into DIRECTORY.

    A folder that holds an earlier example (it has r2l-example.json) is rewritten; any other
    non-empty folder needs --force.
    """
    writer = registry.example(name)
    marker = directory / "r2l-example.json"
    if directory.exists() and any(directory.iterdir()) and not marker.exists() and not force:
        raise R2LError(f"{directory}: folder is not empty; choose another or pass --force")
    counts = writer(directory, seed=seed, n_reports=n_reports, image_size=image_size)
    settings = {"task": name, "seed": seed, "n_reports": n_reports, "image_size": image_size, "counts": counts}
    marker.write_text(json.dumps(settings, indent=2))
    console.print(f"SYNTHETIC example written to {directory}: " + ", ".join(f"{v} {k}" for k, v in counts.items()))


@cli.command(short_help="List installed plugins and their hooks.")
def plugins() -> None:
    """List installed plugins, their versions and the hooks they implement."""
    table = Table("plugin", "package", "version", "hooks")
    for info in plugin_infos():
        table.add_row(info.name, info.package, info.version, ", ".join(info.hooks))
    console.print(table)


@cli.command(short_help="List tasks, their labels and prompt variants.")
@click.argument("name", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print the full task spec (prompts, schema, rules) as JSON.")
def tasks(name: str | None, as_json: bool) -> None:
    """List tasks with version, labels, languages and prompt variants."""
    specs = [registry.task(name)] if name else list(registry.tasks().values())
    if as_json:
        click.echo(json.dumps([spec.model_dump(mode="json") for spec in specs], indent=2, ensure_ascii=False))
        return
    table = Table("task", "version", "labels", "languages", "prompt variants (hash)", "rules", "recipe")
    for spec in specs:
        prompts = "\n".join(f"{p.name} ({p.hash})" for p in spec.prompts)
        recipe = f"{spec.recipe.architecture} {spec.recipe.image_size}px" if spec.recipe else "-"
        table.add_row(
            spec.name,
            spec.version,
            ", ".join(spec.labels),
            ", ".join(spec.languages),
            prompts,
            "yes" if spec.rules else "no",
            recipe,
        )
    console.print(table)
    labelers = registry.labelers()
    console.print("labelling backends: " + ", ".join(sorted(labelers)))
    console.print("labelling engines (r2l label --engine): " + ", ".join(sorted(registry.engines())))
    console.print("describing backends (r2l describe): " + ", ".join(sorted(registry.describers())))


cli.add_command(new_plugin)  # last: writing a plugin comes after using the installed ones
