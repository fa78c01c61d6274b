"""The Train page: the live view of the current (or last) training at the top, the settings
below it, folded into a one-line summary while a training runs.

The training runs in the server's one job (fmnist_app.jobs: a child process); this page only
starts, pauses and stops it and polls its snapshot, so a page switch, a refresh or a second
tab never stops it. The form itself is fmnist_app.train_form.
"""

from __future__ import annotations

import time

import streamlit as st

from fmnist_app import train_form as F
from fmnist_app.common import CONFUSION_PAGE, plain, plural, show_data_error, sidebar_status
from fmnist_app.jobs import JobSnapshot, job_manager
from fmnist_app.live_feed import BUSY_SHARE, in_browser, preparing_text
from fmnist_app.train_chart import chart
from fmnist_core import load_dataset
from fmnist_core.config import PRESET_NOTES, PRESETS

TEST_NOTE = (
    "Tested after every epoch on the 10,000 **test** images: the notebook has no "
    'separate validation set, so "test" is what every page calls them.'
)
# A poll every 0.8 s: a new epoch (or pause, stop...) shows within it, the browser tests hold
# the run and check 1 s. Each poll costs the browser (measured on the 2-core machine: ~0.09 of
# a core for polls alone at 0.5 s, with nothing new to draw), and on 2 cores the training pays
# for it; 0.8 s keeps the news within 1 s at ~40% less. What watching costs the training, and
# what else was measured: benchmarks/watch_bench.py and the README.
LIVE_POLL_S = 0.8
# Once the run has its id the browser draws the live view from the run's record by itself
# (fmnist_app.live_feed) and asks for a rerun when the run ends or its record has gone quiet
# for 5 s (a pause from another tab, a training process gone); the page's own poll is only a
# last safety net, at this pace.
SAFETY_POLL_S = 30.0
END_WAIT_S = 5.0  # for the job to be over once its record says the run ended
# Under the poll: a poll seldom comes exactly on time, and one drawn a little early must not
# wait for the next one (``steady``: the same elements again, between two pieces of news).
REDRAW_EVERY_S = 0.7
# While a training runs, this page hides Streamlit's "Running..." indicator (it flickers at
# every poll) and the progress bar's slide: both cost the browser at every poll, and show
# nothing the live view does not.
QUIET_CSS = (
    "<style>[data-testid=stStatusWidget]{visibility:hidden}"
    "[data-testid=stProgress] *{transition:none!important}</style>"
)
_now = time.monotonic  # the live view's clock (a test sets it)


def eta(snap: JobSnapshot) -> tuple[float, str]:
    """Seconds left, testing included, and a note on how the estimate was made.

    The core's ETA counts training batches only; every epoch also tests 10,000 images. The
    time of a test is an epoch's seconds less its training at the run's best speed."""
    n = snap.n_train or 0
    tests_left = snap.epochs - len(snap.history)
    per_test = [
        max(0.0, row["seconds"] - n / snap.best_images_per_s)
        for row in snap.history
        if snap.best_images_per_s
    ]
    test_s = sum(per_test) / len(per_test) if per_test else 0.0
    busy = bool(snap.best_images_per_s) and (
        snap.images_per_s < BUSY_SHARE * snap.best_images_per_s
    )
    note = (
        f"testing included (~{test_s:.1f} s per epoch)"
        if per_test
        else "training only until the first test is timed"
    )
    if busy:
        note += (
            f"; the machine is busy: {snap.images_per_s:,.0f} images/s, the run's best is "
            f"{snap.best_images_per_s:,.0f}"
        )
    return snap.eta_s + tests_left * test_s, note


def progress(snap: JobSnapshot) -> None:
    """One progress bar and one line of numbers: each element costs the browser at every poll
    (two bars and four st.metric cost ~1/3 of the live view's browser CPU)."""
    if snap.status == "starting" or not snap.epoch:
        st.progress(0.0, text=preparing_text(snap.config))
        return
    st.progress(
        snap.progress,
        text=f"Epoch {snap.epoch}/{snap.epochs}: batch {snap.batch:,}/{snap.batches:,} - "
        f"Overall: {snap.progress:.0%}",
    )
    left, note = eta(snap)
    acc = snap.history[-1]["val_acc"] if snap.history else None
    numbers = [
        f"**{snap.images_per_s:,.0f}** images/s",
        "**paused**" if snap.paused else f"**{left:.0f} s** left, {note.split(';')[0]}",
        f"**{snap.elapsed_s:.0f} s** elapsed",
        f"test accuracy **{acc:.2%}**" if acc is not None else "test accuracy -",
    ]
    st.caption(" · ".join(numbers))
    if "busy" in note:
        st.caption(f":material/speed: {note[note.index('the machine') :].capitalize()}.")


