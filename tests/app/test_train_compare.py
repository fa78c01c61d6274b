"""The Train page's live chart overlays the runs picked on the Runs page, faintly, by name."""

from __future__ import annotations

from fmnist_app.runs_view import SELECTED_KEY
from fmnist_core.live_chart import MAX_PICKED, PICKED_COLOURS, training_chart, training_series
from fmnist_core.manage import rename
from tests.app.test_train_page import chart, open_page, rows, start_held, texts
from tests.fake_runs import make_run


def test_runs_picked_on_the_runs_page_show_faintly_on_the_live_chart(jobs, gate, runs_dir):
    low = make_run(runs_dir, accs=(0.5, 0.7, 0.75), seed=1)
    high = make_run(runs_dir, accs=(0.6, 0.85), seed=2)
    rename(low, "low lr", runs_dir)
    at = open_page()
    at.session_state[SELECTED_KEY] = [low, high]  # as the Runs page's table leaves it
    run_id = start_held(at, jobs, gate)
    lines = chart(at.run())
    low_acc, high_acc = lines["low lr: test accuracy"], lines["seed: test accuracy"]
    assert low_acc["x"] == [1, 2, 3] and low_acc["y"] == [0.5, 0.7, 0.75]
    assert high_acc["x"] == [1, 2] and high_acc["y"] == [0.6, 0.85]
    assert low_acc["opacity"] == 0.5 and lines["low lr: test loss"]["axis"] == "left"
    assert not any(name.startswith("previous run") for name in lines)  # the picks replace it
    assert "**low lr**, **seed**, picked on the Runs page" in texts(at, "caption")
    at.session_state[SELECTED_KEY] = [run_id]  # the run being trained is the live one
    assert not any(name.endswith("test accuracy") and name != "test accuracy"
                   for name in chart(at.run()))  # fmt: skip


def test_picked_runs_get_their_own_faint_colours_and_unique_names():
    picked = [(f"run {i % 2}", rows(0.5 + i / 100)) for i in range(MAX_PICKED + 1)]
    series = [s for s in training_series(rows(0.6), picked=picked) if s.opacity == 0.5]
    assert len(series) == 2 * MAX_PICKED  # at most MAX_PICKED runs, two lines each
    names = [s.name for s in series]
    assert names[:4] == ["run 0: test loss", "run 0: test accuracy", "run 1: test loss",
                         "run 1: test accuracy"]  # fmt: skip
    assert names[4] == "run 0 (3): test loss" and len(set(names)) == len(names)
    assert [s.colour for s in series[::2]] == list(PICKED_COLOURS[:MAX_PICKED])
    spec, data = training_chart(rows(0.6), picked=picked[:1], previous=rows(0.4))
    assert "run 0: test accuracy" in spec["encoding"]["color"]["scale"]["domain"]
    assert [d["y"] for d in data if d["series"] == "run 0: test accuracy"] == [0.5]
