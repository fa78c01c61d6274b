"""Runs: compare saved trainings, overlay their curves, and rename, export or delete them."""

from fmnist_app.shell import page_head

# First, before torch and this page's modules load: a fresh tab shows the title at once.
page_head("Runs", ":material/table_chart: Runs")

import streamlit as st  # noqa: E402
import torch  # noqa: E402, F401 - import torch in the main thread first (see NOTES: numpy race)

from fmnist_app import runs_view as ui  # noqa: E402
from fmnist_app.common import show_data_error, sidebar_status  # noqa: E402

status = sidebar_status()
if not status.ok:  # saved runs can still be compared and managed; training cannot happen
    show_data_error(status)
st.write(
    "Every saved training. Select rows to overlay their curves; the table shows only the "
    "parameters that differ between the selected runs (or between all runs)."
)
ui.show_message()
runs = ui.load()
ui.live_updates(runs)
runs = ui.sweep_filter(runs)
if not runs:
    st.info("No runs yet: train one on the Train page, or import a run's zip below.",
            icon=":material/info:")  # fmt: skip
chosen = ui.table(runs)
curves_col, actions_col = st.columns([2, 1])
with curves_col:
    ui.curves(chosen)
with actions_col:
    ui.actions(chosen)
st.subheader("Hyperparameters against accuracy")
ui.parallel(runs)
st.subheader("Import and export")
ui.upload_and_csv(runs)
