"""Inference with an exported model: ONNX Runtime, numpy, Pillow and pydicom only — never torch.

Preprocessing is rebuilt from the model's ``r2l.*`` metadata alone, so any consumer of the ONNX
file can do the same. An unreadable input gets an error row; the others are still predicted.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .atomic import atomic_path
from .data.images import ImageError, read_image
from .data.preprocess import model_input, preprocess
from .errors import R2LError
from .image_model import Preprocessing
from .progress import progress_bar
from .reports import read_table, require_columns

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".dcm", ".dicom"}


@dataclass(frozen=True)
class ModelInfo:
    """What the ONNX metadata says about using the model."""

    labels: list[str]
    thresholds: list[float]
    size: int
    channels: int
    preprocessing: Preprocessing

    @classmethod
    def of(cls, session, path: Path) -> ModelInfo:
        meta = session.get_modelmeta().custom_metadata_map
        try:
            info = cls(
                json.loads(meta["r2l.labels"]),
                json.loads(meta["r2l.thresholds"]),
                int(meta["r2l.input_size"]),
                int(meta["r2l.in_chans"]),
                Preprocessing.model_validate_json(meta["r2l.preprocessing"]),
            )
        except KeyError as exc:
            raise R2LError(f"{path}: not a report2label model (no metadata {exc.args[0]})") from None
        width = session.get_outputs()[0].shape[-1]
        if len(info.thresholds) != len(info.labels) or (isinstance(width, int) and width != len(info.labels)):
            raise R2LError(
                f"{path}: metadata r2l.labels names {len(info.labels)} labels and r2l.thresholds "
                f"{len(info.thresholds)} thresholds for an output of {width} probabilities"
            )
        return info


def expand_inputs(inputs: list[str | Path]) -> list[Path]:
    """Files as given; folders searched recursively for images; a .csv gives its ``image`` column."""
    paths: list[Path] = []
    for item in map(Path, inputs):
        if item.is_dir():
            paths += sorted(p for p in item.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        elif item.suffix.lower() == ".csv":
            table = read_table(item)
            require_columns(table, item, {"image": "list the image paths in a column named image"})
            paths += [(item.parent / p) for p in table["image"].astype(str)]
        else:
            paths.append(item)
    if not paths:
        raise R2LError("no input images found")
    return paths


def session_for(model: str | Path, threads: int | None = None):
    """An ONNX Runtime CPU session; ``threads`` sets the intra-op threads (default: ONNX Runtime's)."""
    import onnxruntime as ort

    path = Path(model)
    if not path.is_file():
        raise R2LError(f"{path}: no such model file")
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads:
        options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types for bad files
        raise R2LError(f"{path}: not a loadable ONNX model ({str(exc).splitlines()[0]})") from None


@dataclass(frozen=True)
class OnnxModel:
    """An exported model ready to predict: its session and what its metadata says."""

    path: Path
    session: Any
    info: ModelInfo

    @classmethod
    def load(cls, path: str | Path, threads: int | None = None) -> OnnxModel:
        session = session_for(path, threads)
        return cls(Path(path), session, ModelInfo.of(session, Path(path)))

    @property
    def metadata(self) -> dict[str, str]:
        """The ``r2l.*`` metadata as stored in the file."""
        meta = self.session.get_modelmeta().custom_metadata_map
        return {key: value for key, value in sorted(meta.items()) if key.startswith("r2l.")}

    def prepare(self, path: str | Path) -> np.ndarray:
        """The image as the model sees it: ``size`` x ``size`` uint8 (raises :class:`ImageError`)."""
        return preprocess(read_image(path), self.info.preprocessing, self.info.size)

    def probabilities(self, images: np.ndarray) -> np.ndarray:
        """Probabilities [N, labels] of prepared images [N, size, size]."""
        name = self.session.get_inputs()[0].name
        return self.session.run(None, {name: model_input(images, self.info.channels)})[0]


def predict(
    model: str | Path,
    inputs: list[str | Path],
    output: str | Path | None = None,
    *,
    batch_size: int = 16,
    show_progress: bool = True,
) -> pd.DataFrame:
    """Probabilities and decisions per input image; written to ``output`` (CSV) when given.

    Columns: ``path``, then ``<label>_probability`` and ``<label>_decision`` (at that label's
    threshold) for every label in the model's order, then ``error``.
    """
    paths = expand_inputs(inputs)
    onnx_model = OnnxModel.load(model)
    info = onnx_model.info
    rows: list[dict] = []
    with progress_bar("predicting", total=len(paths), enabled=show_progress) as advance:
        for start in range(0, len(paths), batch_size):
            batch, ready = [], []
            for index, path in enumerate(paths[start : start + batch_size], start):
                try:
                    batch.append(onnx_model.prepare(path))
                    ready.append((index, path))
                except ImageError as exc:
                    rows.append({"index": index, "path": str(path), "error": str(exc)})
            if batch:
                probs = onnx_model.probabilities(np.stack(batch))
                for (index, path), prob in zip(ready, probs, strict=True):
                    row = {"index": index, "path": str(path), "error": ""}
                    for label, threshold, p in zip(info.labels, info.thresholds, prob, strict=True):
                        row[f"{label}_probability"] = float(p)
                        row[f"{label}_decision"] = int(p >= threshold)
                    rows.append(row)
            advance(len(paths[start : start + batch_size]))
    table = pd.DataFrame(rows).sort_values("index").reset_index(drop=True)
    columns = ["path"] + [f"{label}_{kind}" for label in info.labels for kind in ("probability", "decision")]
    table = table.reindex(columns=[*columns, "error"])
    for label in info.labels:
        table[f"{label}_decision"] = table[f"{label}_decision"].astype("Int64")
    if output is not None:
        with atomic_path(output) as tmp:
            table.to_csv(tmp, index=False)
    return table
