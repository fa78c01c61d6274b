"""The Sketch page's probability bars (fmnist_app/bars.py), read back from their HTML."""

from __future__ import annotations

import re

import pytest

from fmnist_app.bars import OTHER, TOP, TRUE, probability_bars
from fmnist_core.data import CLASSES


def rows(html: str) -> list[str]:
    return re.findall(r'<div title="[^"]*".*?</div>', html)


def test_one_row_per_class_with_its_bar_and_percentage():
    probs = [0.02] * 10
    probs[7], probs[9] = 0.7, 0.14
    html = probability_bars(probs, CLASSES, true_label=9)
    shown = rows(html)
    assert len(shown) == 10
    widths = [float(w) for w in re.findall(r"width:([\d.]+)%", html)]
    assert widths == pytest.approx([100 * p for p in probs])
    assert [re.search(r">(\d+\.\d%)</span></div>", r).group(1) for r in shown][7::2] == [
        "70.0%",
        "14.0%",
    ]
    # The top class is bold and highlighted, every other bar plain; the true class checked.
    assert [i for i, r in enumerate(shown) if TOP in r] == [7] and "<b>Sneaker</b>" in shown[7]
    assert sum(OTHER in r for r in shown) == 9
    assert [i for i, r in enumerate(shown) if TRUE in r] == [9] and "Ankle boot ✓" in shown[9]


def test_names_are_escaped_and_a_length_mismatch_is_refused():
    html = probability_bars([0.5, 0.5], ["<script>", "a&b"])
    assert "<script>" not in html and "&lt;script&gt;" in html and "a&amp;b" in html
    with pytest.raises(ValueError, match="3 probabilities for 2 classes"):
        probability_bars([0.2, 0.3, 0.5], ["a", "b"])
