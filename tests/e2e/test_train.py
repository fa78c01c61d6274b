"""Train page in a real browser: live chart and progress, Stop, a second tab, a refresh.

The server has one training job shared by every tab (fmnist_app.jobs). The tests set a
small config with the keyboard and mouse (2,000 images at 28x28 in batches of 16) and check
what the page shows against the run saved on disk. A run a test needs "still running" is held
by the server's test gate (fmnist_core.gate) at a chosen batch or epoch, never by a slow
config: the tests pass however fast or slow the machine trains.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from fmnist_core.config import RANGES
from fmnist_core.runs import find_run, list_runs

from .conftest import N_TRAIN, Server
from .ui import TRAIN, assert_no_errors, main, open_page, sidebar, wait_idle

BATCH = 16
MAX_EPOCHS = int(RANGES["epochs"][1])  # a run that is stopped long before its end
LIVE_EPOCHS = 10
TRAIL = ("points", "epoch", "step")  # of a live state, in failure messages
STEPS = -(-N_TRAIN // BATCH)  # per epoch
# A run id starts with its date; "..." stands in until the training process has made its run.
RUN_TITLE = re.compile(r"(?:Training|Paused): run (\d\S+)")
FINISH_S = 240  # a whole small run on a loaded machine
# What the live part of the page shows, read in one go (the browser redraws it every 0.8 s).
# Elements of the previous redraw stay, marked stale, until the new one replaces them: a new
# run's Stop button can sit above the last run's chart for a moment. Only fresh ones count.
LIVE_STATE = """() => {
    const main = document.querySelector('[data-testid="stMain"]');
    const fresh = sel => main.querySelectorAll(
        '[data-testid="stElementContainer"]:not([data-stale="true"]) ' + sel);
    // While the run goes the browser draws the live view itself (fmnist_app.live_feed: its
    // progress text, SVG lines and points); after it, the page's Vega-Lite chart.
    const live = fresh('.fm-live')[0];
    const chart = fresh('[data-testid="stVegaLiteChart"]')[0];
    // points and drawn: the test accuracy's markers (in both views; the Vega mark is named
    // after the line, see fmnist_core.live_chart.slug). Counted once the chart's lines are
    // drawn: a chart being drawn anew (a new spec at an epoch's end, a new width) has empty
    // marks for a moment, which is not a lost point.
    let points = null, drawn = null;
    if (live) {
        const lines = Array.from(live.querySelectorAll('path.fm-line'));
        if (lines.some(p => (p.getAttribute('d') || '').length > 0)) {
            const acc = live.querySelector('g.fm-points[data-series="test accuracy"]');
            points = drawn = acc ? acc.querySelectorAll('circle').length : 0;
        }
    } else {
        const lines = chart && chart.querySelector('g.left_lines_marks path');
        if (lines && (lines.getAttribute('d') || '').length > 0) {
            const acc = chart.querySelector('g.test_accuracy_points_marks');
            points = drawn = acc ? acc.querySelectorAll('path').length : 0;
        }
    }
    const bars = Array.from(fresh('[data-testid="stProgress"], .fm-live .fm-bar-text'),
        e => e.innerText);
    const overall = bars.map(t => /Overall: (\\d+)%/.exec(t)).find(m => m);
    const batchText = /Epoch (\\d+)\\/\\d+: batch ([\\d,]+)\\/([\\d,]+)/;
    const at = bars.map(t => batchText.exec(t)).find(m => m);
    const num = t => Number(t.replace(/,/g, ''));  // "1,234"
    const epoch = at ? num(at[1]) : null;  // the epoch in progress
    const step = at ? (epoch - 1) * num(at[3]) + num(at[2]) : null;  // batches done
    // A button's innerText starts with its Material icon's ligature ("stop Stop"): last word.
    const buttons = Array.from(fresh('button'), b => b.innerText.trim().split(/\\s+/).pop());
    const outcome = fresh('[data-testid="stAlertContentSuccess"], ' +
        '[data-testid="stAlertContentWarning"], [data-testid="stAlertContentError"]');
    return {points, drawn, epoch, step, overall: overall ? Number(overall[1]) : null,
            running: buttons.includes('Stop'), ended: outcome.length > 0};
}"""


def wait_live(page: Page, condition: str, timeout_s: float = 60) -> dict[str, Any]:
    """Wait until ``condition`` (JS over ``s``, the LIVE_STATE) holds; returns that state."""
    handle = page.wait_for_function(
        f"() => {{ const s = ({LIVE_STATE})(); return ({condition}) ? s : null; }}",
        timeout=timeout_s * 1000,
    )
    return handle.json_value()


def wait_chart_point_while_running(page: Page) -> None:
    """Wait for the live chart to show a point while the run goes on; fail when it ends first."""
    condition = "(s.running && s.points >= 1) || (s.ended && !s.running)"
    state = wait_live(page, condition, timeout_s=FINISH_S)
    assert state["running"] and state["points"] >= 1, f"the run ended first: {state}"


def record_live(page: Page) -> None:
    """Record every distinct LIVE_STATE the page renders from now on (see ``recorded``).

    A MutationObserver sees each redraw of the polling fragment, however briefly a state
    lasts, so the test does not depend on sampling at the right moment.
    """
    page.evaluate(
        f"""() => {{
            const read = {LIVE_STATE};
            window.__live = [];
            let last = '';
            new MutationObserver(() => {{
                const s = read(), key = JSON.stringify(s);
                if (key !== last) {{ last = key; window.__live.push(s); }}
            }}).observe(document.body, {{subtree: true, childList: true, characterData: true}});
        }}"""
    )


def recorded(page: Page) -> list[dict[str, Any]]:
    return page.evaluate("() => window.__live")


def click_slider(page: Page, label: str, fraction: float) -> None:
    """Click a slider's track at ``fraction`` of its width (react-aria moves the thumb there)."""
    slider = main(page).get_by_test_id("stSlider").filter(has_text=label)
    track = slider.locator('div[data-orientation="horizontal"][style*="position: relative"]')
    box = track.bounding_box()
    assert box, f"no {label} slider track"
    x = box["x"] + 0.5 + (box["width"] - 2) * fraction  # inside at the ends
    page.mouse.click(x, box["y"] + box["height"] / 2)


