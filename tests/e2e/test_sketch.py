"""Sketch page in a real browser: mouse strokes on the canvas, the prediction, Clear.

The expected prediction is computed here from the canvas's own pixels (read in the browser)
with the library and the run's model, so a canvas that is not wired to the prediction, or
the wrong model, fails the test.
"""

from __future__ import annotations

import re

import numpy as np
from playwright.sync_api import Locator, Page, expect

from fmnist_core import CLASSES, ood
from fmnist_core.runs import load_run
from fmnist_core.sketch import SKETCH_MODEL_DIR, prepare

from .conftest import Server, screenshot
from .ui import SKETCH, assert_no_errors, draw_on_canvas, main, open_page

EMPTY_MESSAGE = "Draw something on the canvas"
# A T-shirt outline: body, sleeves, neck; fractions of the canvas.
T_SHIRT = [
    [(0.35, 0.2), (0.15, 0.35), (0.25, 0.45), (0.32, 0.4), (0.32, 0.85), (0.68, 0.85)],
    [(0.68, 0.85), (0.68, 0.4), (0.75, 0.45), (0.85, 0.35), (0.65, 0.2), (0.35, 0.2)],
]
READ_PIXELS = """c => Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data)"""


def canvas_rgba(drawing: Locator) -> np.ndarray:
    """The drawing layer's pixels (H, W, 4) as the browser holds them."""
    size = drawing.evaluate("c => [c.height, c.width]")
    return np.array(drawing.evaluate(READ_PIXELS), dtype=np.uint8).reshape(*size, 4)


def shown_probs(bars: Locator) -> list[float]:
    """The bars' percentages ('12.3%'), top to bottom (= class order); a row's title is
    'Class: 12.34%' (fmnist_app/bars.py)."""
    rows = bars.locator("div[title]")
    expect(rows).to_have_count(len(CLASSES))
    return [float(t.rsplit(" ", 1)[1].rstrip("%")) / 100
            for t in rows.evaluate_all("rows => rows.map(r => r.title)")]  # fmt: skip


def test_draw_predict_and_clear(page: Page, server: Server, active_trained_run: str) -> None:
    open_page(page, SKETCH)
    model = main(page).get_by_role("combobox", name="Model")
    expect(model).to_have_value(re.compile(r"^Sketch model, shipped"))  # the default: drawings
    expect(main(page).get_by_text(EMPTY_MESSAGE)).to_be_visible()
    draw_on_canvas(page, T_SHIRT)

    expect(main(page).get_by_text("What the model sees (28x28)")).to_be_visible()
    expect(main(page).get_by_text(EMPTY_MESSAGE)).to_have_count(0)
    bars = main(page).get_by_label("Probability of each class")
    expect(bars).to_be_visible()
    drawing = main(page).locator("canvas.lower-canvas.dc-canvas")
    tensor = prepare(canvas_rgba(drawing), 28).tensor
    answer = ood.judge(load_run(SKETCH_MODEL_DIR).load_model(), tensor, ood.load(SKETCH_MODEL_DIR))
    shown = shown_probs(bars)
    np.testing.assert_allclose(shown, answer.probs, atol=0.00015)  # titles: rounded to 0.01 %
    prediction = main(page).get_by_test_id("stMetric")
    words = CLASSES[answer.top] if answer.clothing else "Not clothing?"
    expect(prediction).to_contain_text(f"Prediction{words}")

    screenshot(page, "sketch-drawn")

    main(page).get_by_role("button", name="Clear").click()
    expect(main(page).get_by_text(EMPTY_MESSAGE)).to_be_visible()
    expect(prediction).to_have_count(0)
    expect(bars).to_have_count(0)
    assert_no_errors(page)
