"""Confusion matrix of a saved run: click a cell to browse the test images behind it."""

from fmnist_app.shell import page_head

# First, before torch and this page's modules load: a fresh tab shows the title at once.
page_head("Confusion matrix", ":material/grid_on: Confusion matrix")

import streamlit as st  # noqa: E402
import torch  # noqa: E402, F401 - import torch in the main thread first (see NOTES: numpy race)

from fmnist_app import confusion as ui  # noqa: E402
from fmnist_app.common import show_data_error, sidebar_status  # noqa: E402

status = sidebar_status()
st.write(
    "Which classes does the model mix up? Rows are the true classes, columns what the model "
    "predicted. Click a cell (or pick the two classes below) to see those test images."
)
if not status.ok:
    show_data_error(status)

with st.container(horizontal=True, gap="medium", vertical_alignment="bottom"):  # wraps
    with st.container(width=ui.SUMMARY_PX):
        run = ui.pick_run()
    if run is None:
        st.stop()
    with st.container(width=280):
        epoch = ui.pick_epoch(run)
    rates = st.toggle("Row rates", key="cm_rates", help="Colour by the share of each true class")
view = ui.load_view(run, epoch)
if view is None:
    st.stop()

ui.sync_click()  # before the selectors exist: a new click moves them
# Side by side where both fit, the summary below the matrix where they do not (a wrapping
# row; a fixed width never exceeds the page's): the matrix keeps readable, square cells.
with st.container(horizontal=True, gap="large"):
    with st.container(width=ui.MATRIX_PX):
        ui.matrix(view, rates)
    with st.container(width=ui.SUMMARY_PX):
        ui.summary(view)
ui.gallery(view)
