"""Every page at 800, 1024, 1280 and 1920 px wide: nothing overflows sideways, the Sketch
canvas and its tools lie inside the window (on a laptop's first screen: the whole canvas, and
the answer beside it), the confusion matrix's cells are square and readable. Screenshots of
each page at each width land in tests/e2e/screenshots/.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from .conftest import screenshot
from .ui import (
    CONFUSION,
    HOME,
    SKETCH,
    TRAIN,
    assert_no_errors,
    draw_on_canvas,
    main,
    open_page,
)

WIDTHS = (800, 1024, 1280, 1920)
HEIGHT = 900
PAGES = {"home": HOME, "train": TRAIN, "confusion": CONFUSION, "sketch": SKETCH, "runs": "/Runs"}
MIN_CELL_PX = 28  # a cell that shows its count legibly
# How far the page and its main block scroll sideways (0: nothing sticks out).
OVERFLOW = """() => {
    const doc = document.scrollingElement;
    const main = document.querySelector('[data-testid="stMain"]');
    return {page: doc.scrollWidth - doc.clientWidth,
            main: main ? main.scrollWidth - main.clientWidth : 0};
}"""
# The confusion heatmap's cell size: its drawn image over 10 cells a side (px).
CELL = """() => {
    const image = document.querySelector(
        '[data-testid="stPlotlyChart"] .js-plotly-plot .heatmaplayer image');
    const box = image.getBoundingClientRect();
    return {w: box.width / 10, h: box.height / 10};
}"""


def inside_window(page: Page, box: dict[str, float] | None, what: str, width: int) -> None:
    assert box is not None, f"no {what}"
    assert box["x"] >= 0 and box["x"] + box["width"] <= width + 0.5, (what, box, width)


@pytest.mark.parametrize("width", WIDTHS)
def test_every_page_fits_the_width(page: Page, width: int, active_trained_run: str) -> None:
    page.set_viewport_size({"width": width, "height": HEIGHT})
    for name, path in PAGES.items():
        open_page(page, path)
        expect(main(page).get_by_role("heading", level=1)).to_be_visible()
        screenshot(page, f"layout-{name}-{width}")
        overflow = page.evaluate(OVERFLOW)
        assert overflow == {"page": 0, "main": 0}, (name, width, overflow)
        assert_no_errors(page)


@pytest.mark.parametrize("width", WIDTHS)
def test_the_canvas_and_its_tools_are_inside_the_window(
    page: Page, width: int, active_trained_run: str
) -> None:
    page.set_viewport_size({"width": width, "height": HEIGHT})
    open_page(page, SKETCH)
    canvas = main(page).locator("canvas.upper-canvas")
    expect(canvas).to_be_visible()
    inside_window(page, canvas.bounding_box(), "canvas", width)
    for tool in ("Freehand", "Line", "Rectangle", "Circle", "Polygon"):
        button = main(page).get_by_role("radio", name=tool, exact=True)
        expect(button).to_be_visible()
        inside_window(page, button.bounding_box(), tool, width)
    inside_window(page, main(page).get_by_role("button", name="Clear").bounding_box(), "Clear",
                  width)  # fmt: skip


@pytest.mark.parametrize(("width", "height"), [(1280, 800), (1440, 900)])
def test_the_canvas_and_its_answer_are_on_a_laptops_first_screen(
    page: Page, width: int, height: int, active_trained_run: str
) -> None:
    page.set_viewport_size({"width": width, "height": height})
    open_page(page, SKETCH)
    canvas = main(page).locator("canvas.upper-canvas")
    expect(canvas).to_be_visible()
    box = canvas.bounding_box()  # in the window, nothing scrolled: drawable at once
    assert box is not None and box["y"] >= 0 and box["y"] + box["height"] <= height, box
    draw_on_canvas(page, [[(0.3, 0.3), (0.7, 0.3), (0.7, 0.7), (0.3, 0.7), (0.3, 0.3)]])
    answer = main(page).get_by_text("Prediction", exact=True)
    expect(answer).to_be_visible()
    seen = answer.bounding_box()  # beside the canvas, not below its controls
    assert seen is not None and seen["x"] > box["x"] + box["width"], (box, seen)
    assert seen["y"] < box["y"] + box["height"], (box, seen)


@pytest.mark.parametrize("width", WIDTHS)
def test_the_matrix_cells_are_square_and_readable(
    page: Page, width: int, active_trained_run: str
) -> None:
    page.set_viewport_size({"width": width, "height": HEIGHT})
    open_page(page, CONFUSION)
    expect(main(page).get_by_test_id("stPlotlyChart").first).to_be_visible()
    cell = page.evaluate(CELL)
    assert cell["w"] >= MIN_CELL_PX and abs(cell["w"] - cell["h"]) < 1, (width, cell)
    table = main(page).get_by_test_id("stDataFrame").first
    inside_window(page, table.bounding_box(), "per-class table", width)