def click_epochs(page: Page, epochs: int) -> None:
    """Click the Epochs slider's track where ``epochs`` sits."""
    low, high = RANGES["epochs"][:2]
    click_slider(page, "Epochs", (epochs - low) / (high - low))


def set_small_config(page: Page, epochs: int) -> None:
    """28x28, batch 16, ``epochs`` epochs, all training images - with the mouse and keyboard.

    One change at a time, each waiting for its visible effect and the end of its rerun, so
    each assertion sees the page that change produced.
    """
    main(page).get_by_text("28x28", exact=True).click()
    expect(main(page).get_by_role("radio", name="28x28")).to_be_checked()
    wait_idle(page)
    caption = main(page).get_by_text(f"{N_TRAIN:,} training images in batches of")
    main(page).get_by_role("slider", name="Batch size").focus()
    page.keyboard.press("Home")  # the smallest batch: the most steps per epoch
    expect(caption).to_contain_text(f"batches of {BATCH} = {STEPS:,} steps per epoch")
    wait_idle(page)
    click_epochs(page, epochs)
    expect(caption).to_contain_text(f"in {epochs} epochs")
    wait_idle(page)


def start_training(page: Page, server: Server, epochs: int) -> str:
    """Set the config on the open Train page, click Train; returns the run id it shows."""
    set_small_config(page, epochs)
    main(page).get_by_role("button", name="Train", exact=True).click()
    title = main(page).get_by_role("heading", name=RUN_TITLE)
    expect(title).to_be_visible()
    run_id = RUN_TITLE.search(title.inner_text()).group(1)
    cfg = find_run(run_id, server.runs_dir).config  # the job runs what the widgets said
    assert (cfg.image_size, cfg.batch_size, cfg.epochs) == (28, BATCH, epochs), cfg
    return run_id


def train_button(page: Page):
    return main(page).get_by_role("button", name="Train", exact=True)


@pytest.fixture
def stop_leftover_training(
    server: Server, new_context: Callable[[], BrowserContext]
) -> Iterator[None]:
    """After the test, stop a training it left running (the job is shared by all tests)."""
    yield
    server.gate.release()
    if not any(run.status == "running" for run in list_runs(server.runs_dir)):
        return
    page = new_context().new_page()
    open_page(page, TRAIN)
    expect(train_button(page)).to_be_visible()
    if main(page).get_by_role("heading", name=RUN_TITLE).count():
        main(page).get_by_role("button", name="Stop").click()
    expect(train_button(page)).to_be_enabled(timeout=60_000)


