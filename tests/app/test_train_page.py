"""AppTest of the Train page on the tiny dataset: defaults, presets and validation, a run to
completion, Stop, a second session, a diverging run; plus the training figure itself.

The job manager is one per process (st.cache_resource) and outlives AppTest instances, so
every test starts with a fresh one and stops its job at the end. AppTest does not tick
fragments: tests poll ``at.run()`` with a deadline instead.
"""

from __future__ import annotations

import json
import time
import tomllib
from collections.abc import Callable

import pytest
from streamlit import config as st_config
from streamlit import dataframe_util
from streamlit.testing.v1 import AppTest

from fmnist_app.common import plain
from fmnist_app.jobs import JobError, JobManager
from fmnist_core import runs
from fmnist_core.config import PRESET_NOTES, PRESETS
from fmnist_core.gate import Gate
from fmnist_core.live_chart import training_chart, training_series
from tests.conftest import REPO

APP = REPO / "streamlit_app.py"
PAGE = "pages/1_Train.py"
WAIT = 90  # seconds; a passing test on a quiet machine needs a few
# A config a test holds at its first batch with the gate (never counting on it being slow);
# distinct from the form's defaults, so the page can be seen showing the job's config.
HELD = {"w_image_size": 28, "w_conv1": 64, "w_conv2": 128, "w_batch_size": 16, "w_epochs": 30}
WIDGETS = ("slider", "select_slider", "selectbox", "radio", "number_input", "toggle")


def open_page() -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=WAIT).run()
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    return at


def widget(at: AppTest, key: str):
    for kind in WIDGETS:
        found = [w for w in getattr(at, kind) if w.key == key]
        if found:
            return found[0]
    raise AssertionError(f"no widget {key!r} on the page")


def configure(at: AppTest, **values) -> AppTest:
    for key, value in values.items():
        widget(at, key).set_value(value)
    return at.run()


def texts(at: AppTest, kind: str) -> str:
    return "\n".join(str(e.value) for e in getattr(at, kind))


def run_until(at: AppTest, done: Callable[[AppTest], bool], what: str) -> AppTest:
    deadline = time.monotonic() + WAIT
    while True:
        at.run()
        assert not at.exception, at.exception
        if done(at):
            return at
        if time.monotonic() > deadline:
            pytest.fail(f"the page never showed {what} within {WAIT} s")


def chart(at: AppTest) -> dict[str, dict]:
    """The page's live chart: line name -> its x, y, axis ("left" or "right") and style."""
    charts = at.get("vega_lite_chart")
    assert len(charts) == 1
    spec = json.loads(charts[0].proto.spec)
    data = dataframe_util.convert_arrow_bytes_to_pandas_df(charts[0].proto.data.data)
    enc = spec["encoding"]
    lines = {}  # the scales' domain lists every line, also one without points yet
    for i, name in enumerate(enc["color"]["scale"]["domain"]):
        rows = data[data["series"] == name]
        axis = next(
            side for side, group in zip(("left", "right"), spec["layer"], strict=True)
            if name in group["layer"][0]["transform"][0]["filter"]["oneOf"]
        )  # fmt: skip
        lines[name] = {"x": rows["x"].tolist(), "y": rows["y"].tolist(), "axis": axis,
                       "opacity": enc["opacity"]["scale"]["range"][i],
                       "dash": enc["strokeDash"]["scale"]["range"][i]}  # fmt: skip
    return lines


def start_held(at: AppTest, jobs: JobManager, gate: Gate) -> str:
    """Start the HELD config and hold it after its first batch (until stopped)."""
    gate.hold("step", 1)
    configure(at, **HELD).button(key="train").click().run()
    gate.wait_held(WAIT)
    assert jobs.snapshot().running
    return jobs.snapshot().run_id


def test_page_renders_with_the_seed_preset(jobs):
    at = open_page()
    seed = PRESETS["seed"]
    assert widget(at, "w_preset").value == "seed"
    for name in ("epochs", "lr", "batch_size", "image_size", "conv1", "conv2", "optimizer",
                 "momentum", "train_subset", "seed"):  # fmt: skip
        assert widget(at, f"w_{name}").value == getattr(seed, name), name
    assert widget(at, "w_momentum").disabled  # plain SGD has no momentum
    assert not at.button(key="train").disabled
    assert "600 training images in batches of 100 = 6 steps per epoch" in texts(at, "caption")
    assert "No training in this server yet" in texts(at, "info")
    assert not at.get("plotly_chart") and not at.error
    # A full GC after every poll stalled the training thread (see fmnist_app.jobs.job_manager).
    assert st_config.get_option("runner.postScriptGC") is False


