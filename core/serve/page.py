"""The web page (Gradio): upload images, see them as the model does, a probability and decision per label."""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

import numpy as np
from PIL import Image
from starlette.concurrency import run_in_threadpool

from ..data.images import ImageError
from .models import NOTICE, Limits, ServedModel

CSS = """
#notice { border: 2px solid #b91c1c; background: #fef2f2; color: #7f1d1d; padding: 0.6em 1em; border-radius: 6px; }
.r2l-card { display: flex; gap: 1.2em; align-items: flex-start; margin: 0.8em 0; }
.r2l-card img { width: 224px; height: 224px; image-rendering: pixelated; border: 1px solid #888; }
.r2l-card table { border-collapse: collapse; } .r2l-card td, .r2l-card th { padding: 0.2em 0.8em; text-align: left; }
.r2l-error { color: #b91c1c; }
"""


def _png(image: np.ndarray) -> str:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def _card(name: str, view: np.ndarray, labels: dict) -> str:
    rows = "".join(
        f"<tr><td>{html.escape(label)}</td><td class='r2l-probability'>{r['probability']:.4f}</td>"
        f"<td>{'positive (1)' if r['decision'] else 'negative (0)'}</td><td>{r['threshold']:.3f}</td></tr>"
        for label, r in labels.items()
    )
    return (
        f"<div class='r2l-card'><img alt='{html.escape(name)} as the model sees it' src='{_png(view)}'>"
        f"<div><b>{html.escape(name)}</b><table><tr><th>label</th><th>probability</th><th>decision</th>"
        f"<th>threshold</th></tr>{rows}</table></div></div>"
    )


def _take(path: str) -> tuple[str, bytes]:
    """An upload's name and bytes; the file Gradio stored is removed at once."""
    file = Path(path)
    data = file.read_bytes()
    file.unlink()
    try:
        file.parent.rmdir()  # Gradio keeps each upload in a folder of its own
    except OSError:
        pass
    return file.name, data


async def predict_files(served: ServedModel, paths: list[str] | None, limits: Limits) -> str:
    """The result cards (HTML) for the uploaded files; the uploads are removed."""
    uploads = [_take(p) for p in paths or []]
    if not uploads:
        return "<p>Upload PNG, JPEG or DICOM images.</p>"
    if len(uploads) > limits.max_files:
        return f"<p class='r2l-error'>{len(uploads)} files; at most {limits.max_files} at a time.</p>"
    views: list[tuple[str, np.ndarray]] = []
    errors: list[str] = []
    for name, data in uploads:
        try:
            views.append((name, await run_in_threadpool(served.view, name, data)))
        except ImageError as exc:
            errors.append(str(exc))
    results = await served.predict(np.stack([view for _, view in views])) if views else []
    cards = [_card(name, view, labels) for (name, view), labels in zip(views, results, strict=True)]
    cards += [f"<p class='r2l-error'>{html.escape(message)}</p>" for message in errors]
    return "\n".join(cards)


def _about(served: ServedModel) -> str:
    info, meta = served.model.info, served.model.metadata
    thresholds = ", ".join(f"{label} ≥ {t:.3f}" for label, t in zip(info.labels, info.thresholds, strict=True))
    return "\n\n".join(
        filter(
            None,
            [
                f"**Task** `{meta.get('r2l.task')}` (version {meta.get('r2l.task_version')}), "
                f"model `{served.model.path.name}` ({meta.get('r2l.architecture')}, "
                f"{info.size}×{info.size}, {info.channels} channel{'s' * (info.channels > 1)})",
                served.description,
                f"**Decision thresholds:** {thresholds}",
            ],
        )
    )


def build_page(models: list[ServedModel], limits: Limits):
    """The Gradio Blocks: the notice, then per model its definition, an upload and the result cards."""
    import gradio as gr

    # delete_cache: an upload that never reaches a prediction (which removes it) is deleted after a minute
    with gr.Blocks(title="report2label", analytics_enabled=False, delete_cache=(60, 60)) as page:
        gr.Markdown("# report2label")
        gr.Markdown(NOTICE, elem_id="notice")
        with gr.Tabs():
            for served in models:
                with gr.Tab(served.id):
                    gr.Markdown(_about(served))
                    files = gr.File(
                        label="PNG, JPEG or DICOM images",
                        file_count="multiple",
                        type="filepath",
                        elem_id=f"upload-{served.id}",
                    )
                    result = gr.HTML(elem_id=f"result-{served.id}")

                    async def run(paths, served=served):
                        return await predict_files(served, paths, limits), None

                    files.upload(run, inputs=files, outputs=[result, files])
    return page
