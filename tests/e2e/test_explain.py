"""The Sketch page's "what the network sees" in a real browser: draw a T-shirt, see the maps,
filters and two Grad-CAM overlays, ask "why not" another class, move the epoch slider.

Screenshots at 800 and 1400 px wide land in tests/e2e/screenshots/explain-*.png; at both
widths every picture of the panel must fit inside the page (no horizontal overflow).
"""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from fmnist_core import CLASSES
from fmnist_core.runs import find_run

from .conftest import Server, screenshot
from .test_sketch import T_SHIRT
from .ui import SKETCH, assert_no_errors, draw_stroke, main, open_page, wait_idle


def _draw_t_shirt(page: Page) -> None:
    upper = main(page).locator("canvas.upper-canvas")  # fabric.js's mouse layer
    upper.scroll_into_view_if_needed()
    box = upper.bounding_box()
    assert box
    for stroke in T_SHIRT:
        draw_stroke(page, box, stroke)


def _pictures_fit(page: Page) -> None:
    right = main(page).bounding_box()
    assert right
    edge = right["x"] + right["width"]
    for img in main(page).locator('[data-testid="stImage"] img').all():
        box = img.bounding_box()
        assert box and box["x"] + box["width"] <= edge + 1, (box, edge)


def test_panel_why_not_and_epoch_slider(page: Page, server: Server, active_trained_run: str):
    run = find_run(active_trained_run, server.runs_dir)
    page.set_viewport_size({"width": 1400, "height": 1000})
    open_page(page, SKETCH)
    _draw_t_shirt(page)
    captions = main(page).get_by_test_id("stImageCaption")
    expect(main(page).get_by_text("What the network sees")).to_be_visible()
    predicted = main(page).get_by_test_id("stMetricValue").inner_text().strip()
    assert predicted in CLASSES
    expect(captions.filter(has_text=f"Evidence for {predicted} (predicted")).to_have_count(1)
    expect(captions.filter(has_text="(picked, Grad-CAM)")).to_have_count(1)
    expect(captions.filter(has_text=re.compile(r"^First layer's \d+ filters"))).to_have_count(1)
    expect(captions.filter(has_text=re.compile(r"^Block \d+: "))).to_have_count(2)  # notebook

    other = "Sandal" if predicted != "Sandal" else "Bag"
    main(page).get_by_role("combobox", name="Why not...?").click()
    # Click the option itself once the list shows it (typing + Enter raced the list's opening
    # on a loaded machine: Enter came before the filtered list and picked nothing).
    page.get_by_role("option", name=re.compile(rf"^{other} \(")).click()  # "Sandal (0.3%)"
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
