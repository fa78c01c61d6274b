"""fmnist_core.explain: the uniform model parts, activations, filters, Grad-CAM and saliency.

The trusted answer for Grad-CAM is a hand-built notebook CNN: its first conv has a horizontal-
line detector (channel 0) and a vertical-line detector (channel 1), the second conv copies
each channel, and class 0 sums channel 0, class 1 channel 1. On an image with a horizontal
bar at the top left and a vertical bar at the bottom right, the evidence for class 0 can
only sit at the top left and the evidence for class 1 only at the bottom right.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from fmnist_core.config import TrainConfig, preset
from fmnist_core.explain import (
    epoch_probabilities,
    explain,
    first_filters,
    grad_cam,
    saliency,
)
from fmnist_core.model import BN3CNN, NotebookCNN, build_model
from fmnist_core.runs import load_run
from fmnist_core.sketch import DEFAULT_MODEL_DIR


def _models(size: int = 16) -> list[torch.nn.Module]:
    torch.manual_seed(0)
    return [NotebookCNN(4, 8, size).eval(), BN3CNN(4, 8, size).eval()]


@pytest.mark.parametrize("size", [16, 28])
@pytest.mark.parametrize("index", [0, 1], ids=["notebook", "bn3"])
def test_features_then_head_is_the_model(index, size):
    model = _models(size)[index]
    x = torch.rand(3, 1, size, size)
    with torch.inference_mode():
        staged = model.head(model.features(x).flatten(1))
        assert torch.equal(staged, model(x))


def test_notebook_parts_keep_the_saved_keys_and_follow_the_weights():
    model = NotebookCNN(4, 8, 16)
    assert list(model.state_dict()) == [
        "cnn1.weight", "cnn1.bias", "cnn2.weight", "cnn2.bias", "fc1.weight", "fc1.bias",
    ]  # fmt: skip
    assert model.features[0].conv is model.cnn1 and model.features[1].conv is model.cnn2
    assert model.head is model.fc1
    model.load_state_dict({k: torch.zeros_like(v) for k, v in model.state_dict().items()})
    assert (
        float(model.features[0].conv.weight.detach().abs().sum()) == 0.0
    )  # same tensors, not copies


def _notebook_by_hand(state: dict, x: torch.Tensor) -> torch.Tensor:
    """The notebook CNN's forward written with torch.nn.functional from a state_dict."""
    x = F.max_pool2d(F.relu(F.conv2d(x, state["cnn1.weight"], state["cnn1.bias"], padding=2)), 2)
    x = F.max_pool2d(F.relu(F.conv2d(x, state["cnn2.weight"], state["cnn2.bias"], padding=2)), 2)
    return F.linear(x.flatten(1), state["fc1.weight"], state["fc1.bias"])


