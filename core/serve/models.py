"""The models a server serves: loading, model ids, what the page and ``/v1/model`` show, and uploads."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..data.images import ImageError
from ..errors import R2LError
from ..model_card import NOT_FOR_DIAGNOSIS, card_path
from ..predict import IMAGE_SUFFIXES, OnnxModel
from .batching import MicroBatcher

#: The model card's statement, without its Markdown: shown on the page, returned by ``/v1/model``.
NOTICE = NOT_FOR_DIAGNOSIS.replace("**", "")


@dataclass(frozen=True)
class Limits:
    """What one request may upload."""

    max_bytes: int = 50 * 2**20
    max_files: int = 16


@dataclass
class ServedModel:
    """An ONNX model behind its own route, with the micro-batcher that feeds it."""

    id: str
    model: OnnxModel
    batcher: MicroBatcher
    description: str = field(default="")

    def describe(self) -> dict:
        """What ``GET /v1/model`` says about this model: id, task, labels, thresholds, preprocessing, sizes."""
        meta, info = self.model.metadata, self.model.info
        return {
            "id": self.id,
            "file": self.model.path.name,
            "task": meta.get("r2l.task"),
            "task_version": meta.get("r2l.task_version"),
            "description": self.description,
            "labels": info.labels,
            "thresholds": info.thresholds,
            "input_size": info.size,
            "channels": info.channels,
            "preprocessing": info.preprocessing.model_dump(mode="json"),
            "architecture": meta.get("r2l.architecture"),
            "report2label_version": meta.get("r2l.report2label_version"),
            "trained": meta.get("r2l.trained"),
            "metadata": meta,
            "notice": NOTICE,
        }

    def counts(self) -> dict:
        return {"id": self.id, "onnx_calls": self.batcher.calls, "images": self.batcher.images}

    def view(self, name: str, data: bytes) -> np.ndarray:
        """The uploaded file ``name`` as the model sees it; :class:`ImageError` names the upload.

        The bytes go to a temporary file (readable by this user only) for the readers of ``r2l predict``,
        removed before this returns.
        """
        suffix = Path(name).suffix.lower()
        with tempfile.NamedTemporaryFile(suffix=suffix if suffix in IMAGE_SUFFIXES else "") as tmp:
            tmp.write(data)
            tmp.flush()
            try:
                return self.model.prepare(tmp.name)
            except ImageError as exc:
                raise ImageError(str(exc).replace(tmp.name, name)) from None

    async def predict(self, images: np.ndarray) -> list[dict]:
        """Per image, per label: probability, decision (0/1 at the threshold) and threshold."""
        probs = await self.batcher.submit(images)
        info = self.model.info
        return [
            {
                label: {"probability": float(p), "decision": int(p >= threshold), "threshold": threshold}
                for label, threshold, p in zip(info.labels, info.thresholds, row, strict=True)
            }
            for row in probs
        ]


def card_description(model_path: Path, task: str | None) -> str:
    """The "What it predicts" section of the model card (``MODEL.md`` beside the model), if it is this task's."""
    card = card_path(model_path)
    if not card.is_file():
        return ""
    text = card.read_text(encoding="utf-8")
    if not text.startswith(f"# Model card: {task} "):
        return ""
    _, found, rest = text.partition("## What it predicts\n")
    return rest.split("\n## ", 1)[0].strip() if found else ""


def task_description(model_path: Path, task: str | None) -> str:
    """The task and label definition: from the model card, else from the installed task of that name."""
    text = card_description(model_path, task)
    if text or not task:
        return text
    from .. import registry

    try:
        spec = registry.task(task)
    except R2LError:
        return ""
    return f"{spec.description}\n\nLabels: {', '.join(spec.labels)}."


def load_models(paths: list[Path], *, threads: int | None, window_s: float, max_batch: int) -> list[ServedModel]:
    """Each model once, with an id from its file name (``a.onnx`` → ``a``); ids must differ."""
    ids = [Path(p).stem for p in paths]
    for model_id in ids:
        if ids.count(model_id) > 1:
            clash = [str(p) for p, i in zip(paths, ids, strict=True) if i == model_id]
            raise R2LError(f"{' and '.join(clash)}: two models with the id {model_id!r}; rename one file")
    served = []
    for model_id, path in zip(ids, paths, strict=True):
        model = OnnxModel.load(path, threads)
        batcher = MicroBatcher(model.probabilities, window_s, max_batch)
        description = task_description(Path(path), model.metadata.get("r2l.task"))
        served.append(ServedModel(model_id, model, batcher, description))
    return served
