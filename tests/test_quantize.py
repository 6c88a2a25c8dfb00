"""Static int8: the rewritten graph is the same function, the int8 model agrees with the float one
on example images, and it is written atomically (no leftovers, an old file survives a failure)."""

import numpy as np
import onnx
import onnxruntime as ort
import pandas as pd
import pytest
import torch
from timm.models.densenet import DenseNet

from report2label.core import registry
from report2label.core.data.images import read_image
from report2label.core.data.preprocess import model_input, preprocess
from report2label.core.export import WithSigmoid, _export_onnx
from report2label.core.onnx_rewrite import norm_as_depthwise_conv
from report2label.core.quantize import BEST, STUDY, quantize, session_options, write_int8
from report2label.core.training.loop import effective_recipe

SIZE = 64


@pytest.fixture(scope="module")
def example(tmp_path_factory):
    """A tiny DenseNet (concatenations and pre-activation norms, like the recipe's) trained a few
    steps on 64 px images of the synthetic ankle example; its float ONNX file and the images."""
    folder = tmp_path_factory.mktemp("quantize")
    recipe = effective_recipe(registry.task("ankle-fracture"), image_size=SIZE)
    registry.example("ankle-fracture")(folder / "example", seed=3, n_reports=40, image_size=64)
    table = pd.read_csv(folder / "example" / "images.csv").merge(
        pd.read_csv(folder / "example" / "reports.csv")[["report_id", "gold_fracture"]], on="report_id"
    )
    pixels = [preprocess(read_image(folder / "example" / p), recipe.preprocessing, SIZE) for p in table["image"]]
    images, labels = model_input(np.stack(pixels), 1), table["gold_fracture"].to_numpy(np.float32)
    torch.manual_seed(0)
    network = DenseNet(growth_rate=8, block_config=(2, 2, 2), bn_size=2, in_chans=1, num_classes=1)
    optimiser = torch.optim.AdamW(network.parameters(), lr=3e-3)
    x, y = torch.from_numpy(images), torch.from_numpy(labels)[:, None]
    network.train()
    for step in range(30):
        batch = slice(step * 16 % len(x), step * 16 % len(x) + 16)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(network(x[batch]), y[batch])
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    model = WithSigmoid(network).eval()
    path = folder / "model.onnx"
    _export_onnx(model, recipe, path, {})
    return path, images


def run(path, images):
    session = ort.InferenceSession(str(path), session_options(), providers=["CPUExecutionProvider"])
    return session.run(None, {"image": images})[0]


def test_norm_as_depthwise_conv_is_the_same_function(example, tmp_path):
    path, images = example
    model = onnx.load(str(path))
    norms = sum(node.op_type == "BatchNormalization" for node in model.graph.node)
    assert norm_as_depthwise_conv(model) == norms > 0
    assert not any(node.op_type == "BatchNormalization" for node in model.graph.node)
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, str(tmp_path / "rewritten.onnx"))
    np.testing.assert_allclose(run(tmp_path / "rewritten.onnx", images), run(path, images), atol=1e-5)


@pytest.mark.parametrize("settings", [BEST, STUDY], ids=["best", "study"])
def test_int8_agrees_with_float_and_is_written_atomically(example, tmp_path, settings):
    path, images = example
    reference = run(path, images[16:])
    assert reference.std() > 0.02  # trained a little: not every probability at 0.5
    target = tmp_path / "model.int8.onnx"
    result = quantize(path, target, images[:16], images[16:], [0.5], settings)
    assert result.path == target and result.agreement >= 0.99 and result.max_abs_diff < 0.1
    assert result.float_ms > 0 and result.int8_ms > 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.int8.onnx"]  # no temporary file, no scratch
    model = onnx.load(str(target))
    onnx.checker.check_model(model)
    assert any(node.op_type == "QuantizeLinear" for node in model.graph.node)
    assert run(target, images[:3]).shape == (3, 1)


def test_every_range_comes_from_all_calibration_images(example, tmp_path):
    """The ranges are calibrated once, over every image; the quantiser's own pass sees only the first,
    so a black first image must not decide any range."""
    path, images = example
    calibration = np.concatenate([np.zeros_like(images[:1]), images[:15]])
    with_black = write_int8(path, tmp_path / "black.int8.onnx", calibration)
    without = write_int8(path, tmp_path / "plain.int8.onnx", np.concatenate([images[:15], calibration[:1]]))
    np.testing.assert_array_equal(run(with_black, images[16:]), run(without, images[16:]))


def test_a_failed_quantisation_leaves_the_old_file_and_nothing_else(example, tmp_path, monkeypatch):
    import onnxruntime.quantization

    def broken(*args, **kwargs):
        raise RuntimeError("calibration failed")

    monkeypatch.setattr(onnxruntime.quantization, "quantize_static", broken)
    path, images = example
    target = tmp_path / "model.int8.onnx"
    target.write_text("old")
    with pytest.raises(RuntimeError, match="calibration failed"):
        write_int8(path, target, images[:4])
    assert target.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["model.int8.onnx"]


def test_concatenations_share_one_range_and_join_the_int8_bytes(example, tmp_path):
    """Every input of a Concat is quantised like its output (same scale and zero point), so the Concat
    can join the int8 bytes themselves: the default settings do, with the same outputs as ONNX
    Runtime's QLinearConcat."""
    path, images = example
    requantising = write_int8(path, tmp_path / "qlinear.int8.onnx", images[:8], BEST.but(byte_concat=False))
    model = onnx.load(str(requantising))
    constants = {t.name: onnx.numpy_helper.to_array(t) for t in model.graph.initializer}
    quantised_by = {n.output[0]: n for n in model.graph.node if n.op_type == "DequantizeLinear"}
    concats = [n for n in model.graph.node if n.op_type == "Concat"]
    assert len(concats) == 6  # 2 + 2 + 2 dense layers
    for concat in concats:
        (output_q,) = [n for n in model.graph.node if n.op_type == "QuantizeLinear" and n.input[0] == concat.output[0]]
        expected = [constants[name].item() for name in output_q.input[1:3]]
        for name in concat.input:
            assert [constants[name].item() for name in quantised_by[name].input[1:3]] == expected

    joining = write_int8(path, tmp_path / "bytes.int8.onnx", images[:8])
    model = onnx.load(str(joining))
    producers = {o: n.op_type for n in model.graph.node for o in n.output}
    concats = [n for n in model.graph.node if n.op_type == "Concat"]
    assert len(concats) == 6
    assert all(producers[name] in ("QuantizeLinear", "Concat") for n in concats for name in n.input)
    np.testing.assert_array_equal(run(joining, images[8:]), run(requantising, images[8:]))