def test_presets_fill_the_widgets_and_impossible_settings_disable_train(jobs):
    at = open_page()
    widget(at, "w_preset").set_value("quick").run()
    assert (widget(at, "w_epochs").value, widget(at, "w_train_subset").value) == (3, 6000)
    assert at.button(key="train").disabled  # the tiny dataset has 600 images
    assert "the dataset has only 600 training images" in texts(at, "warning")
    configure(at, w_train_subset=500, w_batch_size=1024)
    assert at.button(key="train").disabled
    # The controls' labels, not the config's field names (train_subset, batch_size).
    assert "Training images (500) must be at least Batch size (1024)" in at.button(key="train").help
    configure(at, w_batch_size=128, w_optimizer="momentum")
    assert not at.button(key="train").disabled and not at.warning
    assert not widget(at, "w_momentum").disabled
    assert "500 training images in batches of 128 = 4 steps per epoch (the last one has 116)" in (
        texts(at, "caption")
    )
    widget(at, "w_preset").set_value("seed").run()
    assert widget(at, "w_train_subset").value == 0 and widget(at, "w_optimizer").value == "sgd"


def test_the_chosen_preset_says_what_it_gives(jobs):
    at = open_page()
    assert set(PRESET_NOTES) == set(PRESETS)
    for name in PRESETS:
        widget(at, "w_preset").set_value(name).run()
        note = PRESET_NOTES[name]
        assert note[:1].upper() + note[1:] in texts(at, "caption")


def test_the_form_survives_a_visit_to_other_pages(jobs):
    at = open_page()
    widget(at, "w_preset").set_value("strong").run()
    changed = {"w_epochs": 7, "w_batch_size": 64, "w_label_smoothing": 0.05, "w_augment": False}
    form = {key: widget(at, key).value for key in changed} | {"w_lr": widget(at, "w_lr").value}
    configure(at, **changed)
    for other in ("streamlit_app.py", "pages/3_Sketch.py"):
        at.switch_page(other).run()
        assert "w_epochs" not in at.session_state  # Streamlit forgot the widget's state
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    assert widget(at, "w_preset").value == "custom"  # changed, from the strong preset
    assert widget(at, "w_preset").format_func("custom") == "Custom (from Strong)"
    assert {key: widget(at, key).value for key in form} == changed | {"w_lr": form["w_lr"]}
    configure(at, w_epochs=9)  # a later change is not undone by the kept copy
    assert widget(at, "w_epochs").value == 9 and widget(at, "w_batch_size").value == 64


def test_every_preset_setting_reaches_the_training_config(jobs, gate):
    gate.hold("step", 1)  # the run cannot end before the stop, however fast the machine
    at = open_page()
    widget(at, "w_preset").set_value("strong").run()
    assert "Advanced settings in use: arch bn3, schedule onecycle, weight decay 0.0005" in (
        texts(at, "caption")
    )
    at.button(key="train").click().run()
    jobs.stop()
    snap = jobs.snapshot()
    assert snap.config == PRESETS["strong"] and snap.config.name == "strong"
    assert jobs.join(WAIT) and jobs.snapshot().status == "stopped"


def test_train_runs_to_completion_saves_the_run_and_makes_it_active(jobs, runs_dir):
    at = open_page()
    widget(at, "w_epochs").set_value(2)  # and click before the page redrew: one rerun
    at.button(key="train").click().run()
    assert jobs.snapshot().config == PRESETS["seed"].replace(epochs=2)
    run_until(at, lambda a: a.success, "the result")
    run_id = jobs.snapshot().run_id
    assert f"Saved as run `{run_id}`, now the active model" in texts(at, "success")
    traces = chart(at)
    assert traces["test loss"]["x"] == [1, 2] and len(traces["test accuracy"]["y"]) == 2
    assert traces["train loss"]["x"] == [1, 2] and traces["test accuracy"]["axis"] == "right"
    assert len(traces["train accuracy (running)"]["y"]) == 2
    assert len(traces["batch loss (smoothed)"]["x"]) == 12
    assert len(at.dataframe) == 1 and len(at.dataframe[0].value) == 2
    assert [p.proto.page for p in at.main.get("page_link")] == ["Confusion_matrix"]
    saved = runs.find_run(run_id, runs_dir)
    assert saved.status == "finished" and saved.epochs == [1, 2]
    assert runs.active_run(runs_dir).id == run_id
    # The sidebar's active model, as Markdown-escaped plain text ("seed+" is "seed\+").
    assert plain(run_id) in texts(at.run(), "caption")
    assert not at.button(key="train").disabled


