"""Static int8 quantisation of an exported model, and the ONNX Runtime session settings that serve it.

:func:`quantize` writes the int8 model atomically beside ``target`` (ONNX Runtime's scratch files go
to a scratch folder there too), then measures its decision agreement with the float model on
``check`` images and the latency of both at batch 1. :class:`Settings` names every choice, so the
benchmark (``bench/onnx_latency.py``) can compare them; :data:`BEST` is the measured winner and
:data:`STUDY` the settings used before it.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from .atomic import atomic_path, scratch_dir
from .onnx_rewrite import byte_concats, norm_as_depthwise_conv, pool_as_depthwise_conv, stride_as_depth

TYPES = {"u8": "QUInt8", "s8": "QInt8"}
CALIBRATIONS = {"minmax": "MinMax", "entropy": "Entropy", "percentile": "Percentile"}


@dataclass(frozen=True)
class Settings:
    """One way to quantise: every choice that changes speed or agreement."""

    format: str = "qdq"  # "qdq" or "qoperator"
    per_channel: bool = True
    reduce_range: bool = False
    activations: str = "u8"  # "u8" or "s8"
    weights: str = "s8"  # "u8" or "s8"
    calibration: str = "minmax"  # "minmax", "entropy" or "percentile"
    op_types: tuple[str, ...] | None = None  # None: every op type the quantiser knows
    keep_float: tuple[str, ...] = ()  # "first_conv", "last_gemm": leave that node in float
    prepare: bool = True  # quant_pre_process (shape inference, ORT's fusions) first
    norm_as_conv: bool = False  # a BatchNormalization that no Conv absorbed becomes a depthwise 1x1 Conv
    pool_as_conv: bool = False  # an AveragePool becomes a depthwise Conv
    stride_as_depth: bool = False  # a stride-2 Conv over few channels becomes SpaceToDepth + a stride-1 Conv
    shared_concat_range: bool = False  # a Concat's inputs and output share one range: the int8 Concat is a copy
    byte_concat: bool = False  # such a Concat joins the int8 bytes (a plain Concat, not QLinearConcat)
    extra: tuple[tuple[str, object], ...] = ()  # quantize_static extra_options

    def describe(self) -> str:
        parts = [
            self.format,
            "per-channel" if self.per_channel else "per-tensor",
            f"{self.activations.upper()}/{self.weights.upper()}",
            self.calibration,
        ]
        if self.reduce_range:
            parts.append("reduce_range")
        if self.op_types is not None:
            parts.append("ops=" + "+".join(self.op_types))
        parts += [f"float {name}" for name in self.keep_float]
        if not self.prepare:
            parts.append("no pre-process")
        if self.norm_as_conv:
            parts.append("batch norm as depthwise conv")
        if self.pool_as_conv:
            parts.append("average pooling as depthwise conv")
        if self.stride_as_depth:
            parts.append("first conv over space-to-depth")
        if self.shared_concat_range:
            parts.append("one range per concatenation")
        if self.byte_concat:
            parts.append("concatenation of int8 bytes")
        parts += [f"{key}={value}" for key, value in self.extra]
        return ", ".join(parts)

    def but(self, **changes) -> Settings:
        return replace(self, **changes)


STUDY = Settings()  # what export.py's _quantize did before: QDQ, per-channel, U8/S8, MinMax
# The winner (bench/onnx_latency.py): DenseNet's pre-activation norms and its transitions' average
# pooling as int8 depthwise convolutions, its first convolution over the space-to-depth image, 7-bit
# weights (without VNNI, AVX2's u8*s8 pair sums saturate 16 bits), one quantisation range per chain of
# concatenations, whose Concat then joins the int8 bytes, MinMax calibration: ORT's percentile
# calibrator holds every activation of every calibration image and ran out of 24 GiB at 640 px.
BEST = STUDY.but(
    norm_as_conv=True,
    pool_as_conv=True,
    stride_as_depth=True,
    reduce_range=True,
    shared_concat_range=True,
    byte_concat=True,
)
VARIANTS = {  # what bench/onnx_latency.py --settings can compare
    "best": BEST,
    "best-average-pool": BEST.but(pool_as_conv=False),
    "best-strided-first-conv": BEST.but(stride_as_depth=False),
    "best-qlinear-concat": BEST.but(byte_concat=False),
    "previous": BEST.but(pool_as_conv=False, stride_as_depth=False, byte_concat=False),
    "best-own-concat-ranges": BEST.but(shared_concat_range=False),
    "best-percentile": BEST.but(calibration="percentile"),
    "best-full-range": BEST.but(reduce_range=False),
    "study": STUDY,
    "reduce-range": STUDY.but(reduce_range=True),
    "per-tensor": STUDY.but(per_channel=False),
    "qoperator": STUDY.but(format="qoperator"),
    "u8u8": STUDY.but(weights="u8"),
    "s8s8": STUDY.but(activations="s8"),
    "conv-only": STUDY.but(op_types=("Conv", "Gemm")),
    "float-ends": BEST.but(keep_float=("first_conv", "last_gemm")),
    "percentile": STUDY.but(calibration="percentile"),
    "entropy": STUDY.but(calibration="entropy"),
    "no-pre-process": STUDY.but(prepare=False),
}


@dataclass(frozen=True)
class Quantized:
    path: Path
    agreement: float
    max_abs_diff: float
    float_ms: float
    int8_ms: float


def session_options(threads: int | None = None):
    """ONNX Runtime session options for predicting with an exported (float or int8) model.

    ``ORT_ENABLE_ALL`` matters for int8: only that level fuses the QDQ pairs into QLinearConv and
    lays the int8 convolutions out channels-last (NhwcQLinearConv), which is where the speed is.
    Sequential execution (the default) with ONNX Runtime's own thread count (the physical cores);
    an optimised model saved with ``optimized_model_filepath`` at this level is specific to the
    CPU it was written on (ONNX Runtime warns so), so none is saved.
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    if threads:
        options.intra_op_num_threads = threads
    return options


