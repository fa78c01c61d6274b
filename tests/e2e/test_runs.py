"""The Runs page in a real browser: select two runs with different learning rates, see both
curves on one chart and only the differing parameter in the table, rename one, delete one."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from fmnist_core.runs import find_run, list_runs
from tests.fake_runs import make_run

from .conftest import screenshot
from .ui import assert_no_errors, main, open_page, wait_idle

RUNS = "/Runs"
ROW_PX = 35  # Streamlit's default row (and header) height in st.dataframe


@pytest.fixture
def two_runs(server) -> Iterator[list[str]]:
    """Two runs that differ only in the learning rate; the table's order (newest first)."""
    ids = {make_run(server.runs_dir, lr=0.1, accs=(0.5, 0.7, 0.75)),
           make_run(server.runs_dir, lr=0.02, accs=(0.4, 0.6, 0.8))}  # fmt: skip
    yield [r.id for r in list_runs(server.runs_dir) if r.id in ids]
    for run_id in ids:  # the session's other tests expect their own runs only
        shutil.rmtree(server.runs_dir / run_id, ignore_errors=True)


def click_row(page: Page, index: int) -> None:
    """Tick the checkbox of data row ``index`` (the row marker column, left of the cells)."""
    grid = page.get_by_test_id("stDataFrame")
    box = grid.bounding_box()
    assert box is not None
    page.mouse.click(box["x"] + 18, box["y"] + ROW_PX * (index + 1) + ROW_PX / 2)
    wait_idle(page)


def test_compare_rename_delete(page: Page, server, two_runs: list[str]) -> None:
    open_page(page, RUNS)
    expect(main(page).get_by_role("heading", level=1)).to_contain_text("Runs")
    all_ids = [r.id for r in list_runs(server.runs_dir)]
    for run_id in two_runs:
        click_row(page, all_ids.index(run_id))
    caption = main(page).get_by_text("Parameters shown: those that differ between the selected")
    expect(caption).to_contain_text("(lr)")
    chart = main(page).locator(".js-plotly-plot").first
    expect(chart).to_be_visible()
    names = chart.evaluate("gd => gd.data.filter(t => t.xaxis !== 'x2').map(t => t.name)")
    assert sorted(n[-5:-1] for n in names) == sorted(i[-4:] for i in two_runs)
    # Rename the run shown in the actions panel (the last selected), then delete it.
    focus = main(page).get_by_label("Name")
    focus.fill("low lr")
    main(page).get_by_role("button", name="Rename").click()
    wait_idle(page)
    expect(main(page).get_by_text("Renamed")).to_be_visible()
    renamed = [i for i in two_runs if find_run(i, server.runs_dir).name == "low lr"]
    assert len(renamed) == 1
    main(page).get_by_role("button", name="Delete").click()
    wait_idle(page)
    main(page).get_by_role("button", name="Yes, delete").click()
    wait_idle(page)
    expect(main(page).get_by_text(f"Deleted {renamed[0]}")).to_be_visible()
    assert renamed[0] not in [r.id for r in list_runs(server.runs_dir)]
    assert_no_errors(page)
    for width in (1400, 800):  # for a look at the layout (tests/e2e/screenshots/)
        page.set_viewport_size({"width": width, "height": 1000})
        wait_idle(page)
        screenshot(page, f"runs-page-{width}px")