def test_the_next_run_shows_the_previous_one_faintly(jobs, gate):
    at = open_page()
    widget(at, "w_epochs").set_value(2)
    at.button(key="train").click().run()
    run_until(at, lambda a: a.success, "the first run's result")
    start_held(at, jobs, gate)
    previous = chart(at.run())["previous run: test accuracy"]
    assert previous["x"] == [1, 2] and previous["opacity"] == 0.5
    assert "the previous training of this server" in texts(at, "caption")


def test_stop_ends_the_run_as_stopped_and_a_page_switch_does_not(jobs, gate, runs_dir):
    at = open_page()
    run_id = start_held(at, jobs, gate)
    assert at.button(key="stop") and at.button(key="train").disabled
    at.switch_page("streamlit_app.py").run()
    assert f"**Training now:** run {run_id}" in texts(at, "caption")
    at.switch_page(PAGE).run()
    assert jobs.snapshot().running and f"run `{run_id}`" in at.subheader[0].value
    at.button(key="stop").click().run()
    run_until(at, lambda a: a.warning, "the stopped run")
    snap = jobs.snapshot()
    assert snap.status == "stopped" and (snap.epoch, snap.batch) == (1, 1) and not snap.history
    done = len(snap.history)
    stopped = f"Stopped after {done} completed epoch{'' if done == 1 else 's'} "
    assert stopped in texts(at, "warning")
    assert runs.find_run(run_id, runs_dir).status == "stopped"
    assert runs.active_run(runs_dir) is None and not at.button(key="train").disabled


def test_a_second_session_sees_the_running_job_and_cannot_start_another(jobs, gate):
    first = open_page()
    run_id = start_held(first, jobs, gate)
    second = open_page()
    assert second.button(key="train").disabled
    assert "one at a time per server" in texts(second, "info")
    assert f"Training: run `{run_id}`" in second.subheader[0].value
    assert "conv 64/128" in texts(second, "caption")  # the job's config, not the form's
    assert len(second.get("progress")) == 1
    with pytest.raises(JobError, match="already running"):
        jobs.start(PRESETS["seed"])
    second.button(key="stop").click().run()  # any session may stop it
    run_until(first, lambda a: a.warning, "the stop in the first session")
    assert jobs.snapshot().run_id == run_id and jobs.snapshot().status == "stopped"


@pytest.mark.learns
def test_a_diverging_config_shows_its_reason(jobs, runs_dir):
    at = configure(open_page(), w_optimizer="adam", w_lr=1.0, w_batch_size=16, w_epochs=2)
    at.button(key="train").click().run()
    run_until(at, lambda a: a.error, "an error")
    error = texts(at, "error")
    assert "Training failed: diverged at epoch" in error and "lower the learning rate" in error
    assert "Traceback" not in error and "not made active" in error
    assert runs.active_run(runs_dir) is None


def rows(*accs: float) -> list[dict[str, float]]:
    return [{"epoch": e, "cost": 10.0 / e, "train_loss": 1.0 / e, "val_loss": 1.2 / e,
             "val_acc": a} for e, a in enumerate(accs, start=1)]  # fmt: skip


def by_name(series) -> dict:
    return {line.name: line for line in series}