def outcome(snap: JobSnapshot) -> None:
    acc = f"{snap.final_val_acc:.2%}" if snap.final_val_acc is not None else "-"
    done = len(snap.history)
    if snap.status == "finished":
        active = "now the active model" if snap.active else "could not be made active (see log)"
        st.success(
            f"Finished: test accuracy **{acc}** after {plural(done, 'epoch')}, "
            f"{snap.train_s:.1f} s. Saved as run `{snap.run_id}`, {active}.",
            icon=":material/check_circle:",
        )
    elif snap.status == "stopped":
        st.warning(
            f"Stopped after {plural(done, 'completed epoch')} (test accuracy {acc}). "
            f"Saved as run `{snap.run_id}`; the active model is unchanged (only finished "
            "runs become active).",
            icon=":material/stop_circle:",
        )
    elif snap.status == "failed":
        st.error(
            f"Training failed: {plain(snap.reason)}. Run `{snap.run_id}` is saved as failed "
            "and was not made active.",
            icon=":material/error:",
        )
    if done and snap.status in ("finished", "stopped"):
        st.page_link(CONFUSION_PAGE, label="See its confusion matrix", icon=":material/grid_on:")


def buttons(snap: JobSnapshot) -> None:
    """Stop, Pause or Resume, and One more epoch, side by side (wrapping when narrow)."""
    jobs = job_manager()
    with st.container(horizontal=True):
        st.button(
            "Stop",
            key="stop",
            on_click=jobs.stop,
            disabled=snap.stopping,
            icon=":material/stop:",
            help="Ends the run before its next batch; finished epochs are kept.",
        )
        if snap.paused:
            st.button(
                "Resume",
                key="resume",
                on_click=jobs.resume,
                icon=":material/play_arrow:",
                help="Go on from the batch it waits at.",
            )
        else:
            group = snap.processes > 1
            st.button(
                "Pause",
                key="pause",
                on_click=jobs.pause,
                disabled=snap.stopping or group,
                icon=":material/pause:",
                help="torchrun processes cannot pause; Stop keeps the finished epochs"
                if group
                else "The training waits between two batches until you resume.",
            )
        refusal = snap.extend_refusal
        st.button(
            "One more epoch",
            key="more_epoch",
            on_click=jobs.extend,
            disabled=bool(refusal),
            icon=":material/add:",
            help=f"Not possible: {refusal}."
            if refusal
            else f"Train {snap.epochs + 1} epochs instead of {snap.epochs}; the run's record "
            "says so (the same numbers as a run set to that many from the start).",
        )


def steady(snap: JobSnapshot) -> JobSnapshot:
    """The snapshot to draw: the last one drawn while only the progress moved in the last
    ``REDRAW_EVERY_S`` (the page then sends the browser the very same elements, and the
    chart's data are unchanged); the new one at once when anything else changed (an epoch's
    start or end, pause, stop, one more epoch, the end of the run)."""
    state, now = st.session_state, _now()
    last = state.get("train_steady")

    def news(old: JobSnapshot) -> tuple:
        return (old.run_id, old.status, old.paused, old.stopping, old.epochs, old.epoch,
                len(old.history))  # fmt: skip

    if last is None or news(last[1]) != news(snap) or now - last[0] >= REDRAW_EVERY_S:
        state["train_steady"] = last = (now, snap)
    return last[1]


def current(was_running: bool) -> JobSnapshot:
    snap = job_manager().snapshot()
    if was_running and not snap.running:
        st.rerun()  # the job ended: redraw the whole page (Train back on) and stop polling
    return snap


def browser_draws(snap: JobSnapshot) -> bool:
    """Whether the browser draws this snapshot's progress and chart (fmnist_app.live_feed)."""
    return in_browser() and snap.running and bool(snap.run_id)