def test_shipped_default_model_loads_and_gives_identical_logits():
    run = load_run(DEFAULT_MODEL_DIR)
    model = run.load_model()
    size = run.config.image_size
    state = torch.load(DEFAULT_MODEL_DIR / f"epoch_{run.epochs[-1]:03d}.pt", weights_only=True)
    x = torch.rand(4, 1, size, size, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        assert torch.allclose(model(x), _notebook_by_hand(state, x), atol=1e-5)


def hand_built() -> NotebookCNN:
    model = NotebookCNN(2, 2, 16)
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
        model.cnn1.weight[0, 0, 2, :] = 1.0  # a horizontal line of 5 pixels
        model.cnn1.weight[1, 0, :, 2] = 1.0  # a vertical line of 5 pixels
        model.cnn1.bias.fill_(-4.5)  # fires only on a full line
        model.cnn2.weight[0, 0, 2, 2] = 1.0  # copy each channel
        model.cnn2.weight[1, 1, 2, 2] = 1.0
        model.fc1.weight[0, :16] = 1.0  # class 0: all of channel 0 (4x4 cells)
        model.fc1.weight[1, 16:] = 1.0  # class 1: all of channel 1
    return model.eval()


def two_bars() -> torch.Tensor:
    x = torch.zeros(1, 1, 16, 16)
    x[0, 0, 2:4, 0:8] = 1.0  # horizontal bar, top left
    x[0, 0, 9:16, 12:14] = 1.0  # vertical bar, bottom right
    return x


def test_grad_cam_finds_the_evidence_where_the_hand_built_model_has_it():
    expl = explain(hand_built(), two_bars(), classes=[0, 1])
    horizontal, vertical = expl.cams
    top_left, bottom_right = (slice(0, 8), slice(0, 8)), (slice(8, 16), slice(8, 16))
    assert horizontal[top_left].max() == pytest.approx(1.0)
    assert horizontal[bottom_right].max() < 0.05
    assert vertical[bottom_right].max() == pytest.approx(1.0)
    assert vertical[top_left].max() < 0.05
    assert expl.probs.argmax() in (0, 1) and expl.probs.sum() == pytest.approx(1.0, abs=1e-5)


def test_grad_cam_of_a_class_without_evidence_is_zero():
    cams = explain(hand_built(), two_bars(), classes=[5]).cams  # class 5: all weights zero
    assert cams.shape == (1, 16, 16) and float(np.abs(cams).max()) == 0.0


def test_saliency_is_zero_away_from_the_class_evidence():
    sal = saliency(hand_built(), two_bars(), cls=0)
    assert sal.shape == (16, 16) and sal.max() == pytest.approx(1.0)
    assert sal[8:, 8:].max() == 0.0  # the vertical bar says nothing about class 0


def test_explain_shapes_for_the_strong_preset_model():
    cfg = preset("strong")
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    size = cfg.image_size
    expl = explain(model, torch.rand(1, 1, size, size), classes=[0, 3])
    c1, c2 = cfg.conv1, cfg.conv2
    shapes = [
        (c1, size // 2, size // 2),
        (c2, size // 4, size // 4),
        (2 * c2, size // 8, size // 8),
    ]
    assert [a.shape for a in expl.activations] == shapes
    assert expl.cams.shape == (2, size, size) and expl.classes == (0, 3)
    assert expl.cams.min() >= 0.0 and expl.cams.max() <= 1.0
    assert first_filters(model).shape == (c1, 3, 3)


@pytest.mark.parametrize("model", _models(), ids=["notebook", "bn3"])
def test_explaining_leaves_the_model_unchanged_and_is_deterministic(model):
    x = torch.rand(1, 1, 16, 16, generator=torch.Generator().manual_seed(2))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.inference_mode():
        logits = model(x)
    first = explain(model, x, classes=[1, 2])
    again = explain(model, x, classes=[1, 2])
    with torch.inference_mode():
        assert torch.equal(model(x), logits)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    assert all(p.grad is None for p in model.parameters())
    assert np.array_equal(first.cams, again.cams) and np.array_equal(first.probs, again.probs)
    assert np.allclose(first.probs, torch.softmax(logits, 1)[0].numpy(), atol=1e-6)


def test_batched_grad_cam_matches_one_image_at_a_time():
    model = _models()[1]
    xs = torch.rand(3, 1, 16, 16, generator=torch.Generator().manual_seed(3))
    batched = grad_cam(model, xs, classes=[4, 7])
    assert batched.shape == (3, 2, 16, 16)
    for i in range(3):
        one = explain(model, xs[i : i + 1], classes=[4, 7]).cams
        assert np.allclose(batched[i].numpy(), one, atol=1e-5)


def test_grad_cam_works_with_frozen_weights():
    model = hand_built().requires_grad_(False)
    cams = grad_cam(model, two_bars(), classes=[0])
    assert float(cams[0, 0, :8, :8].max()) == pytest.approx(1.0)


def test_epoch_probabilities_score_the_input_under_every_saved_epoch(tmp_path: Path):
    from tests.app.test_sketch_page import write_run  # noqa: PLC0415 - a recorded real run

    run = load_run(tmp_path / write_run(tmp_path))
    x = torch.rand(1, 1, 16, 16, generator=torch.Generator().manual_seed(4))
    models = [run.load_model(e) for e in run.epochs]
    table = epoch_probabilities(models, x)
    assert table.shape == (len(run.epochs), 10)
    with torch.inference_mode():
        assert np.allclose(table[0], torch.softmax(models[0](x), 1)[0].numpy(), atol=1e-6)
    assert epoch_probabilities([], x).shape == (0, 10)


def test_explain_needs_a_class():
    with pytest.raises(ValueError, match="at least one class"):
        explain(hand_built(), two_bars(), classes=[])


def test_every_config_architecture_has_features_and_head():
    for arch in ("notebook", "bn3"):
        model = build_model(TrainConfig(arch=arch, conv1=4, conv2=8))
        assert len(model.features) >= 2 and isinstance(model.head, torch.nn.Linear)


def test_tiles_place_each_map_in_its_cell():
    from fmnist_core.explain_plots import BACKGROUND, activation_strip, filter_strip  # noqa: PLC0415

    maps = np.zeros((3, 2, 2), dtype=np.float32)
    maps[1, 0, 0] = 5.0  # map 1's top-left pixel: its own maximum -> white
    image = activation_strip(maps, cols=2, cell=4)  # 2x2 maps enlarged 2x, 1-pixel gaps
    assert image.shape == (2 * 5 + 1, 2 * 5 + 1) and image.dtype == np.uint8
    assert image[0, 0] == BACKGROUND and image[5, 5] == BACKGROUND  # the gaps
    assert (image[1:3, 6:8] == 255).all() and (image[3:5, 8:10] == 0).all()  # map 1
    assert (image[1:5, 1:5] == 0).all()  # map 0: all zero stays black
    kernels = np.array([[[-1.0, 0.0], [0.0, 1.0]]])
    rgb = filter_strip(kernels, cell=2)
    assert rgb.shape == (4, 4, 3)
    assert rgb[1, 1, 2] > rgb[1, 1, 0] and rgb[2, 2, 0] > rgb[2, 2, 2]  # - blue, + red


def test_cam_overlay_and_epochs_figure():
    from fmnist_core.data import CLASSES  # noqa: PLC0415
    from fmnist_core.explain_plots import cam_overlay, epochs_figure  # noqa: PLC0415

    cam = np.zeros((4, 4))
    cam[0, 0] = 1.0
    out = cam_overlay(np.zeros((4, 4)), cam, px=8)
    assert out.shape == (8, 8, 3) and out[0, 0].sum() > out[7, 7].sum()
    probs = np.full((10, 10), 0.1)
    fig = epochs_figure(list(range(1, 11)), probs, CLASSES, highlight=[2], marked_epoch=4)
    assert len(fig.data) == 10 and all(len(trace.x) == 10 for trace in fig.data)
    assert fig.data[2].line.width > fig.data[0].line.width