def test_training_chart_plain_units_by_default():
    losses = [(i / 4, 2.0 - i / 10) for i in range(1, 13)]
    series = training_series(rows(0.6, 0.7, 0.8), losses, batches=4)
    names = [line.name for line in series]
    assert names == ["batch loss (smoothed)", "train loss", "test loss", "test accuracy"]
    batch, train, test, acc = series
    assert train.y == [1.0, 0.5, 1 / 3] and test.x == [1, 2, 3] and train.axis == "left"
    assert acc.y == [0.6, 0.7, 0.8] and acc.axis == "right" and not batch.points
    assert len(batch.y) == 12 and max(batch.y) <= 2.0  # smoothed, in loss units (not x 4)
    spec, data = training_chart(rows(0.6, 0.7, 0.8), losses, epochs=5, batches=4)
    left, right = (group["layer"][0]["encoding"]["y"]["axis"] for group in spec["layer"])
    assert (left["title"], right["title"], right["orient"]) == ("loss", "accuracy", "right")
    assert spec["encoding"]["x"]["scale"]["domain"] == [0, 5.1]
    assert len(data) == 12 + 3 * 3 and {"series", "x", "y"} == set(data[0])


def test_training_chart_plots_running_train_accuracy_next_to_test_accuracy():
    history = [{**row, "train_acc": a} for row, a in zip(rows(0.6, 0.7), (0.5, 0.97), strict=True)]
    lines = by_name(training_series(history))
    assert list(lines) == ["train loss", "test loss", "train accuracy (running)", "test accuracy"]
    train_acc = lines["train accuracy (running)"]
    assert train_acc.y == [0.5, 0.97] and train_acc.axis == "right" and train_acc.dash != (1, 0)
    spec, _ = training_chart(history, epochs=5)
    y = spec["layer"][1]["layer"][0]["encoding"]["y"]  # zoomed by Vega on both lines, to 100%
    assert y["scale"] == {"zero": False, "nice": True, "domainMax": 1}
    old = [{**history[0], "train_acc": None}, history[1]]  # a row of a run from before
    assert by_name(training_series(old))["train accuracy (running)"].x == [2]


def test_training_chart_overlays_the_previous_run_faintly():
    series = training_series(rows(0.6), previous=rows(0.5, 0.9, 0.95))
    previous = [line for line in series if line.name.startswith("previous run")]
    assert [p.name for p in previous] == ["previous run: test loss", "previous run: test accuracy"]
    assert all(p.opacity == 0.5 and p.dash != (1, 0) and not p.points for p in previous)
    assert previous[1].y == [0.5, 0.9, 0.95] and previous[1].axis == "right"
    spec, data = training_chart(rows(0.6), previous=rows(0.5, 0.9, 0.95))
    names = spec["layer"][1]["layer"][0]["transform"][0]["filter"]["oneOf"]
    assert "previous run: test accuracy" in names  # on the accuracy axis, zoomed on both runs
    previous_acc = [d["y"] for d in data if d["series"] == "previous run: test accuracy"]
    assert previous_acc == [0.5, 0.9, 0.95]


def test_training_chart_notebook_view_has_one_point_per_epoch_on_two_axes():
    history = [{"epoch": e, "cost": 10.0 / e, "val_acc": 0.5 + e / 10} for e in (1, 2, 3)]
    losses = [(i / 4, 2.0 - i / 10) for i in range(1, 13)]
    loss, cost, acc = training_series(history, losses, batches=4, view="notebook")
    assert cost.x == [1, 2, 3] and cost.y == [10.0, 5.0, 10.0 / 3]
    assert acc.y == [0.6, 0.7, 0.8] and acc.axis == "right"
    assert cost.colour == "#d62728" and acc.colour == "#1f77b4"
    assert loss.y == pytest.approx([4 * v for _, v in losses])  # in cost units
    empty = training_series([], view="notebook")
    assert [line.name for line in empty] == ["cost", "test accuracy"]
    spec, _ = training_chart(history, losses, epochs=5, batches=4, view="notebook")
    left = spec["layer"][0]["layer"][0]["encoding"]["y"]["axis"]
    assert left["title"] == "cost (sum of batch losses)"


def test_a_poll_that_adds_batch_losses_or_an_epoch_changes_the_data_not_the_spec():
    """The browser then replaces the chart's data in place instead of drawing it anew."""
    losses = [(i / 600, 2.0 - i / 1000) for i in range(1, 1300)]
    acc = [{**row, "train_acc": 0.5} for row in rows(0.6, 0.9)]
    for view in ("plain", "notebook"):
        first, _ = training_chart(acc[:1], losses[:700], epochs=5, batches=600, view=view)
        later, _ = training_chart(acc, losses, epochs=5, batches=600, view=view)
        assert first == later, view


