"""The graph rewrites are the same function: pooling moves before a pointwise convolution and
becomes a depthwise convolution only where that is exact, a quantised Concat joins int8 bytes only
where its inputs and output share one scale and zero point, and ONNX Runtime gives the same outputs
before and after."""

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from report2label.core.onnx_rewrite import byte_concats, pool_as_depthwise_conv, pool_first, stride_as_depth


def conv_then_pool(kernel: int = 1, pads: tuple[int, ...] = (0, 0, 0, 0), tap: bool = False) -> onnx.ModelProto:
    """x → Conv(kernel) → AveragePool(2x2, stride 2, ``pads``) → Relu; ``tap``: the Conv's output is an
    output of the graph too."""
    rng = np.random.default_rng(0)
    weight = numpy_helper.from_array(rng.normal(size=(6, 4, kernel, kernel)).astype(np.float32), "w")
    bias = numpy_helper.from_array(rng.normal(size=6).astype(np.float32), "b")
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], kernel_shape=[kernel, kernel], pads=[kernel // 2] * 4),
        helper.make_node("AveragePool", ["c"], ["p"], kernel_shape=[2, 2], strides=[2, 2], pads=list(pads)),
        helper.make_node("Relu", ["p"], ["y"]),
    ]
    outputs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, list("nchw"))]
    if tap:
        outputs.append(helper.make_tensor_value_info("c", TensorProto.FLOAT, list("nchw")))
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 8, 8])], outputs, [weight, bias]
    )
    graph.value_info.append(helper.make_tensor_value_info("c", TensorProto.FLOAT, [1, 6, 8, 8]))  # as exporters record
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def run(model: onnx.ModelProto, x: np.ndarray | None = None, **inputs: np.ndarray) -> list[np.ndarray]:
    """The model's outputs for input ``x`` (or the named ``inputs``), after the ONNX checker passed it."""
    onnx.checker.check_model(model, full_check=True)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x} if x is not None else inputs)


def test_a_pointwise_conv_pools_first_with_the_same_outputs():
    model = conv_then_pool()
    x = np.random.default_rng(1).normal(size=(1, 4, 8, 8)).astype(np.float32)
    before = run(model, x)
    assert pool_first(model) == 1
    assert [n.op_type for n in model.graph.node] == ["AveragePool", "Conv", "Relu"]
    after = run(model, x)
    np.testing.assert_allclose(after[0], before[0], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "model",
    [conv_then_pool(kernel=3), conv_then_pool(pads=(1, 1, 1, 1)), conv_then_pool(tap=True)],
    ids=["3x3 conv", "padded pool", "conv output read elsewhere"],
)
def test_inexact_or_shared_cases_stay_as_they_are(model):
    x = np.random.default_rng(1).normal(size=(1, 4, 8, 8)).astype(np.float32)
    before = run(model, x)
    assert pool_first(model) == 0
    assert [n.op_type for n in model.graph.node] == ["Conv", "AveragePool", "Relu"]
    for got, expected in zip(run(model, x), before, strict=True):
        np.testing.assert_array_equal(got, expected)


def test_a_plain_average_pool_becomes_the_same_depthwise_conv():
    model = conv_then_pool(kernel=3)
    x = np.random.default_rng(1).normal(size=(1, 4, 8, 8)).astype(np.float32)
    before = run(model, x)
    assert pool_as_depthwise_conv(model) == 1
    assert [n.op_type for n in model.graph.node] == ["Conv", "Conv", "Relu"]
    attributes = {a.name: helper.get_attribute_value(a) for a in model.graph.node[1].attribute}
    assert attributes["group"] == 6 and attributes["kernel_shape"] == [2, 2] and attributes["strides"] == [2, 2]
    np.testing.assert_allclose(run(model, x)[0], before[0], rtol=1e-5, atol=1e-6)


def test_a_padded_average_pool_stays_a_pool():
    model = conv_then_pool(pads=(1, 1, 1, 1))
    assert pool_as_depthwise_conv(model) == 0
    assert [n.op_type for n in model.graph.node] == ["Conv", "AveragePool", "Relu"]


