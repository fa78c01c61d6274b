"""fmnist_core.sketchdraw: training photos drawn as people draw them, framed like the page."""

from __future__ import annotations

import logging
import threading

import numpy as np
import pytest
import torch

from fmnist_core import sketchdraw
from fmnist_core.config import PRESETS, TrainConfig, preset
from fmnist_core.data import load_tensors
from fmnist_core.sketchdraw import with_drawings
from fmnist_core.train import train


def top(width: int = 16, height: int = 20) -> np.ndarray:
    """A bright rectangle in a 28x28 frame: a stand-in for a photo of a top."""
    photo = np.zeros((28, 28), np.uint8)
    y0, x0 = (28 - height) // 2, (28 - width) // 2
    photo[y0 : y0 + height, x0 : x0 + width] = 170
    return photo


def test_a_coat_is_drawn_with_its_front_opening_and_a_sandal_with_no_marks():
    box = (10, 110, 20, 100)  # top, bottom, left, right
    centre = 60
    openings = 0
    for seed in range(100):
        lines = sketchdraw._marks(4, box, np.random.default_rng(seed))
        openings += any(
            len(line) == 2
            and abs(line[0][0] - centre) < 8  # starts near the middle ...
            and abs(line[1][0] - centre) < 8
            and line[1][1] > 100  # ... and runs down to the hem
            for line in lines
        )
        assert sketchdraw._marks(5, box, np.random.default_rng(seed)) == []
    assert 70 <= openings <= 95  # ~85%: people do not always draw it


def test_marks_are_drawn_on_the_item_only(monkeypatch):
    """A mark reaching past the item (here: across the empty margin above it) is cut off."""
    monkeypatch.setattr(sketchdraw, "ROTATION", 0)
    monkeypatch.setattr(sketchdraw, "STYLE_ODDS", (1.0, 0.0, 0.0, 0.0))  # outlines only

    def marks(label, box, rng):
        y0, y1, x0, x1 = box
        return [[(x0, y0 - 5), (x1, y0 - 5)], [((x0 + x1) / 2, y0), ((x0 + x1) / 2, y1)]]

    monkeypatch.setattr(sketchdraw, "_marks", marks)
    ink = sketchdraw.draw(top(), 4, np.random.default_rng(0)) > 0.5
    monkeypatch.setattr(sketchdraw, "_marks", lambda *_: [])
    plain = sketchdraw.draw(top(), 4, np.random.default_rng(0)) > 0.5
    rows = np.flatnonzero(plain.any(1))
    middle = ink.shape[1] // 2
    band = slice(rows[0] + 20, rows[-1] - 20)
    assert ink[band, middle - 3 : middle + 4].any(1).all()  # the opening, down the middle
    assert not plain[band, middle - 3 : middle + 4].any()
    # the line in the air is cut at the item's edge (the mask grown by 1 px), not drawn above
    assert not ink[: rows[0] - 1].any()


def median_ratio(photo: np.ndarray, label: int) -> float:
    """The median width:height of 40 drawings of ``photo``."""
    ratios = []
    for seed in range(40):
        mask = sketchdraw.draw(photo, label, np.random.default_rng(seed)) > 0.5
        ratios.append(np.ptp(np.flatnonzero(mask.any(0))) / np.ptp(np.flatnonzero(mask.any(1))))
    return float(np.median(ratios))


def test_proportions_are_drawn_closer_to_square_than_the_photos():
    """People draw a narrow top wider and a long, low shoe taller than the photos show them.
    The photos are 0.70 and 3.0; drawn with the rule, 0.85 and 1.72; without it (the pen's
    width added all round), 0.76 and 2.34."""
    assert median_ratio(top(14, 20), 0) > 0.80
    assert median_ratio(top(24, 8), 7) < 2.0


