"""``r2l describe``: a report per image from a vision-language server, for images without reports."""

from pathlib import Path

import click

from report2label.cli.options import console, parse_options
from report2label.core.describe import DEFAULT_INSTRUCTIONS
from report2label.core.errors import EXIT_PARTIAL


@click.command(short_help="Write a report per image with a vision-language model.")
@click.argument("images", type=click.Path(path_type=Path))
@click.option("-o", "--outdir", type=click.Path(path_type=Path), required=True, help="Output folder (resumable).")
@click.option("--backend", default="openai-vision", show_default=True, help="Describing backend.")
@click.option("--model", help="Model the server serves (default: its only one).")
@click.option("-O", "--option", "options", multiple=True, metavar="KEY=VALUE", help="Backend option, repeatable.")
@click.option("--image-col", default="image", show_default=True, help="Image path column (relative to IMAGES).")
@click.option("--id-col", help="Image id column, the report_id of the reports (default: the image path).")
@click.option(
    "--instructions", help="The text asked with each image (default: a radiologist's report, findings and impression)."
)
@click.option("--allow-remote", is_flag=True, help="Allow a server outside loopback and private networks.")
@click.option("--no-progress", is_flag=True)
def describe(
    images, outdir, backend, model, options, image_col, id_col, instructions, allow_remote, no_progress
) -> None:
    """Ask a vision-language model for a report per image of IMAGES; write OUTDIR/reports.csv.

    Each report is stored in OUTDIR/reports.sqlite as it arrives; a rerun asks only for images
    without one. Then label the reports: `r2l label TASK OUTDIR/reports.csv -o LABELS`.
    """
    from report2label.core.describe import describe as run_describe

    opts = parse_options(options)
    if model:
        opts["model"] = model
    if allow_remote:
        opts["allow_remote"] = True
    summary = run_describe(
        images,
        outdir,
        backend=backend,
        options=opts,
        instructions=instructions or DEFAULT_INSTRUCTIONS,
        image_col=image_col,
        id_col=id_col,
        show_progress=not no_progress,
    )
    console.print(
        f"[bold]{summary.total}[/] images: [green]{summary.described} described[/], [red]{summary.failed} failed[/]; "
        f"{summary.reused} already stored, {summary.asked} asked in {summary.seconds:.1f} s"
    )
    for reason, n in summary.failure_reasons.items():
        console.print(f"[red]failed[/] ({n}): {reason}")
    console.print(f"reports: {summary.output}")
    if summary.failed:
        console.print("rerun the same command to ask for the failed images again")
        click.get_current_context().exit(EXIT_PARTIAL)