def quantised_concat(scales: tuple[float, float, float]) -> onnx.ModelProto:
    """a, b → quantise and dequantise each (its own scale) → Concat → quantise (``scales[2]``) → dequantise."""
    nodes, constants = [], []
    for name, scale in zip(("a", "b", "c"), scales, strict=True):
        constants += [
            numpy_helper.from_array(np.array(scale, np.float32), f"{name}_scale"),
            numpy_helper.from_array(np.array(128, np.uint8), f"{name}_zero"),
        ]
    for name in ("a", "b"):
        nodes += [
            helper.make_node("QuantizeLinear", [name, f"{name}_scale", f"{name}_zero"], [f"{name}_q"]),
            helper.make_node("DequantizeLinear", [f"{name}_q", f"{name}_scale", f"{name}_zero"], [f"{name}_dq"]),
        ]
    nodes += [
        helper.make_node("Concat", ["a_dq", "b_dq"], ["c"], axis=1),
        helper.make_node("QuantizeLinear", ["c", "c_scale", "c_zero"], ["c_q"]),
        helper.make_node("DequantizeLinear", ["c_q", "c_scale", "c_zero"], ["y"]),
    ]
    inputs = [helper.make_tensor_value_info(name, TensorProto.FLOAT, [1, 3, 4, 4]) for name in ("a", "b")]
    outputs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 6, 4, 4])]
    graph = helper.make_graph(nodes, "g", inputs, outputs, constants)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_a_concat_with_one_scale_joins_the_int8_bytes_with_the_same_outputs():
    model = quantised_concat((0.02, 0.02, 0.02))
    rng = np.random.default_rng(2)
    a, b = (rng.normal(size=(1, 3, 4, 4)).astype(np.float32) for _ in range(2))
    before = run(model, a=a, b=b)
    assert byte_concats(model) == 1
    assert [n.op_type for n in model.graph.node] == ["QuantizeLinear", "QuantizeLinear", "Concat", "DequantizeLinear"]
    assert {t.name for t in model.graph.initializer} == {"a_scale", "a_zero", "b_scale", "b_zero", "c_scale", "c_zero"}
    np.testing.assert_array_equal(run(model, a=a, b=b), before)


@pytest.mark.parametrize("scales", [(0.02, 0.03, 0.02), (0.02, 0.02, 0.05)], ids=["inputs differ", "output differs"])
def test_a_concat_that_requantises_stays_as_it_is(scales):
    model = quantised_concat(scales)
    assert byte_concats(model) == 0
    assert [n.op_type for n in model.graph.node].count("DequantizeLinear") == 3


def strided_conv(channels: int, kernel: int, pads: list[int], size: int = 16, stride: int = 2) -> onnx.ModelProto:
    """x [n, ``channels``, size, size] → Conv(``kernel``, ``stride``, ``pads``) to 5 channels → Relu."""
    rng = np.random.default_rng(kernel)
    weight = numpy_helper.from_array(rng.normal(size=(5, channels, kernel, kernel)).astype(np.float32), "w")
    bias = numpy_helper.from_array(rng.normal(size=5).astype(np.float32), "b")
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], kernel_shape=[kernel] * 2, strides=[stride] * 2, pads=pads),
        helper.make_node("Relu", ["c"], ["y"]),
    ]
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", channels, size, size])]
    outputs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, list("nchw"))]
    graph = helper.make_graph(nodes, "g", inputs, outputs, [weight, bias])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


@pytest.mark.parametrize(
    ("channels", "kernel", "pads"),
    [(1, 7, [3, 3, 3, 3]), (3, 3, [1, 1, 1, 1]), (1, 4, [0, 0, 0, 0]), (2, 5, [2, 1, 1, 2])],
    ids=["DenseNet's stem", "3x3 over RGB", "even kernel, no padding", "uneven padding"],
)
def test_a_strided_conv_over_few_channels_becomes_space_to_depth_with_the_same_outputs(channels, kernel, pads):
    model = strided_conv(channels, kernel, pads)
    x = np.random.default_rng(3).normal(size=(2, channels, 16, 16)).astype(np.float32)
    before = run(model, x)
    assert stride_as_depth(model) == 1
    assert [n.op_type for n in model.graph.node] == ["SpaceToDepth", "Conv", "Relu"]
    assert {t.name for t in model.graph.initializer} == {"w_space_to_depth", "b"}
    after = run(model, x)
    assert after[0].shape == before[0].shape
    np.testing.assert_allclose(after[0], before[0], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(
    "model",
    [strided_conv(8, 3, [1] * 4), strided_conv(1, 3, [1] * 4, stride=1), strided_conv(1, 3, [1] * 4, size=15)],
    ids=["many channels", "stride 1", "odd size"],
)
def test_other_convs_stay_as_they_are(model):
    assert stride_as_depth(model) == 0
    assert [n.op_type for n in model.graph.node] == ["Conv", "Relu"]