def test_a_coat_is_drawn_longer_than_its_sleeves(monkeypatch):
    """Photos of coats are mostly jackets, their sleeves level with the hem; people draw a
    coat's body reaching below the sleeves. Only the middle goes down, and only for coats."""
    mask = np.zeros((120, 100), bool)
    mask[10:110, 10:90] = True  # body and sleeves, all ending at row 109
    for seed in range(20):
        out = sketchdraw._long_coat(mask, np.random.default_rng(seed))
        bottom = [np.flatnonzero(out[:, x])[-1] for x in (12, 50, 88)]  # sleeve, body, sleeve
        assert bottom[0] == bottom[2] == 109
        assert bottom[1] >= 109 + round(sketchdraw.LONG_BY[0] * 100)
        assert out[:110].sum() == mask.sum()  # nothing else changes
    monkeypatch.setattr(sketchdraw, "ROTATION", 0)  # a level hem: its middle is no lower
    jacket = np.zeros((28, 28), np.uint8)
    jacket[4:24, 4:24] = 170
    for label, longer in ((4, True), (2, False)):
        with_rule = []
        for seed in range(10):
            ink = sketchdraw.draw(jacket, label, np.random.default_rng(seed)) > 0.5
            ink = ink[:, ink.any(0)]
            w = ink.shape[1]
            bottoms = [np.flatnonzero(ink[:, x])[-1] for x in (w // 10, w // 2, w - w // 10)]
            with_rule.append(bottoms[1] - max(bottoms[0], bottoms[2]) > 4)
        assert (np.mean(with_rule) > 0.4) if longer else not any(with_rule)


def test_an_empty_photo_is_kept_as_it_is():
    empty = np.zeros((28, 28), np.uint8)
    assert sketchdraw.draw(empty, 3, np.random.default_rng(0)) is None
    frames = sketchdraw.drawn_frames(np.stack([empty, top()]), np.array([3, 0]), seed=0)
    assert (frames[0] == 0).all() and frames[1].max() > 100


def test_frames_are_the_pages_frames_and_repeat_for_a_seed():
    photos = np.stack([top(10 + i % 8, 14 + i % 10) for i in range(12)])
    labels = np.arange(12) % 10
    a = sketchdraw.drawn_frames(photos, labels, seed=0)
    assert a.shape == (12, 28, 28) and a.dtype == np.uint8
    assert (a == sketchdraw.drawn_frames(photos, labels, seed=0)).all()
    assert (a != sketchdraw.drawn_frames(photos, labels, seed=1)).any()
    # framed as the page frames drawings: the item spans the frame, the inside is filled
    rows = np.flatnonzero((a[0] > 40).any(1))
    cols = np.flatnonzero((a[0] > 40).any(0))
    assert max(np.ptp(rows), np.ptp(cols)) >= 25
    assert (a > 40).mean() > 0.2  # filled: an outline alone covers far less


def test_drawings_are_cached_and_a_damaged_cache_is_made_again(monkeypatch, tmp_path, caplog):
    monkeypatch.setenv("FMNIST_CACHE_DIR", str(tmp_path))
    photos = np.stack([top(12, 18), top(16, 20), top(20, 14)])
    labels = np.array([0, 4, 8])
    first = sketchdraw.drawings(photos, labels, versions=2)
    assert first.shape == (2, 3, 28, 28)
    files = sorted(sketchdraw.cache_dir().glob("*.npy"))
    assert len(files) == 2

    def refuse(*_args):
        raise AssertionError("made again although cached")

    with monkeypatch.context() as m:
        m.setattr(sketchdraw, "drawn_frames", refuse)
        assert (sketchdraw.drawings(photos, labels, versions=2) == first).all()
    files[0].write_bytes(b"not a numpy file")
    with caplog.at_level(logging.WARNING, logger="fmnist_core.sketchdraw"):
        again = sketchdraw.drawings(photos, labels, versions=2)
    assert (again == first).all()
    assert "damaged drawings cache" in caplog.text
    assert np.load(files[0]).shape == (3, 28, 28)  # rewritten


def test_with_drawings_replaces_about_half_with_a_drawing_of_the_same_image():
    n = 200  # image i's drawings are flat images of value i + 1 (version 0) or 254 - i (1)
    ids = torch.arange(1, n + 1, dtype=torch.uint8).view(1, n, 1, 1)
    drawn = ids.expand(2, n, 28, 28).clone()
    drawn[1] = 255 - drawn[1]
    take = torch.randperm(n)[:160]  # a batch: indices into the training set
    out = with_drawings(torch.zeros(160, 1, 28, 28), drawn, take, torch.Generator().manual_seed(0))
    replaced = out.flatten(1).amax(1) > 0
    assert 0.35 < replaced.float().mean() < 0.65
    values = (out[replaced, 0, 0, 0] * 255).round().long()
    own = take[replaced] + 1
    assert ((values == own) | (values == 255 - own)).all()  # the same image's drawing
    assert (values == own).any() and (values == 255 - own).any()  # both versions used
    small = with_drawings(torch.zeros(8, 1, 16, 16), drawn, take[:8], torch.Generator())
    assert small.shape == (8, 1, 16, 16)


@pytest.mark.usefixtures("tiny_env")
def test_the_sketch_preset_trains_on_drawings(monkeypatch, tmp_path, tiny_data_dir):
    monkeypatch.setenv("FMNIST_CACHE_DIR", str(tmp_path))
    cfg = preset("sketch").replace(epochs=1, batch_size=100, amp=False)
    events = list(train(cfg, load_tensors(28, tiny_data_dir)))
    assert events[-1].status == "finished", events[-1]
    assert len(list(sketchdraw.cache_dir().glob("*.npy"))) == sketchdraw.VERSIONS


@pytest.mark.usefixtures("tiny_env")
def test_a_stop_while_drawing_ends_the_run_and_caches_nothing(monkeypatch, tmp_path, tiny_data_dir):
    monkeypatch.setenv("FMNIST_CACHE_DIR", str(tmp_path))
    stop = threading.Event()
    stop.set()  # the user stops before the first chunk of drawings is made
    cfg = preset("sketch").replace(epochs=1, batch_size=100, amp=False)
    events = list(train(cfg, load_tensors(28, tiny_data_dir), stop=stop))
    assert [type(e).__name__ for e in events] == ["RunEnd"]
    assert events[0].status == "stopped" and events[0].epochs_done == 0
    assert not list(tmp_path.glob("*.npy"))


def test_sketch_preset_turns_it_on_and_others_do_not():
    assert PRESETS["sketch"].sketch_augment and PRESETS["sketch"].arch == "bn3"
    assert not any(p.sketch_augment for n, p in PRESETS.items() if n != "sketch")
    assert TrainConfig.from_dict(PRESETS["sketch"].to_dict()) == PRESETS["sketch"]
