"""--pretrained: a 3-channel stem is adapted as timm does, skipped tensors are logged, nothing fitting is refused."""

import logging

import pytest
import timm
import torch
from timm.models import adapt_input_conv

from report2label.core.errors import R2LError
from report2label.core.training.checkpoint import build_model
from report2label.core.training.recipe import effective_recipe
from report2label.plugins.ankle_fracture import TASK

RECIPE = effective_recipe(TASK, image_size=32).model_copy(update={"architecture": "test_resnet"})


def test_three_channel_weights_into_a_one_channel_recipe(tmp_path, caplog):
    source = timm.create_model("test_resnet", in_chans=3, num_classes=5)
    weights = source.state_dict()
    path = tmp_path / "rgb.pt"
    torch.save(weights, path)
    with caplog.at_level(logging.WARNING, logger="report2label"):
        model = build_model(RECIPE, 1, path)
    loaded = model.state_dict()
    assert loaded["conv1.0.weight"].shape[1] == 1 and weights["conv1.0.weight"].shape[1] == 3
    assert torch.equal(loaded["conv1.0.weight"], adapt_input_conv(1, weights["conv1.0.weight"]))
    assert torch.equal(loaded["layer1.0.conv1.weight"], weights["layer1.0.conv1.weight"])
    assert [r.getMessage() for r in caplog.records] == [
        f"{path}: skipped fc.weight (5, 96) (the model has shape (1, 96))",
        f"{path}: skipped fc.bias (5,) (the model has shape (1,))",
    ]


def test_weights_of_which_nothing_fits_are_refused(tmp_path):
    path = tmp_path / "other.pt"
    torch.save({"encoder.weight": torch.zeros(3, 3)}, path)
    with pytest.raises(R2LError) as raised:
        build_model(RECIPE, 1, path)
    assert str(raised.value) == f"{path}: no tensor fits test_resnet with 1 channel(s)"
