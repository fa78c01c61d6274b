"""Confusion-matrix page in a real browser: mouse clicks on the heatmap, the epoch slider.

The run is trained by the ``active_trained_run`` fixture (2 weak epochs), so the expected
matrices are computed here from its saved predictions, independently of the page's code.
"""

from __future__ import annotations

import contextlib
import re

import numpy as np
import pytest
from playwright.sync_api import Locator, Page, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from fmnist_core import CLASSES
from fmnist_core.runs import find_run

from .conftest import Server
from .ui import CONFUSION, assert_no_errors, heatmap_texts, main, open_page, plotly_point

GALLERY_MAX = 24  # images on the first page of the gallery
SHORT_CAPTION = re.compile(r"#\d+ · \d+% sure")  # one line under each gallery image


def expected_matrix(server: Server, run_id: str, epoch: int) -> np.ndarray:
    run = find_run(run_id, server.runs_dir)
    preds = run.probs(epoch).float().argmax(1).numpy()
    labels = run.labels().long().numpy()
    return np.bincount(labels * 10 + preds, minlength=100).reshape(10, 10)


def as_texts(cm: np.ndarray) -> list[str]:
    return [str(int(c)) for c in cm.flatten()]


def gallery_heading(page: Page, true: int, pred: int, count: int) -> Locator:
    text = f"{count} test image(s) with true {CLASSES[true]} predicted {CLASSES[pred]}"
    return main(page).get_by_test_id("stMarkdown").filter(has_text=text)


def wait_matrix(page: Page, chart: Locator, cm: np.ndarray) -> None:
    """Wait (with the default timeout) until the heatmap shows exactly ``cm``.

    Queried afresh on every poll: Streamlit replaces the chart's DOM when the figure changes.
    """
    with contextlib.suppress(PlaywrightTimeoutError):  # the assert below says what differs
        page.wait_for_function(
            """want => {
                const sel = '[data-testid="stMain"] [data-testid="stPlotlyChart"] .heatmap-label';
                const got = Array.from(document.querySelectorAll(sel), t => t.textContent);
                return got.join(',') === want.join(',');
            }""",
            arg=as_texts(cm),
        )
    shown = heatmap_texts(chart)
    assert shown == as_texts(cm), f"matrix shown:\n{shown}\nexpected:\n{cm}"


def pick_cell(page: Page, cm: np.ndarray) -> tuple[int, int]:
    """A non-empty off-diagonal cell that the gallery does not show yet (fewest images first)."""
    cells = [(int(cm[t, p]), t, p) for t in range(10) for p in range(10) if t != p and cm[t, p]]
    for count, true, pred in sorted(cells):
        if gallery_heading(page, true, pred, count).count() == 0:
            return true, pred
    raise AssertionError(f"no off-diagonal cell to click in {cm.tolist()}")


def expect_gallery(page: Page, true: int, pred: int, count: int) -> None:
    """Exactly ``count`` images, each with one short caption; the details of each (naming the
    (true, pred) pair) are on its Open button's tooltip."""
    captions = main(page).get_by_test_id("stCaptionContainer").filter(has_text=SHORT_CAPTION)
    expect(captions).to_have_count(count)  # waits out the previous cell's images
    for caption in captions.all():
        assert SHORT_CAPTION.fullmatch(caption.inner_text().strip()), caption.inner_text()
    expect(main(page).get_by_test_id("stImage")).to_have_count(count)


def drag_slider_to_start(page: Page, slider: Locator) -> None:
    # The thumb is the parent of its value label (role=slider is a 1-px hidden input).
    thumb = slider.get_by_test_id("stSliderThumbValue").locator("..")
    thumb.scroll_into_view_if_needed()
    box, track = thumb.bounding_box(), slider.get_by_test_id("stSliderTickBar").bounding_box()
    assert box and track
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.mouse.move(track["x"] - 20, box["y"] + box["height"] / 2, steps=8)
    page.mouse.up()


@pytest.mark.learns
def test_click_cell_shows_its_images_and_epoch_slider_changes_matrix(
    page: Page, server: Server, active_trained_run: str
) -> None:
    cm2, cm1 = (expected_matrix(server, active_trained_run, e) for e in (2, 1))
    assert (cm1 != cm2).any(), "the fixture run must change between epochs for this test"
    open_page(page, CONFUSION)
    chart = main(page).get_by_test_id("stPlotlyChart")
    wait_matrix(page, chart, cm2)  # the active run's last epoch by default

    true, pred = pick_cell(page, cm2)
    page.mouse.click(*plotly_point(chart, pred, true))  # x = predicted, y = true class
    expect(gallery_heading(page, true, pred, int(cm2[true, pred]))).to_be_visible()
    # The click is answered where the user looks: a toast, and the images scrolled into view.
    expect(page.get_by_test_id("stToast")).to_contain_text(f"predicted {CLASSES[pred]}")
    expect(main(page).get_by_role("heading", name="Test images behind a cell")).to_be_in_viewport()
    expect_gallery(page, true, pred, min(int(cm2[true, pred]), GALLERY_MAX))

    drag_slider_to_start(page, main(page).get_by_test_id("stSlider"))
    wait_matrix(page, chart, cm1)
    expect(main(page).get_by_text(f"epoch 1 of run {active_trained_run}")).to_be_visible()
    expect(gallery_heading(page, true, pred, int(cm1[true, pred]))).to_be_visible()
    assert_no_errors(page)
