"""fmnist_core.ood: the 'does not look like clothing' limit, its calibration and its file."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from fmnist_core import TrainConfig, build_model, ood
from fmnist_core.data import load_tensors
from fmnist_core.runs import load_run
from fmnist_core.sketch import SKETCH_MODEL_DIR, prepare
from fmnist_core.sketchset import sketch_set


class Fixed(nn.Module):
    """A 'model' (features + head) that answers the same logits for any input."""

    def __init__(self, logits: list[float]) -> None:
        super().__init__()
        self.logits = nn.Parameter(torch.tensor([logits]))
        self.features = nn.Sequential(nn.AdaptiveAvgPool2d(1))  # (N, 1, 1, 1): one feature

    def head(self, f: torch.Tensor) -> torch.Tensor:
        return self.logits.expand(len(f), -1)


X = torch.zeros(1, 1, 28, 28)


def limits_around(mean: float, limit: float) -> dict:
    return {"means": torch.full((10, 1), mean, dtype=torch.float64),
            "precision": torch.ones(1, 1, dtype=torch.float64), "limit": limit}  # fmt: skip


def test_judge_uses_the_distance_limit_and_the_top_probability():
    sure = Fixed([10.0] + [0.0] * 9)  # top ~ 1.0; its one feature is 0 for a black image
    torn = Fixed([0.0] * 10)  # top 0.1: the model does not know
    assert ood.judge(sure, X, None).clothing and ood.judge(sure, X, None).top == 0
    assert not ood.judge(torn, X, None).clothing
    assert ood.judge(sure, X, limits_around(0.0, 0.5)).clothing  # distance 0
    far = ood.judge(sure, X, limits_around(2.0, 0.5))  # distance 2^2 = 4 > 0.5
    assert not far.clothing and far.score == pytest.approx(4.0)
    wrong_size = limits_around(0.0, 0.5) | {
        "means": torch.zeros(10, 3, dtype=torch.float64),
        "precision": torch.eye(3, dtype=torch.float64),
    }
    assert ood.judge(sure, X, wrong_size).clothing  # another model's calibration: not used


def test_calibration_file_round_trips_and_a_broken_one_is_ignored(tmp_path):
    ood.save(tmp_path, limits_around(1.0, 5.5))
    assert ood.load(tmp_path)["limit"] == 5.5
    ood.save(tmp_path, limits_around(1.0, float("nan")))
    assert ood.load(tmp_path) is None
    (tmp_path / ood.OOD_FILE).write_bytes(b"not a torch file")
    assert ood.load(tmp_path) is None
    assert ood.load(tmp_path / "missing") is None


def test_calibration_keeps_the_share_of_the_test_set(tiny_env):
    torch.manual_seed(0)
    model = build_model(TrainConfig(arch="bn3", image_size=28, conv1=4, conv2=8))
    limits = ood.calibrate(model, 28)
    assert limits["means"].shape == (10, 16) and limits["precision"].shape == (16, 16)
    mixed = ood.mixed_test_images(load_tensors(28))
    kept = ood.distance(ood._outputs(model, mixed)[1], limits) <= limits["limit"]
    assert kept.double().mean() == pytest.approx(ood.KEEP, abs=0.01)  # the quantile it set
    assert 0 <= limits["not_clothing_caught"] <= 1


def test_not_clothing_drawings_are_canvas_images_with_ink():
    images = ood.not_clothing(10)
    assert len(images) == 10 and all(im.shape == (ood.CANVAS, ood.CANVAS, 4) for im in images)
    assert all(im[..., 0].max() == 255 for im in images)


def test_the_shipped_sketch_model_knows_clothing_from_lines_and_noise():
    """Its calibration (ood.json) was made by calibrate(); checked here on fresh samples."""
    limits = ood.load(SKETCH_MODEL_DIR)
    assert limits is not None and limits["test_kept"] >= 0.97
    model = load_run(SKETCH_MODEL_DIR).load_model()
    others = [ood.judge(model, prepare(im).tensor, limits) for im in ood.not_clothing(50, seed=9)]
    drawings = [ood.judge(model, prepare(d.image).tensor, limits) for d in sketch_set("dev", 5)]
    assert np.mean([not a.clothing for a in others]) >= 0.3  # measured: 44% (README: 42.5% of 200)
    assert np.mean([a.clothing for a in drawings]) >= 0.75
