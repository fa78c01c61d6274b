"""Small Playwright helpers for Streamlit pages: open a page, wait, find errors.

Everything waits on a visible condition with a deadline; nothing sleeps a fixed time.
"""

from __future__ import annotations

from playwright.sync_api import Locator, Page, expect

# Page URLs: Streamlit derives them from pages/<n>_<Name>.py.
HOME, TRAIN, CONFUSION, SKETCH = "/", "/Train", "/Confusion_matrix", "/Sketch"
APP_IDLE = '[data-testid="stApp"][data-test-script-state="notRunning"]'
EXCEPTION = '[data-testid="stException"]'
ERROR_BOX = '[data-testid="stAlertContentError"]'
LOAD_S = 60  # first load of a page imports torch, reads the data, maybe loads a model


def wait_idle(page: Page, timeout_s: float = LOAD_S) -> None:
    """Wait until the script run of the page has finished (Streamlit's own state marker)."""
    page.wait_for_selector(APP_IDLE, state="attached", timeout=timeout_s * 1000)


def open_page(page: Page, path: str) -> None:
    """Load ``path``; wait for the first script run and for every widget to be drawn.

    A fresh browser loads each widget's code lazily: until then it is a grey skeleton.
    """
    page.goto(path)
    wait_idle(page)
    expect(page.get_by_test_id("stMain")).to_be_visible()
    expect(page.get_by_test_id("stSkeletonElement")).to_have_count(0, timeout=LOAD_S * 1000)


def main(page: Page) -> Locator:
    return page.get_by_test_id("stMain")


def sidebar(page: Page) -> Locator:
    return page.get_by_test_id("stSidebar")


def error_texts(page: Page) -> list[str]:
    """The texts of every exception box and st.error box on the page (sidebar included)."""
    return page.locator(f"{EXCEPTION}, {ERROR_BOX}").all_inner_texts()


def assert_no_errors(page: Page) -> None:
    texts = error_texts(page)
    assert not texts, f"error/exception boxes on {page.url}: {texts}"


def plotly_point(chart: Locator, x: float, y: float) -> tuple[float, float]:
    """Viewport pixel of data point (x, y) of the first axes (category axes: the index).

    Uses Plotly's own layout in the DOM (axis offsets and ``l2p``), so it follows margins,
    reversed axes and resizing; scroll the chart into view before using the result.
    """
    plot = chart.locator(".js-plotly-plot")
    plot.scroll_into_view_if_needed()
    return tuple(
        plot.evaluate(
            """(gd, [x, y]) => {
                const fl = gd._fullLayout, box = gd.getBoundingClientRect();
                return [box.left + fl.xaxis._offset + fl.xaxis.l2p(x),
                        box.top + fl.yaxis._offset + fl.yaxis.l2p(y)];
            }""",
            [x, y],
        )
    )


def heatmap_texts(chart: Locator) -> list[str]:
    """The numbers written in a Plotly heatmap's cells, row by row, as rendered in the SVG."""
    return chart.locator(".heatmap-label").all_text_contents()


def draw_stroke(page: Page, box: dict[str, float], points: list[tuple[float, float]]) -> None:
    """One mouse stroke through ``points`` given as fractions (0..1) of ``box``."""
    xy = [(box["x"] + fx * box["width"], box["y"] + fy * box["height"]) for fx, fy in points]
    page.mouse.move(*xy[0])
    page.mouse.down()
    for x, y in xy[1:]:
        page.mouse.move(x, y, steps=6)
    page.mouse.up()


def draw_on_canvas(page: Page, strokes: list[list[tuple[float, float]]]) -> None:
    """Draw ``strokes`` (fractions of the canvas) on the Sketch page's canvas."""
    upper = main(page).locator("canvas.upper-canvas")  # fabric.js's mouse layer
    upper.scroll_into_view_if_needed()
    box = upper.bounding_box()
    assert box, "no drawing canvas on the page"
    for stroke in strokes:
        draw_stroke(page, box, stroke)