def test_a_changed_setting_makes_the_preset_custom_and_reset_puts_it_back(jobs):
    at = open_page()
    assert "reset_preset" not in button_keys(at)
    configure(at, w_lr=0.05)
    assert widget(at, "w_preset").value == "custom"
    assert "Custom (from Seed notebook)" in widget(at, "w_preset").options
    caps = texts(at, "caption")
    assert "Changed from the preset: Learning rate" in caps and "86.65%" not in caps
    at.button(key="reset_preset").click().run()
    assert widget(at, "w_preset").value == "seed" and widget(at, "w_lr").value == 0.1
    assert PRESET_NOTES["seed"][1:] in texts(at, "caption")
    configure(at, w_lr=0.05, w_epochs=2).run()  # picking the preset again also resets
    widget(at, "w_preset").set_value("seed").run()
    assert (widget(at, "w_lr").value, widget(at, "w_epochs").value) == (0.1, 5)


def test_a_stale_preset_echo_with_another_change_does_not_reset_the_form(jobs):
    """The page sets the selector to "Custom" in the redraw after a first change; a second
    change sent before the browser drew that carries the selector's old value ("seed"). That is
    no pick of the preset: the form must keep both changes (it was reset to the preset, and
    the second change lost - the CI failure of test_quick_changes_in_a_row_all_stick)."""
    at = open_page()
    configure(at, w_image_size=28)
    assert widget(at, "w_preset").value == "custom"
    widget(at, "w_preset").set_value("seed")  # the browser's stale value, in the same request
    widget(at, "w_batch_size").set_value(16).run()
    assert (widget(at, "w_image_size").value, widget(at, "w_batch_size").value) == (28, 16)
    assert widget(at, "w_preset").value == "custom"


def button_keys(at: AppTest) -> list[str]:
    return [b.key for b in at.button]


def test_the_live_view_is_on_top_and_the_settings_fold_while_running(jobs, gate, runs_dir):
    at = open_page()
    assert at.expander[0].proto.expanded  # idle: the settings are open
    at.text_input(key="w_run_name").set_value("my first run")
    run_id = start_held(at, jobs, gate)
    settings = at.run().expander[0]
    assert settings.label.startswith("Settings: seed+: 28x28, conv 64/128")
    assert not settings.proto.expanded  # folded into its one-line summary
    assert at.subheader[0].value.startswith("Training: run")
    # The live view (status, buttons, progress) comes before the settings in the page.
    kinds = [type(block).__name__ for block in at.main.children.values()]
    assert kinds[:3] == ["Title", "Block", "Expander"]  # title, the live fragment, settings
    assert {"stop", "pause"} <= set(button_keys(at)) and len(at.get("progress")) == 1
    assert runs.find_run(run_id, runs_dir).name == "my first run"  # a rename event


def step(jobs: JobManager) -> int:
    snap = jobs.snapshot()
    return (snap.epoch - 1) * snap.batches + snap.batch


def wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"never {what} within {WAIT} s")
        time.sleep(0.01)


def progress_texts(at: AppTest) -> str:
    return "\n".join(bar.proto.text for bar in at.get("progress"))


def test_one_more_epoch_raises_the_total_of_a_held_run(jobs, gate, runs_dir):
    at = open_page()
    gate.hold("epoch", 2)  # held after its last epoch: it would end there without the click
    widget(at, "w_epochs").set_value(2)
    at.button(key="train").click().run()
    gate.wait_held(WAIT)
    at.run()
    assert "Epoch 2/2" in progress_texts(at) and "2 epochs" in at.caption[0].value
    at.button(key="more_epoch").click().run()
    assert jobs.snapshot().epochs == 3
    assert "Epoch 2/3" in progress_texts(at) and "3 epochs" in at.caption[0].value
    assert at.expander[0].label.startswith("Settings: seed+:")  # the summary keeps its label
    assert "2 epochs" in at.expander[0].label
    gate.release()
    run_until(at, lambda a: a.success, "the result")
    assert "after 3 epochs" in texts(at, "success")
    assert chart(at)["test accuracy"]["x"] == [1, 2, 3]
    saved = runs.find_run(jobs.snapshot().run_id, runs_dir)
    assert saved.config.epochs == 3 and saved.epochs == [1, 2, 3]
    assert "more_epoch" not in button_keys(at)  # over: no more epochs for a finished run


