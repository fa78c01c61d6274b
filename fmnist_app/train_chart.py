"""The Train page's live chart and epoch table, with the runs picked on the Runs page.

    chart(snap)   # in the live view's fragment: the view switch, the chart, its caption, table

The chart itself (a Vega-Lite spec and its rows) is fmnist_core.live_chart.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from fmnist_app.common import plain
from fmnist_app.jobs import JobSnapshot
from fmnist_app.live_feed import live_feed
from fmnist_app.runs_view import SELECTED_KEY
from fmnist_core.live_chart import MAX_PICKED, training_chart
from fmnist_core.runs import RunError, find_run

EPOCH_COLUMNS = {  # labels and formats for the columns of events.epoch_row
    "cost": st.column_config.NumberColumn("cost", format="%.2f"),
    "train_loss": st.column_config.NumberColumn("train loss", format="%.4f"),
    "train_acc": st.column_config.NumberColumn(
        "train accuracy",
        format="percent",
        help="Running: the epoch's batches as the model classified them while training "
        "(before each update); empty for runs recorded before it was measured.",
    ),
    "val_loss": st.column_config.NumberColumn("test loss", format="%.4f"),
    "val_acc": st.column_config.NumberColumn("test accuracy", format="percent"),
    "seconds": st.column_config.NumberColumn("seconds", format="%.1f"),
    "elapsed_s": st.column_config.NumberColumn("elapsed s", format="%.1f"),
}
CHART_COLUMNS = ("series", "x", "y")  # training_chart's data rows
VIEWS = {"plain": "Losses and accuracy", "notebook": "The notebook's view (cost)"}


def picked_runs(current: str | None) -> list[tuple[str, list[dict[str, float]]]]:
    """(name, epoch rows) of the runs picked on the Runs page (this session's), the current
    run and runs deleted since left out. Read once per selection, not at every poll."""
    ids = tuple(i for i in st.session_state.get(SELECTED_KEY, []) if i != current)
    cached = st.session_state.get("train_picked")
    if cached is None or cached[0] != ids:
        found = []
        for run_id in ids:
            try:
                run = find_run(run_id)
            except RunError:
                continue
            if run.history:
                found.append((run.name, list(run.history)))
        st.session_state["train_picked"] = cached = (ids, found)
    return cached[1]


def chart(snap: JobSnapshot, browser: bool = False) -> bool:
    """The view switch, the chart, its caption and the epoch table; with ``browser`` (a
    running run whose id is known) the browser draws the progress, chart and table itself
    from the run's record (fmnist_app.live_feed). True when the browser saw the run end."""
    view = st.segmented_control(
        "Chart",
        list(VIEWS),
        format_func=VIEWS.get,
        key="train_view",
        default="plain",
        label_visibility="collapsed",
    )
    picked = picked_runs(snap.run_id)
    if browser:
        ended = live_feed(snap, view or "plain", picked)
        compared(snap, view, picked)
        return ended
    spec, data = training_chart(
        snap.history,
        snap.losses,
        snap.epochs,
        snap.batches,
        view=view or "plain",
        previous=snap.previous,
        picked=picked,
    )
    # Vega-Lite: a poll that changes only the data replaces the dataset in the browser's view,
    # no redraw from scratch (see fmnist_core.live_chart for what that saves).
    st.vega_lite_chart(
        pd.DataFrame(data, columns=CHART_COLUMNS), spec, key="train_chart", width="stretch"
    )
    compared(snap, view, picked)
    if snap.history:
        st.dataframe(snap.history, hide_index=True, width="stretch", column_config=EPOCH_COLUMNS)
    return False


def compared(snap: JobSnapshot, view: str | None, picked: list) -> None:
    """What the faint lines are."""
    if picked and view != "notebook":
        names = ", ".join(f"**{plain(name)}**" for name, _ in picked[:MAX_PICKED])
        more = f" (the first {MAX_PICKED} of {len(picked)})" if len(picked) > MAX_PICKED else ""
        st.caption(f"Faint, dotted: {names}{more}, picked on the Runs page, for comparison.")
    elif snap.previous and view != "notebook":
        st.caption("Grey, dotted: the previous training of this server, for comparison.")
