"""The Runs page's parts: the table, the overlaid curves, parallel coordinates, actions.

The selection is kept as run ids (``SELECTED_KEY``), never as row numbers: the table's
key changes with the list of runs (a new, deleted or imported run) and with every
selection made elsewhere (the chart's picker), and the new table starts from those ids.
"""

from __future__ import annotations

import tempfile
import zlib
from pathlib import Path

import pandas as pd
import streamlit as st

from fmnist_app.common import CONFUSION_PAGE, SKETCH_PAGE, plain
from fmnist_app.confusion import OPEN_RUN_KEY as CM_OPEN_KEY
from fmnist_app.sketch import OPEN_RUN_KEY as SKETCH_OPEN_KEY
from fmnist_core import manage, plots
from fmnist_core.record import follow
from fmnist_core.runs import Run, RunError, runs_dir, scan_runs, set_active

SELECTED_KEY = "runs_selected"  # run ids
GENERATION_KEY = "runs_table_generation"  # bumped when the selection changes from code
CONFIRM_KEY = "runs_confirm_delete"  # run id awaiting "Yes, delete"
UPLOADED_KEY = "runs_uploaded"  # file id of the last imported upload (import it once)
MESSAGE_KEY = "runs_message"  # (kind, text) shown once after an action's rerun
SWEEP_KEY = "runs_sweep"  # the sweep whose runs are shown; ALL_RUNS for every run
ALL_RUNS = "All runs"
IGNORED = ("name",)  # config fields not compared (the preset has its own column)


def table_key(ids: list[str], generation: int) -> str:
    """The table's widget key: a new one for another list of runs or a new generation."""
    return f"runs_table_{zlib.crc32(chr(10).join(ids).encode()):08x}_{generation}"


def select(ids: list[str]) -> None:
    """Make ``ids`` the selection (the table is redrawn with them selected)."""
    st.session_state[SELECTED_KEY] = list(ids)
    st.session_state[GENERATION_KEY] = st.session_state.get(GENERATION_KEY, 0) + 1


def differing(runs: list[Run]) -> list[str]:
    """Config fields whose values are not all equal among ``runs``."""
    configs = [run.config.to_dict() for run in runs]
    fields = [f for f in (configs[0] if configs else {}) if f not in IGNORED]
    return [f for f in fields if len({repr(c[f]) for c in configs}) > 1]


def frame(runs: list[Run], params: list[str]) -> pd.DataFrame:
    rows = []
    for run in runs:
        s = manage.summary(run)
        pct = {k: None if s[k] is None else 100 * s[k] for k in ("best_val_acc", "final_val_acc")}
        rows.append({
            "name": s["name"], "created": s["created"], "status": run.status_text,
            "preset": run.config.name, **{p: s["config"][p] for p in params},
            "best acc": pct["best_val_acc"], "best epoch": s["best_epoch"],
            "final acc": pct["final_val_acc"], "epochs": s["epochs_done"],
            "time (s)": s["train_s"], "device": s["device"], "procs": s["world_size"],
            "sweep": s["sweep_id"], "run id": run.id,
        })  # fmt: skip
    return pd.DataFrame(rows)


def sweep_filter(runs: list[Run]) -> list[Run]:
    """A choice of one sweep's runs (its trials) or all runs; shown only once a sweep exists.

    The table, the curves and the parallel-coordinates chart then show only those runs."""
    sweeps: dict[str, int] = {}
    for run in runs:
        if sweep_id := run.info.get("sweep_id"):
            sweeps[sweep_id] = sweeps.get(sweep_id, 0) + 1
    if not sweeps:
        return runs
    options = [ALL_RUNS, *sorted(sweeps, reverse=True)]  # newest sweep first
    if st.session_state.get(SWEEP_KEY) not in options:  # its runs were deleted
        st.session_state.pop(SWEEP_KEY, None)
    chosen = st.selectbox(
        "Sweep", options, key=SWEEP_KEY,
        format_func=lambda o: o if o == ALL_RUNS else f"{o} ({sweeps[o]} trials)",
        help="A sweep's trials (python -m fmnist_core sweep): the table and the parallel "
        "coordinates below show only them.",
    )  # fmt: skip
    if chosen == ALL_RUNS:
        return runs
    return [run for run in runs if run.info.get("sweep_id") == chosen]


