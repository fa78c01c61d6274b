"""How a run learned: learned-at and forgetting, its feature space, its calibration."""

from fmnist_app.shell import page_head

# First, before torch and this page's modules load: a fresh tab shows the title at once.
page_head("Learning", ":material/school: How the network learned")

import streamlit as st  # noqa: E402
import torch  # noqa: E402, F401 - import torch in the main thread first (see NOTES: numpy race)

from fmnist_app import confusion as cm  # noqa: E402
from fmnist_app import learning_view as ui  # noqa: E402
from fmnist_app.common import plain, show_data_error, sidebar_status  # noqa: E402
from fmnist_core import RunError  # noqa: E402
from fmnist_core.runs import list_runs  # noqa: E402

SECTIONS = {
    "timeline": ":material/timeline: Learning timeline",
    "features": ":material/scatter_plot: Feature space",
    "calibration": ":material/speed: Calibration",
}

status = sidebar_status()
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
