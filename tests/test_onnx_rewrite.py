"""The exported graph's rewrites are the same function: pooling moves before a pointwise convolution
only where that is exact, and ONNX Runtime gives the same outputs before and after."""

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from report2label.core.onnx_rewrite import pool_first


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


def run(model: onnx.ModelProto, x: np.ndarray) -> list[np.ndarray]:
    onnx.checker.check_model(model, full_check=True)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x})


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
