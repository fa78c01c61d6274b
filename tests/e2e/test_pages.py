"""Every page loads in a real browser without an error or exception box (issue 6, scenario 6).

A trained run exists, so the pages that browse runs show their full content, not the
"train a model first" message.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from .ui import CONFUSION, HOME, SKETCH, TRAIN, assert_no_errors, main, open_page

PAGES = {  # URL -> its title
    HOME: "Watch a CNN learn Fashion-MNIST",
    TRAIN: "Train",
    CONFUSION: "Confusion matrix",
    SKETCH: "Sketch",
}


@pytest.mark.parametrize("path", list(PAGES))
def test_page_loads_without_errors(page: Page, path: str, trained_run_id: str) -> None:
    open_page(page, path)
    expect(main(page).get_by_role("heading", level=1)).to_contain_text(PAGES[path])
    # The sidebar of every page names the active model (a run id starts with its date).
    expect(page.get_by_test_id("stSidebar")).to_contain_text(re.compile(r"Active model: \d{8}-"))
    assert_no_errors(page)
