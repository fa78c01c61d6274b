"""Sketch: draw a clothing item (or upload one) and see what the model thinks it is."""

from fmnist_app.shell import page_head

# First, before torch and this page's modules load: a fresh tab shows the title at once.
page_head("Sketch", ":material/draw: Sketch")

import streamlit as st  # noqa: E402
import torch  # noqa: E402, F401 - import torch in the main thread first (see NOTES: numpy race)

from fmnist_app import sketch as ui  # noqa: E402
from fmnist_app.common import show_data_error, sidebar_status  # noqa: E402

status = sidebar_status()
st.write(  # short: on a laptop's screen the whole canvas stays above the fold
    "Draw one clothing item - a T-shirt, trousers, a bag, a sneaker... - and see after every "
    "stroke what the model makes of it, framed as Fashion-MNIST frames its items (cropped, "
    "scaled to 28x28, centred, outlines filled)."
)
if not status.ok:  # drawing still works (shipped model); training and test images need it
    show_data_error(status)
loaded = ui.pick_model()
if loaded is None:
    st.stop()

draw_tab, upload_tab, test_tab = st.tabs(["Draw", "Upload an image", "Random test image"])
with draw_tab:
    ui.draw_panel(loaded)  # canvas and result side by side where both fit
with upload_tab:
    ui.upload(loaded, ui.fill_setting())
with test_tab:
    ui.random_test_image(loaded, status.ok)
