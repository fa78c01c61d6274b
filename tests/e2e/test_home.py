"""Home page in a real browser: it loads cleanly, shows the data it found and links to pages."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from .conftest import N_TEST, N_TRAIN, Server
from .ui import HOME, assert_no_errors, main, open_page, sidebar


def test_home_loads_with_data_and_links(page: Page, server: Server) -> None:
    open_page(page, HOME)
    title = main(page).get_by_role("heading", name="Watch a CNN learn Fashion-MNIST")
    expect(title).to_be_visible()
    # The sidebar reports the test dataset the server was given, not the real one.
    expect(sidebar(page)).to_contain_text(f"{N_TRAIN:,} train + {N_TEST:,} test images")
    expect(sidebar(page)).to_contain_text(str(server.runs_dir))
    for name in ("Train", "Confusion matrix", "Sketch"):
        expect(main(page).get_by_role("link", name=name)).to_be_visible()
    assert_no_errors(page)
