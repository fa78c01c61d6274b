"""fmnist_core.sketchset: the fixed drawing set the sketch benchmark scores models on."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from fmnist_app import sketch as ui
from fmnist_core.data import CLASSES
from fmnist_core.runs import load_run
from fmnist_core.sketch import DEFAULT_MODEL_DIR, SKETCH_MODEL_DIR, predict, prepare
from fmnist_core.sketchset import CANVAS_PX, STYLES, TEMPLATES, render, score, sketch_set


def test_every_class_and_style_drawn_as_the_canvas_sends_it():
    drawings = sketch_set("test", per_class=8)
    assert CANVAS_PX == ui.CANVAS_PX
    assert [d.label for d in drawings] == [c for c in range(len(CLASSES)) for _ in range(8)]
    assert {d.style for d in drawings} == set(STYLES)
    for d in drawings:
        assert d.image.shape == (CANVAS_PX, CANVAS_PX, 4) and d.image.dtype == np.uint8
        assert (d.image[..., 3] == 255).all() and d.image[..., 0].max() > 200  # ink on black
        prepare(d.image)  # every one frames without an error


def test_long_sleeved_tops_differ_by_what_a_person_draws_in_every_style():
    """A coat's opening and a shirt's placket (marks inside the body, drawn in every style),
    not a plain silhouette, tell them from a pullover, whose plain outline is its drawing."""

    def marks_inside(template) -> bool:  # an ``opened`` stroke crossing the body's middle
        return any(
            min(y for _, y in s) < 0.5 < max(y for _, y in s) and all(0.4 < x < 0.6 for x, _ in s)
            for s in template.opened
        )

    assert all(marks_inside(t) for name in ("Coat", "Shirt") for t in TEMPLATES[name])
    assert not any(t.opened for t in TEMPLATES["Pullover"])
    coat = TEMPLATES["Coat"][0]
    for style in STYLES:  # the opening and collar are drawn in every style, not only ``detail``
        bare = dataclasses.replace(coat, opened=())
        ink = [render(t, style, 6, np.random.default_rng(0))[..., 0] > 127 for t in (coat, bare)]
        if style != "filled":  # a dense fill covers them, as on the canvas
            assert (ink[0] & ~ink[1]).sum() > 500


def test_the_set_is_fixed_and_the_splits_differ():
    a, b = sketch_set("test", 3), sketch_set("test", 3)
    assert all(np.array_equal(x.image, y.image) for x, y in zip(a, b, strict=True))
    dev = sketch_set("dev", 3)
    assert not any(np.array_equal(x.image, y.image) for x, y in zip(a, dev, strict=True))
    with pytest.raises(ValueError, match="unknown split"):
        sketch_set("train")


def test_score_against_a_hand_made_answer():
    drawings = sketch_set("test", per_class=2)
    probs = np.zeros((len(drawings), len(CLASSES)))
    for i, d in enumerate(drawings):  # right for the first of each class, else 2nd choice
        probs[i, d.label] = 0.6 if i % 2 == 0 else 0.3
        probs[i, (d.label + 1) % len(CLASSES)] = 0.4
    s = score(probs, drawings)
    assert s.overall_top1 == 0.5 and (s.top1 == 0.5).all() and (s.top3 == 1.0).all()
    assert s.confusion.sum() == len(drawings) and np.trace(s.confusion) == len(CLASSES)


def test_the_shipped_sketch_model_recognises_drawings_better_than_the_photo_model():
    drawings = sketch_set("dev")  # 24 a class: measured 79.6% vs 51.7% (README)

    def top1(folder) -> float:
        model = load_run(folder).load_model()
        probs = np.array([predict(model, prepare(d.image).tensor) for d in drawings])
        return score(probs, drawings).overall_top1

    assert top1(SKETCH_MODEL_DIR) > top1(DEFAULT_MODEL_DIR) + 0.1
