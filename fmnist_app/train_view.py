"""The Train page: the live view of the current (or last) training at the top, the settings
below it, folded into a one-line summary while a training runs.

The training runs in the server's one background job (fmnist_app.jobs); this page only
starts, pauses and stops it and polls its snapshot, so a page switch, a refresh or a second
tab never stops it. The form itself is fmnist_app.train_form.
"""

from __future__ import annotations

import time

import streamlit as st

from fmnist_app import train_form as F
from fmnist_app.common import CONFUSION_PAGE, page_setup, plain, plural, show_data_error
from fmnist_app.jobs import JobSnapshot, job_manager
from fmnist_core import load_dataset
from fmnist_core.config import PRESET_NOTES, PRESETS
from fmnist_core.plots import training_figure

EPOCH_COLUMNS = {  # labels and formats for the columns of events.epoch_row
    "cost": st.column_config.NumberColumn("cost", format="%.2f"),
    "train_loss": st.column_config.NumberColumn("train loss", format="%.4f"),
    "val_loss": st.column_config.NumberColumn("test loss", format="%.4f"),
    "val_acc": st.column_config.NumberColumn("test accuracy", format="percent"),
    "seconds": st.column_config.NumberColumn("seconds", format="%.1f"),
    "elapsed_s": st.column_config.NumberColumn("elapsed s", format="%.1f"),
}
VIEWS = {"plain": "Losses and accuracy", "notebook": "The notebook's view (cost)"}
TEST_NOTE = (
    "Tested after every epoch on the 10,000 **test** images: the notebook has no "
    'separate validation set, so "test" is what every page calls them.'
)
# One poll redraws status and chart: a new epoch shows within it (the browser tests hold
# the run and check 1 s). benchmarks/watch_bench.py measures what watching costs the training.
LIVE_POLL_S = 0.5
# The batch-loss line moves once a second: between two moves (and new epochs) the chart's
# figure is the same as the last one drawn, so the browser need not draw it again.
LOSS_EVERY_S = 1.0
BUSY_SHARE = 0.5  # images/s below this share of the run's best: the machine is busy


def eta(snap: JobSnapshot) -> tuple[float, str]:
    """Seconds left, testing included, and a note on how the estimate was made.

    The core's ETA counts training batches only; every epoch also tests 10,000 images. The
    time of a test is an epoch's seconds less its training at the run's best speed."""
    n = snap.n_train or 0
    tests_left = snap.config.epochs - len(snap.history)
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
    cfg = snap.config
    if snap.status == "starting" or not snap.epoch:
        st.progress(0.0, text="Preparing the data and the model ...")
        return
    st.progress(
        snap.batch / snap.batches,
        text=f"Epoch {snap.epoch}/{cfg.epochs}: batch {snap.batch:,}/{snap.batches:,}",
    )
    st.progress(snap.progress, text=f"Overall: {snap.progress:.0%}")
    left, note = eta(snap)
    m1, m2, m3, m4 = st.columns(4)
    m1.metric("Images/s", f"{snap.images_per_s:,.0f}")
    m2.metric("Time left", "paused" if snap.paused else f"{left:.0f} s", help=note)
    m3.metric("Elapsed", f"{snap.elapsed_s:.0f} s")
    acc = snap.history[-1]["val_acc"] if snap.history else None
    m4.metric("Test accuracy", f"{acc:.2%}" if acc is not None else "-")
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
    """Stop, and Pause or Resume, side by side."""
    jobs = job_manager()
    b1, b2, _ = st.columns([1, 1, 4])
    b1.button(
        "Stop",
        key="stop",
        on_click=jobs.stop,
        disabled=snap.stopping,
        icon=":material/stop:",
        width="stretch",
        help="Ends the run before its next batch; finished epochs are kept.",
    )
    if snap.paused:
        b2.button(
            "Resume",
            key="resume",
            on_click=jobs.resume,
            icon=":material/play_arrow:",
            width="stretch",
            help="Go on from the batch it waits at.",
        )
    else:
        b2.button(
            "Pause",
            key="pause",
            on_click=jobs.pause,
            disabled=snap.stopping,
            icon=":material/pause:",
            width="stretch",
            help="The training waits between two batches until you resume.",
        )


def throttled_losses(snap: JobSnapshot) -> tuple[tuple[float, float], ...]:
    """The batch losses as of at most ``LOSS_EVERY_S`` ago (all of them once the run ended)."""
    state, now = st.session_state, time.monotonic()
    last = state.get("train_chart_losses")
    if last is None or last[2] != snap.run_id or not snap.running or now - last[0] >= LOSS_EVERY_S:
        state["train_chart_losses"] = last = (now, snap.losses, snap.run_id)
    return last[1]


def chart(snap: JobSnapshot) -> None:
    view = st.segmented_control(
        "Chart",
        list(VIEWS),
        format_func=VIEWS.get,
        key="train_view",
        default="plain",
        label_visibility="collapsed",
    )
    fig = training_figure(
        snap.history,
        throttled_losses(snap),
        snap.config.epochs,
        snap.batches,
        view=view or "plain",
        previous=snap.previous,
    )
    st.plotly_chart(fig, width="stretch", key="train_chart")
    if snap.previous:
        st.caption("Grey, dotted: the previous training of this server, for comparison.")
    if snap.history:
        st.dataframe(snap.history, hide_index=True, width="stretch", column_config=EPOCH_COLUMNS)


def current(was_running: bool) -> JobSnapshot:
    snap = job_manager().snapshot()
    if was_running and not snap.running:
        st.rerun()  # the job ended: redraw the whole page (Train back on) and stop polling
    return snap


def live(was_running: bool) -> None:
    """Status, buttons, progress, chart and table of the current or last training."""
    snap = current(was_running)
    if snap.config is None:
        st.info(
            "No training in this server yet: pick a preset and click **Train**.",
            icon=":material/info:",
        )
        return
    what = "Paused" if snap.paused else "Training" if snap.running else "Last training"
    st.subheader(f"{what}: run `{snap.run_id or '...'}`")
    st.caption(F.describe(snap.config) + (f" - on {snap.device}" if snap.device else ""))
    if snap.running:
        buttons(snap)
        progress(snap)
    else:
        outcome(snap)
    chart(snap)


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
    status = page_setup("Train", ":material/model_training: Train")
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
    with st.container():  # (the same place in the page with or without an error)
        if err := st.session_state.pop("train_error", None):
            st.error(err, icon=":material/error:")
    # Every poll redraws in the browser, which often shares the CPU with the training.
    st.fragment(live, run_every=LIVE_POLL_S if snap.running else None)(snap.running)
    settings(snap, status.ok, n_images)
