"""How a run learned: learned-at and forgetting, its feature space, its calibration."""

import streamlit as st
import torch  # noqa: F401 - import torch in the main thread first (see NOTES: numpy race)

from fmnist_app import confusion as cm
from fmnist_app import learning_view as ui
from fmnist_app.common import page_setup, plain, show_data_error
from fmnist_core import RunError
from fmnist_core.runs import list_runs

SECTIONS = {
    "timeline": ":material/timeline: Learning timeline",
    "features": ":material/scatter_plot: Feature space",
    "calibration": ":material/speed: Calibration",
}

status = page_setup("Learning", ":material/school: How the network learned")
st.write(
    "Which test images the network learned when, forgot or never learned; how its "
    "penultimate-layer features form clusters epoch by epoch; and whether its confidence "
    "can be trusted. All from the run's saved per-epoch files: nothing is retrained."
)
if not status.ok:
    show_data_error(status)
ui.adopt_confusion_cell()  # before anything: those values last only this run
run = cm.pick_run()  # the active run by default, like the Confusion-matrix page
if run is None:
    st.stop()
images = ui.test_images(run)
if images is None:
    st.stop()
section = st.segmented_control(
    "View", list(SECTIONS), format_func=SECTIONS.get, default="timeline", key="learn_section"
)
try:
    if section == "features":
        ui.feature_section(run, images)
    elif section == "calibration":
        ui.calibration_section(run, images)
    else:
        ui.timeline_section(run, images, list_runs())
except RunError as exc:
    st.error(f"Cannot show run {plain(run.id)}: {plain(exc)}. Pick another run.")
