"""fmnist_core.sketchaug: drawing-like training images, checked on shapes with known answers."""

from __future__ import annotations

import torch

from fmnist_core import sketchaug
from fmnist_core.config import PRESETS, TrainConfig


def square(size: int = 28, lo: int = 8, hi: int = 20, level: float = 0.6) -> torch.Tensor:
    x = torch.zeros(1, 1, size, size)
    x[..., lo:hi, lo:hi] = level
    return x


def test_reframe_scales_the_item_to_span_the_frame_centred():
    x = square(lo=10, hi=16, level=1.0)  # a 6 x 6 item off-centre -> the whole 28 x 28 frame
    out = sketchaug.reframe(x)
    assert out[0, 0, 1:27, 1:27].min() > 0.5
    wide = torch.zeros(1, 1, 28, 28)
    wide[..., 12:16, 4:20] = 1.0  # 16 wide, 4 tall -> 28 wide, 7 tall, centred vertically
    rows = (sketchaug.reframe(wide)[0, 0] > 0.5).any(1).nonzero().flatten()
    assert 6 <= len(rows) <= 8 and abs(rows.float().mean().item() - 13.5) <= 0.5


def test_outline_kind_is_the_edge_and_flat_kind_is_the_silhouette():
    x = square().repeat(64, 1, 1, 1)
    gen = torch.Generator().manual_seed(0)
    out = sketchaug._drawn(x, gen)
    centre, edge, outside = out[:, 0, 14, 14], out[:, 0, 8, 14], out[:, 0, 2, 2]
    assert (outside == 0).all()
    assert (edge >= 0.55 * 0.35).all()  # the item's edge is always drawn
    hollow = centre == 0  # outlines: dark inside
    flat = (centre - edge).abs() < 1e-6  # silhouettes: one level
    assert hollow.any() and flat.any() and (centre[~hollow & ~flat] < edge[~hollow & ~flat]).all()


def test_drawing_like_changes_about_half_and_stays_in_range():
    x = square().repeat(400, 1, 1, 1)
    gen = torch.Generator().manual_seed(1)
    out = sketchaug.drawing_like(x, gen)
    assert out.shape == x.shape and out.min() >= 0 and out.max() <= 1
    changed = (out - x).abs().flatten(1).amax(1) > 1e-6
    assert 0.4 < changed.float().mean() < 0.6
    again = sketchaug.drawing_like(x, torch.Generator().manual_seed(1))
    assert torch.equal(out, again)  # same seed, same images
    assert torch.equal(sketchaug.drawing_like(x, gen, share=0.0), x)


def test_sketch_preset_turns_it_on_and_others_do_not():
    assert PRESETS["sketch"].sketch_augment and PRESETS["sketch"].arch == "bn3"
    assert not any(p.sketch_augment for n, p in PRESETS.items() if n != "sketch")
    assert TrainConfig.from_dict(PRESETS["sketch"].to_dict()) == PRESETS["sketch"]
