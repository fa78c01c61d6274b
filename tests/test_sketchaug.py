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


def test_a_dark_line_inside_the_item_is_kept_as_a_line():
    """A coat's opening: a dark stripe down a bright item is drawn as a seam darker than the
    fill (filled kinds) or as a bright line inside an empty outline, in about INNER_SHARE of
    the images; a plain item gets no inner line."""
    x = square(lo=4, hi=24).repeat(300, 1, 1, 1)
    x[..., 6:22, 14] = 0.15  # above every mask threshold: still part of the item
    out = sketchaug._drawn(x, torch.Generator().manual_seed(2))
    stripe, body = out[:, 0, 14, 14], out[:, 0, 14, 9]
    seam = (stripe > 0) & (stripe < body - 0.05)
    drawn_line = (body == 0) & (stripe > 0.5)
    share = (seam | drawn_line).float().mean().item()
    assert seam.any() and drawn_line.any()
    assert abs(share - sketchaug.INNER_SHARE) < 0.1  # 300 draws: ~3 standard deviations
    plain = sketchaug._drawn(square(lo=4, hi=24).repeat(300, 1, 1, 1), torch.Generator())
    assert (plain[:, 0, 14, 14] <= plain[:, 0, 14, 9] + 1e-6).all()


def test_holes_of_a_silhouette_are_filled_but_an_open_bay_is_not():
    ring = square(lo=4, hi=24, level=1.0)
    ring[..., 10:18, 10:18] = 0  # a dark patch inside the item (a black panel)
    bay = ring.clone()
    bay[..., 16:24, 12:16] = 0  # a gap from the patch to the outside: all of it is background
    filled = sketchaug._fill_holes((ring > 0).float())
    assert torch.equal(filled, (square(lo=4, hi=24) > 0).float())
    opened = sketchaug._fill_holes((bay > 0).float())
    assert opened[0, 0, 20, 13] == 0 and opened[0, 0, 12, 12] == 0 and opened[0, 0, 12, 6] == 1


def test_a_keystone_widens_the_bottom_and_narrows_the_top():
    x = square(lo=4, hi=24, level=1.0)
    identity = torch.tensor([[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]])
    out = sketchaug._affine(x, identity, torch.tensor([0.25]))[0, 0] > 0.5
    top, bottom = out[5].sum().item(), out[22].sum().item()
    assert bottom > 20 > top  # 20 px wide before; +-25% scaled by the height
    assert torch.equal(sketchaug._affine(x, identity), x)
