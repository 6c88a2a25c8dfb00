"""``r2l review``: the label workbench page and Label Studio files; ``--import`` brings corrections back as gold."""

from __future__ import annotations

from pathlib import Path

import click

from report2label.cli.options import console, gold_format_option


@click.command(short_help="Review labels: a web page, Label Studio files; gold back.")
@click.argument("outdir", required=False, type=click.Path(path_type=Path))
@click.option("--reports", type=click.Path(path_type=Path), help="The reports OUTDIR was labelled from.")
@click.option("--id-col", default="report_id", show_default=True, help="Report id column of --reports.")
@click.option("--text-col", default="text", show_default=True, help="Report text column of --reports.")
@click.option("--gold", type=click.Path(path_type=Path), help="Gold table: mark the rows that disagree with it.")
@click.option("--gold-id-col", default="report_id", show_default=True, help="Report id column of --gold.")
@gold_format_option
@click.option("--against", type=click.Path(path_type=Path), help="A second run's labels.csv: mark disagreements.")
@click.option(
    "--low",
    type=click.FloatRange(0, 1, min_open=True),
    default=0.6,
    show_default=True,
    help="Confidence below which a label counts as low.",
)
@click.option(
    "--import", "export", type=click.Path(path_type=Path), help="A Label Studio JSON export to turn into gold."
)
@click.option("--task", help="With --import: the task (default: the one the exported tasks name).")
@click.option("-o", "--output", type=click.Path(path_type=Path), help="Where to write (default: OUTDIR; gold.csv).")
def review(
    outdir, reports, id_col, text_col, gold, gold_id_col, gold_format, against, low, export, task, output
) -> None:
    """Write OUTDIR/review.html (one card per report, evidence highlighted, filters, keys j/k) and
    the Label Studio import files OUTDIR/label_studio_tasks.json and label_studio_config.xml.

    With --import EXPORT.json: turn a Label Studio export of those tasks into a gold table
    (report_id, gold_<label>) for `r2l eval-labels` and `r2l compare`.
    """
    from report2label.core.labelling.review import import_export
    from report2label.core.labelling.review import review as run_review

    if export is not None:
        if outdir is not None or reports is not None:
            raise click.UsageError("--import takes no OUTDIR or --reports; give -o GOLD.csv")
        summary = import_export(export, output or export.with_name("gold.csv"), task)
        skipped = f"; {summary.skipped} without a finished annotation skipped" if summary.skipped else ""
        console.print(f"gold for {summary.reports} reports of task {summary.task}{skipped}: {summary.gold}")
        return
    if outdir is None or reports is None:
        raise click.UsageError("give OUTDIR and --reports (or --import EXPORT.json)")
    result = run_review(
        outdir,
        reports,
        id_col=id_col,
        text_col=text_col,
        gold=gold,
        gold_id_col=gold_id_col,
        gold_format=gold_format,
        other=against,
        low=low,
        to=output,
    )
    console.print(
        f"{result.cards} reports: {result.failed} failed, {result.low} with a label of confidence < {low:g}, "
        f"{result.disagreeing} disagreeing"
        + (f"; {result.changed} changed since labelling (evidence not shown)" if result.changed else "")
    )
    console.print(f"review page: {result.page}\nLabel Studio: {result.tasks} (labelling config: {result.config})")
