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
    """Load ``path`` and wait for the first script run to complete."""
    page.goto(path)
    wait_idle(page)
    expect(page.get_by_test_id("stMain")).to_be_visible()


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