def test_one_more_epoch_is_disabled_with_its_reason_for_a_onecycle_run(jobs, gate):
    at = open_page()
    gate.hold("step", 1)
    configure(at, w_schedule="onecycle").button(key="train").click().run()
    gate.wait_held(WAIT)
    more = at.run().button(key="more_epoch")
    assert more.disabled and "one-cycle schedule" in more.help


def test_between_news_the_live_view_redraws_once_a_second_and_news_at_once(jobs, gate, monkeypatch):
    from fmnist_app import train_view

    clock = [1000.0]
    monkeypatch.setattr(train_view, "_now", lambda: clock[0])
    at = open_page()
    start_held(at, jobs, gate)
    assert "batch 1/" in progress_texts(at.run())
    gate.hold("step", 2)
    gate.wait_held(WAIT)
    assert step(jobs) == 2 and "batch 1/" in progress_texts(at.run())  # the same as drawn
    clock[0] += 1.0  # (REDRAW_EVERY_S is 0.9)
    assert "batch 2/" in progress_texts(at.run())  # a second later: the progress moves
    gate.hold("epoch", 1)
    gate.wait_held(WAIT)
    at.run()  # the clock has not moved: an epoch's end is news, shown at once
    assert len(chart(at)["test accuracy"]["x"]) == 1 and at.dataframe


def test_pause_holds_the_training_between_batches_and_stop_still_works(jobs, gate):
    at = open_page()
    start_held(at, jobs, gate)  # held by the gate inside batch 2's request for its data
    at.button(key="pause").click().run()
    assert jobs.snapshot().paused and "Paused: run" in at.subheader[0].value
    assert "resume" in button_keys(at) and "pause" not in button_keys(at)
    gate.release()  # now only the pause holds it: the batch under way ends, then it waits
    wait_for(lambda: step(jobs) == 2, "finished the batch under way")
    deadline = time.monotonic() + 1.0  # a negative: nothing to poll for but the time
    while time.monotonic() < deadline:
        assert step(jobs) == 2 and jobs.snapshot().running
        time.sleep(0.05)
    at.button(key="resume").click().run()
    wait_for(lambda: step(jobs) > 3, "went on after Resume")
    at.run().button(key="pause").click().run()
    at.button(key="stop").click().run()  # Stop while paused: ends the run
    assert jobs.join(WAIT) and jobs.snapshot().status == "stopped"
    assert not jobs.snapshot().paused


def test_the_time_left_includes_testing_and_says_when_the_machine_is_busy(jobs):
    from dataclasses import replace as copy

    from fmnist_app.jobs import JobSnapshot
    from fmnist_app.train_view import eta

    row = {"epoch": 1, "cost": 1.0, "train_loss": 1.0, "val_loss": 1.0, "val_acc": 0.5,
           "seconds": 3.0, "elapsed_s": 3.0}  # fmt: skip
    snap = JobSnapshot(status="running", config=PRESETS["seed"], n_train=1000, history=(row,),
                       eta_s=8.0, images_per_s=500.0, best_images_per_s=500.0)  # fmt: skip
    left, note = eta(snap)  # 4 tests left, each 3 s - 1000/500 s of training = 1 s
    assert left == pytest.approx(8.0 + 4 * 1.0) and "testing included" in note
    assert "busy" not in note
    left, note = eta(copy(snap, images_per_s=100.0))
    assert "the machine is busy: 100 images/s, the run's best is 500" in note


def test_the_navigation_says_home_and_pages_use_material_icons_not_emoji(jobs):
    at = open_page()
    labels = [link.proto.label for link in at.sidebar.get("page_link")]
    assert labels[:4] == ["Home", "Train", "Confusion matrix", "Sketch"]
    config = tomllib.loads((REPO / ".streamlit" / "config.toml").read_text())
    assert config["client"]["toolbarMode"] == "viewer"  # no Deploy button
    assert config["client"]["showSidebarNavigation"] is False  # ours says "Home"
    sources = [REPO / "streamlit_app.py", *(REPO / "pages").glob("*.py"),
               *(REPO / "fmnist_app").glob("*.py")]  # fmt: skip
    for source in sources:  # emoji rendered as empty boxes where no emoji font is installed
        emoji = [c for c in source.read_text() if ord(c) >= 0x1F000 or c == "\ufe0f"]
        assert not emoji, f"{source.name}: {emoji}"