def _node_names(model, keep_float: tuple[str, ...]) -> list[str]:
    names = []
    nodes = list(model.graph.node)
    if "first_conv" in keep_float:
        names += [next(n.name for n in nodes if n.op_type == "Conv")]
    if "last_gemm" in keep_float:
        names += [next(n.name for n in reversed(nodes) if n.op_type in ("Gemm", "MatMul"))]
    return names


SAME_RANGE_OPS = ("MaxPool", "AveragePool", "Reshape", "Transpose", "Flatten", "Squeeze", "Unsqueeze")
"""Ops whose int8 output ONNX Runtime's QDQ quantiser gives its input's range (``QDQDirect8BitOp``)."""


def concat_groups(model) -> list[list[str]]:
    """Tensor names that chains of Concat nodes join: each Concat's inputs and output, transitively,
    and through :data:`SAME_RANGE_OPS` (whose output range is their input's anyway).

    DenseNet concatenates its block's input and every layer's output before each layer, so each
    dense block is one group; with one quantisation range for a group, ONNX Runtime's QLinearConcat
    copies bytes instead of requantising every input (a quarter of DenseNet121's int8 time at 640 px).
    """
    parent: dict[str, str] = {}

    def root(name: str) -> str:
        while parent.setdefault(name, name) != name:
            name = parent[name]
        return name

    def join(names: list[str]) -> None:
        for name in names:
            parent[root(name)] = root(names[0])

    for node in model.graph.node:
        if node.op_type == "Concat":
            join([node.output[0], *node.input])
    pairs = [(n.output[0], n.input[0]) for n in model.graph.node if n.op_type in SAME_RANGE_OPS]
    grown = True
    while grown:  # until no op of SAME_RANGE_OPS links a group to a tensor outside it
        linking = [(a, b) for a, b in pairs if (a in parent or b in parent) and root(a) != root(b)]
        for pair in linking:
            join(list(pair))
        grown = bool(linking)
    groups: dict[str, list[str]] = {}
    for name in parent:
        groups.setdefault(root(name), []).append(name)
    return list(groups.values())


