"""One process, one port: the Gradio page at ``/``, the REST API under ``/v1``, OpenAPI docs at ``/docs``."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from contextlib import asynccontextmanager
from pathlib import Path

from ..privacy import is_loopback_host
from .models import Limits, ServedModel, load_models

#: Gradio sends nothing anywhere: no analytics, no version check, no Hugging Face Hub.
OFFLINE = {"GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1"}


def network_warning(host: str) -> str | None:
    """The warning for a server reachable from other machines; None on loopback."""
    if is_loopback_host(host):
        return None
    return (
        f"serving on {host}, not on loopback: images (patient data) will be accepted from the network; "
        "make sure only permitted machines can reach this port"
    )


def build_app(models: list[ServedModel], limits: Limits):
    """The FastAPI app with the API routes and the Gradio page mounted at ``/``."""
    import gradio as gr
    from fastapi import FastAPI

    from .api import api_router, limit_body
    from .page import CSS, build_page

    @asynccontextmanager
    async def lifespan(app):
        yield
        for served in models:
            served.batcher.close()

    app = FastAPI(
        title="report2label serve",
        summary="Image model predictions. Not for diagnostic use.",
        version="1",
        lifespan=lifespan,
    )
    app.middleware("http")(lambda request, call_next: limit_body(request, call_next, limits))
    app.include_router(api_router(models, limits))
    return gr.mount_gradio_app(
        app,
        build_page(models, limits),
        path="/",
        max_file_size=limits.max_bytes,
        footer_links=[],
        ssr_mode=False,
        css=CSS,
        mcp_server=False,
    )


def serve(
    model_paths: list[Path],
    *,
    host: str = "127.0.0.1",
    port: int = 7860,
    limits: Limits | None = None,
    threads: int | None = None,
    batch_window_ms: float = 2.0,
    max_batch: int = 32,
    announce: Callable[[str], None] = print,
) -> None:
    """Serve the models until interrupted; Gradio's uploads go to a private folder removed at the end."""
    import uvicorn

    threads = threads or len(os.sched_getaffinity(0))  # one ONNX Runtime call at a time gets every core
    models = load_models(model_paths, threads=threads, window_s=batch_window_ms / 1000, max_batch=max_batch)
    announce(f"serving {', '.join(m.id for m in models)} on http://{host}:{port}/ (API /v1, docs /docs); Ctrl-C stops")
    uploads = tempfile.mkdtemp(prefix="r2l-serve-")
    os.environ.update(OFFLINE, GRADIO_TEMP_DIR=uploads)  # read when gradio is imported
    try:
        uvicorn.run(build_app(models, limits or Limits()), host=host, port=port, log_level="warning")
    finally:
        shutil.rmtree(uploads, ignore_errors=True)