@pytest.mark.usefixtures("stop_leftover_training")
def test_train_small_config_live_until_active(
    page: Page, server: Server, active_trained_run: str
) -> None:
    # Another run is the active model, so the new one must really be marked active (with
    # none marked, the newest finished run counts as active anyway).
    open_page(page, TRAIN)
    expect(sidebar(page)).to_contain_text(f"Active model: {active_trained_run}")
    record_live(page)
    epochs, gate = LIVE_EPOCHS, server.gate
    gate.hold("step", 1)
    run_id = start_training(page, server, epochs=epochs)
    gate.wait_held()
    wait_live(page, "s.running && s.step === 1 && s.overall === 0")
    gate.hold("epoch", 1)  # on to the end of epoch 1, held there: its point must show
    gate.wait_held()
    wait_live(page, f"s.running && s.step === {STEPS} && s.points === 1 && s.drawn === 1")
    gate.release()
    success = main(page).get_by_test_id("stAlertContentSuccess")
    saved = f"Saved as run {run_id}, now the active model"
    expect(success).to_contain_text(saved, timeout=FINISH_S * 1000)
    wait_live(page, f"!s.running && s.points === {epochs} && s.drawn === {epochs}")

    live = [s for s in recorded(page) if s["running"] and s["points"] is not None]
    points = [s["points"] for s in live]
    # A point per epoch: the chart showed points during the run (above), never lost one and
    # ends with one per epoch (above). It is not compared with the progress bars: they poll
    # on their own, more often than the chart.
    trail = "(points, epoch, batches done): " + str([tuple(s[k] for k in TRAIL) for s in live])
    assert points == sorted(points), trail
    for key in ("step", "overall"):  # the progress bars moved forward
        values = [s[key] for s in live if s[key] is not None]
        assert len(set(values)) >= 2 and values == sorted(values), (key, trail)
    expect(main(page).get_by_test_id("stDataFrame")).to_be_visible()
    expect(sidebar(page)).to_contain_text(f"Active model: {run_id} (finished, {epochs} ep")
    run = find_run(run_id, server.runs_dir)
    assert run.status == "finished" and run.epochs == list(range(1, epochs + 1))
    assert_no_errors(page)


@pytest.mark.usefixtures("stop_leftover_training")
def test_the_chart_gains_a_point_within_a_second_of_the_epochs_end(
    page: Page, server: Server
) -> None:
    """The gate holds the run right after epoch 1 ends (its row is in the record): from then
    the chart has 1 s to show the point. The run cannot move on meanwhile, however fast."""
    open_page(page, TRAIN)
    server.gate.hold("step", 1)
    run_id = start_training(page, server, epochs=MAX_EPOCHS)
    server.gate.wait_held()
    wait_live(page, "s.running && s.step === 1 && s.points === 0")
    settings = main(page).get_by_test_id("stExpander").first  # folded to its summary
    expect(settings).to_contain_text("Settings: seed+: 28x28")
    expect(main(page).get_by_role("slider", name="Batch size")).to_be_hidden()
    server.gate.hold("epoch", 1)
    server.gate.wait_held()  # the epoch's end is recorded; the job holds the next batch
    started = time.monotonic()
    wait_live(page, "s.running && s.points === 1 && s.drawn === 1", timeout_s=1.0)
    assert time.monotonic() - started <= 1.0
    main(page).get_by_role("button", name="Pause").click()
    expect(main(page).get_by_role("heading", name=re.compile("Paused: run"))).to_be_visible()
    main(page).get_by_role("button", name="Stop").click()  # Stop works while paused
    assert stopped_epochs(page, run_id) == 1
    assert_no_errors(page)


def stopped_epochs(page: Page, run_id: str) -> int:
    """Wait for the 'stopped' outcome of ``run_id``; returns its completed epochs."""
    warning = main(page).get_by_test_id("stAlertContentWarning").filter(has_text=run_id)
    expect(warning).to_contain_text("Stopped after")
    return int(re.search(r"Stopped after (\d+) completed epoch", warning.inner_text()).group(1))


@pytest.mark.usefixtures("stop_leftover_training")
def test_stop_mid_run_keeps_completed_epochs(page: Page, server: Server) -> None:
    open_page(page, TRAIN)
    server.gate.hold("epoch", 1)
    run_id = start_training(page, server, epochs=MAX_EPOCHS)
    server.gate.wait_held()
    wait_chart_point_while_running(page)
    main(page).get_by_role("button", name="Stop").click()
    done = stopped_epochs(page, run_id)
    assert done == 1
    wait_live(page, f"!s.running && s.drawn === {done}")  # the chart keeps its epochs
    expect(train_button(page)).to_be_enabled()
    run = find_run(run_id, server.runs_dir)
    assert run.status == "stopped" and run.epochs == list(range(1, done + 1))
    # Only finished runs become the active model.
    expect(sidebar(page)).not_to_contain_text(run_id)
    assert_no_errors(page)


