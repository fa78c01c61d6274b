"""Learning page in a real browser: each view renders, a scatter point opens its image, the
epoch slider moves the feature scatter on fixed axes, calibration shows both ECEs.

The run is the ``active_trained_run`` fixture's (2 weak epochs); the expected numbers are
computed here from its saved predictions with fmnist_core.dynamics' tested functions.
"""

from __future__ import annotations

import json

import pytest
from playwright.sync_api import Locator, Page, expect

from fmnist_core import CLASSES
from fmnist_core import dynamics as dyn
from fmnist_core.runs import find_run

from .conftest import Server, screenshot
from .test_confusion import drag_slider_to_start, expected_matrix, gallery_heading, pick_cell
from .ui import CONFUSION, assert_no_errors, main, open_page, plotly_point, sidebar, wait_idle

LEARNING = "/Learning"


def metric_value(page: Page, label: str) -> Locator:
    box = main(page).get_by_test_id("stMetric").filter(has_text=label)
    return box.get_by_test_id("stMetricValue")


def section(page: Page, name: str) -> None:
    main(page).get_by_test_id("stButtonGroup").get_by_text(name).click()
    wait_idle(page)


def scatter_state(chart: Locator) -> dict:
    """The x range and the first trace's first point, read from Plotly's own data."""
    return json.loads(
        chart.locator(".js-plotly-plot").evaluate(
            "gd => JSON.stringify({range: gd._fullLayout.xaxis.range, x: gd.data[0].x[0],"
            " id: gd.data[0].customdata[0], y: gd.data[0].y[0]})"
        )
    )


# The scatter must move between epochs: under FMNIST_TEST_PACE=fast the weights never change.
@pytest.mark.learns
def test_learning_views(page: Page, server: Server, active_trained_run: str) -> None:
    run = find_run(active_trained_run, server.runs_dir)
    preds, _, labels = dyn.run_predictions(run)
    tl = dyn.timeline(dyn.correctness(preds, labels), run.epochs)
    open_page(page, LEARNING)
    expect(metric_value(page, "Never learned")).to_have_text(f"{int(tl.never.sum()):,}")
    expect(metric_value(page, "Forgotten")).to_have_text(f"{int((tl.forgotten > 0).sum()):,}")
    expect(main(page).get_by_test_id("stPlotlyChart")).to_have_count(3)  # learned at + flips
    assert_no_errors(page)

    section(page, "Feature space")
    chart = main(page).get_by_test_id("stPlotlyChart").first
    expect(chart.locator(".scatterlayer .point").first).to_be_attached()
    before = scatter_state(chart)
    # a mouse click where the first trace's first point is drawn (Plotly takes clicks on its
    # drag layer and picks the nearest point: one of that trace's, the clusters being apart)
    page.mouse.click(*plotly_point(chart, before["x"], before["y"]))
    heading = main(page).get_by_text("Test image #")
    expect(heading).to_be_visible()
    assert f"(true {CLASSES[int(labels[before['id']])]})" in heading.inner_text()
    drag_slider_to_start(page, main(page).get_by_test_id("stSlider"))
    page.wait_for_function(
        """x0 => {
            const gd = document.querySelector('[data-testid="stMain"] .js-plotly-plot');
            return gd && gd.data[0].x[0] !== x0;
        }""",
        arg=before["x"],
    )
    after = scatter_state(main(page).get_by_test_id("stPlotlyChart").first)
    assert after["range"] == before["range"]  # the axes stay put between epochs
    assert after["id"] == before["id"]  # the same image, elsewhere
    assert_no_errors(page)

    section(page, "Calibration")
    cals = dyn.run_calibration(run)
    expect(metric_value(page, "ECE as saved")).to_have_text(f"{cals[-1].ece:.2%}")
    expect(metric_value(page, "ECE after temperature scaling")).to_have_text(
        f"{cals[-1].ece_scaled:.2%}"
    )
    expect(main(page).get_by_text("Most confidently wrong")).to_be_visible()
    assert_no_errors(page)


def fits(page: Page) -> None:
    """Nothing in the main area is wider than the area (no sideways scrolling)."""
    widths = main(page).evaluate("m => [m.scrollWidth, m.clientWidth]")
    assert widths[0] <= widths[1] + 1, widths


def test_each_view_fits_at_800_px(page: Page, server: Server, active_trained_run: str) -> None:
    page.set_viewport_size({"width": 800, "height": 1000})
    open_page(page, LEARNING)
    fits(page)
    for name in ("Feature space", "Calibration"):
        section(page, name)
        expect(main(page).get_by_test_id("stPlotlyChart").first.locator(".main-svg").first)\
            .to_be_attached()  # fmt: skip
        fits(page)
        screenshot(page, f"learning-{name.split()[0].lower()}-800")
    assert_no_errors(page)


def test_a_confusion_cell_is_highlighted_in_the_scatter(
    page: Page, server: Server, active_trained_run: str
) -> None:
    cm = expected_matrix(server, active_trained_run, 2)
    open_page(page, CONFUSION)
    chart = main(page).get_by_test_id("stPlotlyChart")
    true, pred = pick_cell(page, cm)
    page.mouse.click(*plotly_point(chart, pred, true))  # x = predicted, y = true class
    expect(gallery_heading(page, true, pred, int(cm[true, pred]))).to_be_visible()
    sidebar(page).get_by_role("link", name="Learning").click()  # the app's own page links
    wait_idle(page)
    section(page, "Feature space")  # the Confusion page's values are gone by now
    caption = f"{int(cm[true, pred])} of the shown images are true {CLASSES[true]} predicted"
    expect(main(page).get_by_text(caption)).to_be_visible()  # the whole test set is shown
    assert_no_errors(page)