def table(runs: list[Run]) -> list[Run]:
    """Every run in a sortable table; returns the selected runs (in table order)."""
    ids = [run.id for run in runs]
    key = table_key(ids, st.session_state.get(GENERATION_KEY, 0))
    remembered = [i for i in st.session_state.get(SELECTED_KEY, []) if i in ids]
    state = st.session_state.get(key)  # the click that started this rerun, if any
    rows = list(state["selection"]["rows"]) if state else [ids.index(i) for i in remembered]
    chosen = [runs[i] for i in sorted(rows) if isinstance(i, int) and 0 <= i < len(runs)]
    params = differing(chosen if len(chosen) > 1 else runs)
    percent = st.column_config.NumberColumn(format="%.2f%%")
    event = st.dataframe(
        frame(runs, params), key=key, on_select="rerun", selection_mode="multi-row",
        hide_index=True, width="stretch",
        selection_default={"selection": {"rows": [ids.index(i) for i in remembered]}},
        column_config={"best acc": percent, "final acc": percent,
                       "time (s)": st.column_config.NumberColumn(format="%.1f")},
    )  # fmt: skip
    chosen = [runs[i] for i in sorted(event.selection.rows) if 0 <= i < len(runs)]
    st.session_state[SELECTED_KEY] = [run.id for run in chosen]
    what = "selected runs" if len(chosen) > 1 else "runs"
    st.caption(
        f"Parameters shown: those that differ between the {what} "
        f"({', '.join(params) or 'none differ'}). Select rows to compare their curves."
    )
    return chosen


def curves(chosen: list[Run]) -> None:
    if not chosen:
        st.info(
            "Select one or more runs in the table to overlay their curves.", icon=":material/info:"
        )
        return
    against, batch, weight = st.columns([2, 2, 3], vertical_alignment="bottom")
    x = against.segmented_control("Against", ["epoch", "seconds"], default="epoch", key="runs_x")
    show = batch.toggle("Batch losses", key="runs_batch", help="Every batch's loss, smoothed.")
    smoothing = weight.slider("Smoothing", 0.0, 0.99, 0.6, 0.01, key="runs_smoothing",
                              disabled=not show)  # fmt: skip
    series = [(f"{run.name or run.id} ({run.id[-4:]})", run.history) for run in chosen]
    losses = [list(follow(run.path).losses) for run in chosen] if show else None
    fig = plots.runs_figure(series, "elapsed_s" if x == "seconds" else "epoch", losses, smoothing)
    st.plotly_chart(fig, width="stretch", key="runs_curves")


def parallel(runs: list[Run]) -> None:
    """Hyperparameters against best accuracy; Streamlit returns no selection for a
    parcoords chart, so a picker next to it selects a run."""
    scored = [run for run in runs if run.history]
    params = differing(scored)
    if len(scored) < 2 or not params:
        st.caption("Parallel coordinates appear once two trained runs differ in a parameter.")
        return
    best = [max(row["val_acc"] for row in run.history) for run in scored]
    values = {p: [run.config.to_dict()[p] for run in scored] for p in params}
    chart, pick = st.columns([3, 1])
    with chart:
        fig = plots.parcoords_figure(values, best, [run.id for run in scored])
        st.plotly_chart(fig, width="stretch", key="runs_parcoords")
    with pick:
        labels = {run.id: f"{run.name} · {acc:.1%} · " + ", ".join(
            f"{p}={values[p][i]}" for p in params) for i, (run, acc) in
            enumerate(zip(scored, best, strict=True))}  # fmt: skip
        choice = st.selectbox("Select a run from the chart", list(labels), index=None,
                              format_func=labels.get, key="runs_parcoords_pick")  # fmt: skip
        if choice and st.button("Add to the selection", icon=":material/add:"):
            select([*st.session_state.get(SELECTED_KEY, []), choice])
            st.rerun()


def _say(kind: str, text: str) -> None:
    st.session_state[MESSAGE_KEY] = (kind, text)


def show_message() -> None:
    if message := st.session_state.pop(MESSAGE_KEY, None):
        kind, text = message
        (st.success if kind == "ok" else st.error)(plain(text))


def _zip_bytes(run_id: str) -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        return manage.export_zip(run_id, Path(tmp) / "run.zip").read_bytes()


def _open_buttons(run: Run, active: bool) -> None:
    """Open the run in the Confusion matrix or Sketch page, preselected."""
    if st.button("Confusion matrix", icon=":material/grid_on:", disabled=not run.history,
                   key="runs_open_cm", width="stretch"):  # fmt: skip
        st.session_state[CM_OPEN_KEY] = run.id
        st.switch_page(CONFUSION_PAGE)
    usable = bool(run.history) and (active or run.status == "finished")
    if st.button("Sketch", icon=":material/draw:", disabled=not usable, key="runs_open_sketch",
                    help="finished runs and the active model", width="stretch"):  # fmt: skip
        st.session_state[SKETCH_OPEN_KEY] = run.id
        st.switch_page(SKETCH_PAGE)


def _attempt(action, success: str) -> None:
    """Run a run-changing ``action``; say how it went after the rerun it triggers."""
    try:
        action()
        _say("ok", success)
    except RunError as exc:
        _say("error", str(exc))
    st.rerun()


def _rename_and_note(run: Run) -> None:
    with st.form(f"runs_rename_{run.id}", border=False):
        name = st.text_input("Name", value=run.name, max_chars=100, key=f"runs_name_{run.id}")
        if st.form_submit_button("Rename", icon=":material/edit:"):
            _attempt(lambda: manage.rename(run.id, name), f"Renamed {run.id} to {name.strip()}")
    for note in run.notes:
        st.caption(plain(note))
    with st.form(f"runs_note_{run.id}", clear_on_submit=True, border=False):
        text = st.text_area("Add a note", max_chars=2000, key=f"runs_note_text_{run.id}", height=68)
        if st.form_submit_button("Add note", icon=":material/note_add:"):
            _attempt(lambda: manage.add_note(run.id, text), f"Note added to {run.id}")


