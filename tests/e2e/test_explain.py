"""The Sketch page's "what the network sees" in a real browser: draw a T-shirt, see the maps,
filters and two Grad-CAM overlays, ask "why not" another class, move the epoch slider.

Screenshots at 800 and 1400 px wide land in tests/e2e/screenshots/explain-*.png; at both
widths every picture of the panel must fit inside the page (no horizontal overflow).
"""

from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import Locator, Page, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from fmnist_core import CLASSES
from fmnist_core.runs import find_run

from .conftest import Server, screenshot
from .test_sketch import T_SHIRT
from .ui import SKETCH, assert_no_errors, draw_on_canvas, main, open_page, wait_idle


def _pictures_fit(page: Page) -> None:
    right = main(page).bounding_box()
    assert right
    edge = right["x"] + right["width"]
    for img in main(page).locator('[data-testid="stImage"] img').all():
        box = img.bounding_box()
        assert box and box["x"] + box["width"] <= edge + 1, (box, edge)


def _pick(page: Page, box: Locator, option: re.Pattern, timeout_s: float = 60) -> None:
    """Open a select box and click ``option``. A rerun still in flight after the last stroke
    (the canvas sends its value a moment later) can redraw the box and close its list right
    after it opened, so the opening is retried until the option shows, within a deadline."""
    deadline = time.monotonic() + timeout_s
    while True:
        box.click()
        try:
            page.get_by_role("option", name=option).click(timeout=3000)
            return
        except PlaywrightTimeoutError:
            if time.monotonic() > deadline:
                raise
            page.keyboard.press("Escape")


# A model that learned something: an untrained one (FMNIST_TEST_PACE=fast) gives ~10% to
# every class, and a late canvas update can flip its top class onto the one the test picks.
@pytest.mark.learns
def test_panel_why_not_and_epoch_slider(page: Page, server: Server, active_trained_run: str):
    run = find_run(active_trained_run, server.runs_dir)
    page.set_viewport_size({"width": 1400, "height": 1000})
    open_page(page, SKETCH)
    # The shipped sketch model answers by default: pick the test's run (2 conv blocks, epochs).
    model_box = main(page).get_by_test_id("stSelectbox").filter(has_text="Model")
    _pick(page, model_box, re.compile(rf"^Active: {active_trained_run}"))
    wait_idle(page)
    main(page).get_by_text("Explain the answer").click()  # the panels are on demand
    wait_idle(page)
    draw_on_canvas(page, T_SHIRT)
    captions = main(page).get_by_test_id("stImageCaption")
    expect(main(page).get_by_text("What the network sees")).to_be_visible()
    # The predicted class, from its Grad-CAM caption (the answer may say "Not clothing?" for
    # this weak test model).
    evidence = captions.filter(has_text="(predicted, Grad-CAM)")
    expect(evidence).to_have_count(1)
    predicted = evidence.inner_text().split("Evidence for ")[1].split(" (predicted")[0]
    assert predicted in CLASSES
    expect(captions.filter(has_text="(picked, Grad-CAM)")).to_have_count(1)
    expect(captions.filter(has_text=re.compile(r"^First layer's \d+ filters"))).to_have_count(1)
    expect(captions.filter(has_text=re.compile(r"^Block \d+: "))).to_have_count(2)  # notebook

    wait_idle(page)  # a click during a rerun can land on a select box about to be replaced
    why_not = main(page).get_by_role("combobox", name="Why not...?")
    shown = why_not.input_value().split(" (")[0]  # the runner-up, picked by default
    other = next(c for c in ("Sandal", "Bag", "Trouser") if c not in (predicted, shown))
    _pick(page, why_not, re.compile(rf"^{other} \("))  # options read "Sandal (0.3%)"
    expect(captions.filter(has_text=f"Evidence for {other} (picked")).to_have_count(1)

    expect(captions.filter(has_text=f"Epoch {run.epochs[-1]}: ")).to_have_count(1)
    main(page).get_by_role("slider", name="Epoch").focus()
    page.keyboard.press("Home")
    expect(captions.filter(has_text=f"Epoch {run.epochs[0]}: ")).to_have_count(1)
    heading = main(page).get_by_text("What the network sees")
    for width in (1400, 800):
        page.set_viewport_size({"width": width, "height": 1000})
        wait_idle(page)
        _pictures_fit(page)
        heading.scroll_into_view_if_needed()
        screenshot(page, f"explain-{width}")
    assert_no_errors(page)
