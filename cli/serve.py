"""``r2l serve``: a web page and a REST API for exported models (ONNX Runtime, no PyTorch)."""

from __future__ import annotations

from pathlib import Path

import click

from report2label.cli.options import console


@click.command(short_help="Serve ONNX models: a web page and a REST API (no PyTorch).")
@click.argument("models", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind; others get a warning.")
@click.option("--port", type=click.IntRange(0, 65535), default=7860, show_default=True)
@click.option(
    "--max-upload-mb",
    type=click.FloatRange(0, min_open=True),
    default=50,
    show_default=True,
    help="Largest file accepted, in MB.",
)
@click.option("--max-files", type=click.IntRange(1), default=16, show_default=True, help="Files per request.")
@click.option(
    "--batch-window-ms",
    type=click.FloatRange(0),
    default=2.0,
    show_default=True,
    help="How long a batch waits for concurrent requests.",
)
@click.option("--max-batch", type=click.IntRange(1), default=32, show_default=True, help="Images per ONNX call.")
@click.option("--threads", type=click.IntRange(1), help="ONNX Runtime intra-op threads (default: all CPUs).")
def serve(models, host, port, max_upload_mb, max_files, batch_window_ms, max_batch, threads) -> None:
    """Serve MODELS (exported .onnx files) on one port: the page at /, the API under /v1, docs at /docs.

    Each model's id is its file name without .onnx; with several, each has /v1/models/<id>/predict.
    Uploads are never kept: each is read from memory or a temporary file removed at once.
    """
    from report2label.core.serve import Limits, network_warning
    from report2label.core.serve import serve as run_serve

    warning = network_warning(host)
    if warning:
        console.print(f"[yellow]warning:[/] {warning}")
    limits = Limits(max_bytes=int(max_upload_mb * 2**20), max_files=max_files)
    run_serve(
        list(models),
        host=host,
        port=port,
        limits=limits,
        threads=threads,
        batch_window_ms=batch_window_ms,
        max_batch=max_batch,
        announce=console.print,
    )