@pytest.mark.usefixtures("stop_leftover_training")
def test_second_tab_sees_live_run_and_refresh_keeps_it(
    page: Page, server: Server, new_context: Callable[[], BrowserContext]
) -> None:
    open_page(page, TRAIN)
    gate = server.gate
    gate.hold("step", 1)
    run_id = start_training(page, server, epochs=MAX_EPOCHS)
    gate.wait_held()
    title = f"Training: run {run_id}"

    other = new_context().new_page()  # another browser session, same server
    open_page(other, TRAIN)
    expect(main(other).get_by_role("heading", name=title)).to_be_visible()
    expect(train_button(other)).to_be_disabled()
    expect(main(other).get_by_text("Train is disabled while a training runs")).to_be_visible()
    wait_live(other, "s.running && s.step === 1")
    gate.hold("step", 2)
    gate.wait_held()
    wait_live(other, "s.running && s.step === 2")  # it is live there too

    page.reload()
    expect(main(page).get_by_role("heading", name=title)).to_be_visible()
    wait_live(page, "s.running && s.step === 2")
    gate.hold("step", 3)
    gate.wait_held()
    wait_live(page, "s.running && s.step === 3")
    expect(train_button(page)).to_be_disabled()

    # A pause from one tab shows in the other without a reload: its live view asks the page
    # to look at the job once the record has been quiet for a while (fmnist_app/live_feed.js).
    main(other).get_by_role("button", name="Pause").click()
    paused = re.compile("Paused: run")
    expect(main(page).get_by_role("heading", name=paused)).to_be_visible(timeout=30_000)
    main(other).get_by_role("button", name="Stop").click()  # either tab controls the job
    stopped_epochs(other, run_id)
    stopped_epochs(page, run_id)  # the first tab sees the end without a reload
    assert_no_errors(page)
    assert_no_errors(other)


def test_quick_changes_in_a_row_all_stick(page: Page) -> None:
    """Three changes made without waiting for the page to redraw in between: all stick."""
    open_page(page, TRAIN)
    # A run the previous test stopped may still be ending (its settings folded): wait for
    # the server to be idle, then load the page afresh with the settings open.
    expect(train_button(page)).to_be_enabled(timeout=FINISH_S * 1000)
    open_page(page, TRAIN)
    caption = main(page).get_by_text(f"{N_TRAIN:,} training images in batches of")
    expect(caption).to_be_visible()
    epochs = 3
    # The second change reaches the server before the browser drew "Custom" in the preset
    # selector (set by the redraw after the first): it must not read as a pick of the preset.
    main(page).get_by_text("28x28", exact=True).click()
    # The slider by its thumb and the keyboard, not a click at coordinates: the first
    # change's redraw can move the slider between reading its box and clicking there.
    sliders = main(page).get_by_test_id("stSlider")
    sliders.filter(has_text="Batch size").get_by_role("slider").press("Home")  # 16, the first
    thumb = sliders.filter(has_text="Epochs").get_by_role("slider")
    thumb.press("Home")
    for _ in range(epochs - int(RANGES["epochs"][0])):
        thumb.press("ArrowRight")
    wait_idle(page)
    steps = f"{BATCH} = {STEPS:,} steps per epoch; {epochs * STEPS:,} steps in {epochs} epochs"
    expect(caption).to_contain_text(f"batches of {steps}")
    expect(main(page).get_by_role("radio", name="28x28")).to_be_checked()


@pytest.mark.usefixtures("stop_leftover_training")
def test_the_live_view_polls_the_record_once_per_interval_across_reruns(
    page: Page, server: Server
) -> None:
    """The browser fetches the run's record every 0.8 s (fmnist_app/live_feed.js), and the
    page's reruns (Pause, Resume, the quiet record's checks) render its component again: a
    second polling loop started by one (without its start guard this test saw 14 fetches in
    8 s) would double the cost watching puts on the training. Counted over a fixed window
    while the gate holds the run: a slower machine makes fewer fetches, never more."""
    open_page(page, TRAIN)
    server.gate.hold("step", 1)
    start_training(page, server, epochs=MAX_EPOCHS)
    server.gate.wait_held()
    wait_live(page, "s.running && s.step === 1")
    for name in ("Pause", "Resume", "Pause", "Resume"):  # four reruns of the whole page
        main(page).get_by_role("button", name=name).click()
        then = "Resume" if name == "Pause" else "Pause"
        expect(main(page).get_by_role("button", name=then)).to_be_visible()
    fetches: list[float] = []
    page.on("request", lambda r: r.url.endswith("/events.jsonl") and fetches.append(1.0))
    window_s = 8.0
    page.wait_for_timeout(window_s * 1000)  # a rate is counted over a window of time
    assert 1 <= len(fetches) <= window_s / 0.8 + 2, f"{len(fetches)} fetches in {window_s} s"
    assert_no_errors(page)