def _delete(run: Run, active: bool) -> None:
    if st.session_state.get(CONFIRM_KEY) != run.id:
        running = run.status == "running"
        help_text = "a run still training cannot be deleted" if running else None
        if st.button("Delete", icon=":material/delete:", key="runs_delete", disabled=running,
                     help=help_text):  # fmt: skip
            st.session_state[CONFIRM_KEY] = run.id
            st.rerun()
        return
    what = " It is the **active model**: the newest finished run takes its place." * active
    st.warning(f"Delete run {plain(run.name)} ({plain(run.id)}) and all its files?{what}",
               icon=":material/warning:")  # fmt: skip
    yes, no = st.columns(2)
    if yes.button("Yes, delete", icon=":material/delete_forever:", key="runs_delete_yes",
                  type="primary"):  # fmt: skip
        st.session_state.pop(CONFIRM_KEY, None)
        try:
            manage.delete(run.id, force=True)
            _say("ok", f"Deleted {run.id}")
        except RunError as exc:
            _say("error", str(exc))
        select([i for i in st.session_state.get(SELECTED_KEY, []) if i != run.id])
        st.rerun()
    if no.button("Cancel", key="runs_delete_no"):
        st.session_state.pop(CONFIRM_KEY, None)
        st.rerun()


def actions(chosen: list[Run]) -> None:
    """Rename, note, open, mark active, download or delete one of the selected runs."""
    if not chosen:
        st.caption("Select a run in the table to rename, annotate, open, export or delete it.")
        return
    ids = {run.id: run for run in chosen}
    run_id = next(iter(ids))
    if len(ids) > 1:
        run_id = st.selectbox("Run", list(ids), index=len(ids) - 1, key="runs_focus",
                              format_func=lambda i: f"{ids[i].name} ({i})")  # fmt: skip
    run = ids.get(run_id) or chosen[-1]
    active = manage.active_id() == run.id
    st.markdown(f"**{plain(run.name)}** · {plain(run.id)}" + " · active model" * active)
    _open_buttons(run, active)
    if st.button("Mark as active", icon=":material/star:", disabled=active or not run.history,
                   key="runs_mark_active", width="stretch"):  # fmt: skip
        set_active(run.id)
        _say("ok", f"{run.id} is now the active model")
        st.rerun()
    st.download_button(
        "Download zip", data=lambda: _zip_bytes(run.id), file_name=f"{run.id}.zip",
        mime="application/zip", icon=":material/download:", key="runs_download",
        disabled=run.status == "running", width="stretch",
    )  # fmt: skip
    _rename_and_note(run)
    _delete(run, active)


def upload_and_csv(runs: list[Run]) -> None:
    up, csv = st.columns(2)
    with up:
        file = st.file_uploader("Import a run (.zip)", type=["zip"], key="runs_upload")
        if file is not None and st.session_state.get(UPLOADED_KEY) != file.file_id:
            st.session_state[UPLOADED_KEY] = file.file_id  # a rerun does not import it again
            try:
                run_id = manage.import_zip(file)
                _say("ok", f"Imported {file.name} as run {run_id}")
                select([run_id])
            except RunError as exc:
                _say("error", str(exc))
            st.rerun()
    with csv:
        st.download_button(
            "Download all metrics (CSV)", data=manage.metrics_csv(runs),
            file_name="runs_metrics.csv", mime="text/csv", icon=":material/table_view:",
            key="runs_csv", disabled=not runs,
        )  # fmt: skip
        usage = manage.disk_usage()
        st.caption(f"{len(runs)} runs, {sum(usage.values()) / 2**20:,.1f} MB in "
                   f"{plain(runs_dir())}")  # fmt: skip


def _running_stamp() -> tuple:
    """Cheap: the folder names, and each running run's status and epochs (re-read)."""
    from fmnist_core.runs import load_run

    root = runs_dir()
    try:
        names = tuple(sorted(p.name for p in root.iterdir()))
    except OSError:
        return ()
    live = []
    for run_id in st.session_state.get("runs_running", []):
        try:
            run = load_run(root / run_id)
            live.append((run_id, run.status, len(run.history)))
        except RunError:
            live.append((run_id, "gone", 0))
    return names, tuple(live)


def live_updates(runs: list[Run]) -> None:
    """While a run is training (or the folder changes), rerun the page when it moves on."""
    st.session_state["runs_running"] = [run.id for run in runs if run.status == "running"]
    stamp = _running_stamp()

    @st.fragment(run_every=2 if st.session_state["runs_running"] else 10)
    def watch() -> None:
        if _running_stamp() != stamp:
            st.rerun()

    watch()


def load() -> list[Run]:
    runs, warnings = scan_runs()
    if warnings:
        with st.expander(f"{len(warnings)} broken run folder(s) skipped"):
            for warning in warnings:
                st.caption(plain(warning))
    return runs
