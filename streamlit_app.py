"""Home page of the dashboard: what it does, where to go. Run: streamlit run streamlit_app.py"""

import streamlit as st
import torch  # noqa: F401 - import torch in the main thread first (see NOTES: numpy race)

from fmnist_app.common import CONFUSION_PAGE, SKETCH_PAGE, TRAIN_PAGE, page_setup, show_data_error

status = page_setup("Home")
st.title(":material/checkroom: Watch a CNN learn Fashion-MNIST")
st.write(
    "Train the classic notebook's convolutional network (or a stronger one) on 70,000 "
    "28x28 images of clothing, watch the cost fall and the accuracy climb live, see exactly "
    "which classes it confuses, and try it on your own drawings."
)
if not status.ok:
    show_data_error(status)

col1, col2, col3 = st.columns(3)
with col1:
    st.page_link(TRAIN_PAGE, label="**Train**", icon=":material/model_training:")
    st.caption("Pick hyperparameters, click Train, watch cost and accuracy live. Stop any time.")
with col2:
    st.page_link(CONFUSION_PAGE, label="**Confusion matrix**", icon=":material/grid_on:")
    st.caption("Click a cell of the matrix to see the test images the model got wrong.")
with col3:
    st.page_link(SKETCH_PAGE, label="**Sketch**", icon=":material/draw:")
    st.caption("Draw a clothing item and see what the model thinks it is, and what it sees.")