def shared_ranges(model_path: Path, model, reader, scratch: Path, method: str) -> dict[str, list[dict]]:
    """``TensorQuantOverrides`` with every tensor's range calibrated by ``method``, where the tensors of
    a :func:`concat_groups` group share the group's (its lowest and highest)."""
    from onnxruntime.quantization import CalibrationMethod
    from onnxruntime.quantization.calibrate import create_calibrator

    calibrator = create_calibrator(
        str(model_path),
        augmented_model_path=str(scratch / "augmented.onnx"),
        calibrate_method=getattr(CalibrationMethod, CALIBRATIONS[method]),
    )
    calibrator.collect_data(reader)
    ranges = {
        name: (float(np.min(data.range_value[0])), float(np.max(data.range_value[1])))
        for name, data in calibrator.compute_data().items()
    }
    for group in concat_groups(model):
        known = [ranges[name] for name in group if name in ranges]
        ranges |= dict.fromkeys(group, (min(low for low, _ in known), max(high for _, high in known)))
    return {name: [{"rmin": np.float32(low), "rmax": np.float32(high)}] for name, (low, high) in ranges.items()}


def write_int8(float_path: Path, target: Path, calibration: np.ndarray, settings: Settings = BEST) -> Path:
    """Quantise ``float_path`` into ``target`` (atomically), calibrated on ``calibration`` images."""
    import onnx
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self, images: np.ndarray = calibration) -> None:
            self.batches = iter([{"image": images[i : i + 1]} for i in range(len(images))])

        def get_next(self):
            return next(self.batches, None)

    float_path, target = Path(float_path), Path(target)
    extra = dict(settings.extra)
    logging.disable(logging.WARNING)  # the quantiser warns once per normalisation weight
    try:
        with scratch_dir(target.parent) as scratch, atomic_path(target) as out:  # out: prepared, then int8
            if settings.prepare:
                quant_pre_process(str(float_path), str(out))
                model = onnx.load(str(out))
            else:
                model = onnx.load(str(float_path))
            if settings.norm_as_conv:
                norm_as_depthwise_conv(model)
            if settings.pool_as_conv:
                pool_as_depthwise_conv(model)
            if settings.stride_as_depth:
                stride_as_depth(model)
            reader = Reader()
            if settings.shared_concat_range:  # every range calibrated here: the quantiser's own pass needs one image
                onnx.save(model, str(out))
                extra["TensorQuantOverrides"] = shared_ranges(out, model, reader, scratch, settings.calibration)
                reader = Reader(calibration[:1])
            quantize_static(
                model,
                str(out),
                reader,
                quant_format=QuantFormat.QDQ if settings.format == "qdq" else QuantFormat.QOperator,
                op_types_to_quantize=list(settings.op_types) if settings.op_types is not None else None,
                per_channel=settings.per_channel,
                reduce_range=settings.reduce_range,
                activation_type=getattr(QuantType, TYPES[settings.activations]),
                weight_type=getattr(QuantType, TYPES[settings.weights]),
                nodes_to_exclude=_node_names(model, settings.keep_float),
                calibrate_method=getattr(CalibrationMethod, CALIBRATIONS[settings.calibration]),
                extra_options=extra,
            )
            if settings.byte_concat:
                model = onnx.load(str(out))
                byte_concats(model)
                onnx.save(model, str(out))
    finally:
        logging.disable(logging.NOTSET)
    return target


def latency_ms(session, image: np.ndarray, repeats: int = 10) -> float:
    name = session.get_inputs()[0].name
    session.run(None, {name: image})
    start = time.perf_counter()
    for _ in range(repeats):
        session.run(None, {name: image})
    return (time.perf_counter() - start) / repeats * 1000


def quantize(
    float_path: Path,
    target: Path,
    calibration: np.ndarray,
    check: np.ndarray,
    thresholds: list[float],
    settings: Settings = BEST,
) -> Quantized:
    """Write the int8 model and measure it against the float one on ``check`` images."""
    import onnxruntime as ort

    write_int8(float_path, target, calibration, settings)
    sessions = [
        ort.InferenceSession(str(path), session_options(), providers=["CPUExecutionProvider"])
        for path in (float_path, target)
    ]
    expected, got = (s.run(None, {"image": check})[0] for s in sessions)
    limits = np.asarray(thresholds, dtype=np.float32)
    return Quantized(
        Path(target),
        float(((got >= limits) == (expected >= limits)).all(axis=1).mean()),
        float(np.abs(got - expected).max()),
        latency_ms(sessions[0], check[:1]),
        latency_ms(sessions[1], check[:1]),
    )
