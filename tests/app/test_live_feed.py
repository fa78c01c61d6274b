"""The Train page's default live view: the browser draws it from the run's record
(fmnist_app.live_feed). AppTest runs no JavaScript, so this checks what the page hands the
browser - the record's URL, served from the runs folder, and the chart's layout - and that the
page stops redrawing itself while the browser draws. tests/e2e/test_train.py checks the
drawing in Chromium."""

from __future__ import annotations

import json
from pathlib import Path

from fmnist_app import live_feed, train_view
from fmnist_app.live_feed import ENV
from fmnist_app.runs_view import SELECTED_KEY
from fmnist_core import runs
from fmnist_core.config import preset
from fmnist_core.live_chart import live_layout, training_series
from tests.app.test_train_page import open_page, rows, start_held
from tests.fake_runs import make_run


def feed_data(at) -> dict:
    feeds = at.get("bidi_component")
    assert len(feeds) == 1, [type(e).__name__ for e in at.main]
    return json.loads(feeds[0].proto.json)


def test_a_running_run_is_drawn_by_the_browser_from_its_record(jobs, gate, runs_dir, monkeypatch):
    monkeypatch.setenv(ENV, "browser")
    declared = {}
    real = live_feed.components.declare_component

    def declare(name: str, path: str):
        return declared.setdefault(path, real(name, path=path))

    monkeypatch.setattr(live_feed.components, "declare_component", declare)
    picked = make_run(runs_dir, accs=(0.5, 0.7), seed=1)
    at = open_page()
    at.session_state[SELECTED_KEY] = [picked]
    run_id = start_held(at, jobs, gate)
    at.run()
    assert not at.exception, at.exception
    data = feed_data(at)
    # No server-drawn progress or chart while the browser draws them.
    assert not at.get("progress") and not at.get("vega_lite_chart") and not at.dataframe
    assert {"stop", "pause", "more_epoch"} <= {b.key for b in at.button}
    # The URL (relative to the page) of the run's events.jsonl, through a files-only
    # component whose folder is the runs folder.
    prefix, name, run, file = data["url"].split("/")
    assert (prefix, run, file) == ("component", run_id, "events.jsonl")
    [(served, files)] = declared.items()
    assert files.name == name
    record = runs.find_run(run_id, runs_dir).path / "events.jsonl"
    assert Path(served, run, file).resolve() == record.resolve() and record.exists()
    snap = jobs.snapshot()
    assert data["epochs"] == snap.epochs and data["paused"] is False
    assert data["layout"] == json.loads(json.dumps(live_layout("plain", snap.batches, (),
        [("seed", list(runs.find_run(picked, runs_dir).history))])))  # fmt: skip
    at.button(key="pause").click().run()
    assert feed_data(at)["paused"] is True


def test_the_layout_has_every_line_of_the_chart_drawn_after_the_run():
    for view in ("plain", "notebook"):
        layout = live_layout(view, 600, previous=rows(0.8))
        done = [row | {"train_acc": 0.9} for row in rows(0.85)]  # a run that measured it
        after = training_series(done, [(0.5, 1.0), (1.0, 0.5)], 600, view, rows(0.8))
        assert [line["name"] for line in layout["lines"]] == [s.name for s in after]
        for line, s in zip(layout["lines"], after, strict=True):
            if line["source"]:  # a live line: its points come from the record
                assert line["x"] == line["y"] == []
            else:  # the previous run: drawn as given
                assert (line["x"], line["y"]) == (s.x, s.y) and line["opacity"] == 0.5
    sources = {line["name"]: line["source"] for line in live_layout("plain", 600)["lines"]}
    assert sources["test accuracy"] == "val_acc" and sources["batch loss (smoothed)"] == "losses"
    notebook = {line["name"]: line for line in live_layout("notebook", 600)["lines"]}
    assert notebook["batch loss × 600"]["scale"] == 600 and notebook["cost"]["source"] == "cost"


def test_the_page_polls_slowly_once_the_browser_draws(jobs, gate, monkeypatch):
    """The fragment's poll: fast until the run has its id, then only a safety net."""
    monkeypatch.setenv(ENV, "browser")
    polls = []
    real = train_view.st.fragment

    def fragment(func, run_every=None):
        polls.append(run_every)
        return real(func, run_every=run_every)

    monkeypatch.setattr(train_view.st, "fragment", fragment)
    at = open_page()
    start_held(at, jobs, gate)
    at.run()
    assert polls[0] is None and polls[-1] == train_view.SAFETY_POLL_S


def test_the_bar_says_why_the_sketch_presets_first_run_takes_longer_to_start():
    plain = "Preparing the data and the model ..."
    assert "draws every training photo" in live_feed.preparing_text(preset("sketch"))
    assert live_feed.preparing_text(preset("seed")) == live_feed.preparing_text(None) == plain