def live(was_running: bool, fast: bool = False) -> None:
    """Status, buttons, progress, chart and table of the current or last training.

    ``fast``: polled at ``LIVE_POLL_S`` (the server draws the progress); once the browser can
    draw it, the whole page runs again to poll at ``SAFETY_POLL_S`` instead."""
    snap = steady(current(was_running))
    browser = browser_draws(snap)
    if fast and browser:
        st.rerun()
    if snap.config is None:
        st.info(
            "No training in this server yet: pick a preset and click **Train**.",
            icon=":material/info:",
        )
        return
    what = "Paused" if snap.paused else "Training" if snap.running else "Last training"
    st.subheader(f"{what}: run `{snap.run_id or '...'}`")
    cfg = snap.config.replace(epochs=snap.epochs) if snap.epochs else snap.config
    where = f" - on {snap.device}" if snap.device else ""
    if snap.processes > 1:
        where += f", {snap.processes} torchrun processes"
    st.caption(F.describe(cfg) + where)
    if snap.running:
        buttons(snap)
        if not browser:
            progress(snap)
    else:
        outcome(snap)
    if chart(snap, browser):
        # The browser read the run's end in its record: the job is over once its process has
        # exited and the run is made active (a moment). Then the whole page draws the outcome.
        job_manager().join(END_WAIT_S)
        st.rerun()


def preset_picker() -> None:
    F.mark_custom()
    st.selectbox(
        "Preset",
        F.PRESET_OPTIONS,
        key="w_preset",
        on_change=F.on_preset,
        format_func=F.preset_labels().get,
        help="Fills every setting below with a known recipe; then change any.",
    )
    # One container whatever it holds: the widgets below keep their place in the page. When
    # the first change added a Reset button in line with them, every slider below was drawn
    # anew, and a change made to one while the page redrew was lost.
    with st.container():
        if changed := F.changed_fields():
            names = ", ".join(F.C.LABELS.get(k, k) for k in changed)
            st.caption(
                f"Changed from the preset: {names}. What the preset gives no longer applies."
            )
            st.button(
                "Reset to preset",
                key="reset_preset",
                on_click=F.reset_preset,
                icon=":material/restart_alt:",
            )
        else:
            note = PRESET_NOTES.get(F.base_name(), "")
            st.caption(note[:1].upper() + note[1:])


def settings(snap: JobSnapshot, status_ok: bool, n_images: int | None) -> None:
    """The form, folded into its one-line summary while a run goes, and the Train button."""
    cfg, errors = F.config_or_errors(n_images)
    # The label changes only when a run starts or ends (never while the form is edited: a
    # new label re-creates the expander and its widgets, and a change made meanwhile was lost).
    label = f"Settings: {F.describe(snap.config)}" if snap.running and snap.config else "Settings"
    with st.expander(label, expanded=not snap.running, icon=":material/tune:"):
        preset_picker()
        F.controls(st.session_state.w_optimizer != "sgd")
        st.text_input(
            "Run name (optional)",
            key="w_run_name",
            max_chars=F.NAME_MAX,
            placeholder="e.g. seed with lr 0.05",
            help="Shown on the Runs page; the run id stays as it is.",
        )
        F.run_on()
        F.save_form()
        if cfg:
            note = f" Advanced settings in use: {changed}." if (changed := F.advanced(cfg)) else ""
            st.caption(F.steps_caption(cfg, n_images) + note)
        st.caption(TEST_NOTE)
    # Outside the fold: Train (or why not) stays in sight while the settings are folded.
    reason = (
        "; ".join(errors)
        if errors
        else "no dataset - see above"
        if not status_ok
        else "a training is already running (above)"
        if snap.running
        else ""
    )
    st.button(
        "Train",
        key="train",
        type="primary",
        disabled=bool(reason),
        on_click=F.start,
        args=(n_images,),
        icon=":material/play_arrow:",
        help=reason or "Train in the background; this page shows it live.",
    )
    if snap.running:
        st.info(
            "Train is disabled while a training runs: one at a time per server, as it "
            "uses every CPU core. Watch it above (from any tab), stop it, or wait."
        )
    elif errors:
        st.warning("Cannot train with these settings: " + "; ".join(errors))


def main() -> None:
    status = sidebar_status()  # the page drew its title (pages/1_Train.py)
    if not status.ok:
        show_data_error(status)
    n_images = len(load_dataset().train_labels) if status.ok else None
    F.restore_form()
    if "w_preset" not in st.session_state:
        st.session_state.w_preset = next(iter(PRESETS))
        F.on_preset()
    elif "w_preset_base" not in st.session_state:  # a form kept from before this version
        st.session_state.w_preset_base = F.base_name()
    snap = job_manager().snapshot()
    if err := st.session_state.pop("train_error", None):
        st.error(err, icon=":material/error:")
    # Every poll redraws in the browser, which often shares the CPU with the training.
    fast = snap.running and not browser_draws(snap)
    poll = (LIVE_POLL_S if fast else SAFETY_POLL_S) if snap.running else None
    st.fragment(live, run_every=poll)(snap.running, fast)
    settings(snap, status.ok, n_images)
    if snap.running:
        st.html(QUIET_CSS)  # once per page run, outside the polled fragment
