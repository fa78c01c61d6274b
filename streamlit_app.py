"""Home page of the dashboard: what it does, where to go. Run: streamlit run streamlit_app.py

It draws its content before anything heavy is imported or loaded (the cold start): the page
text and links need Streamlit only; torch, the dataset and the runs come afterwards and fill
in the sidebar (with a spinner there while the dataset loads) and, without data, the notice.
"""

import streamlit as st

from fmnist_app.shell import CONFUSION_PAGE, SKETCH_PAGE, TRAIN_PAGE, page_start

page_start("Home")
st.title(":material/checkroom: Watch a CNN learn Fashion-MNIST")
st.write(
    "Train the classic notebook's convolutional network (or a stronger one) on 70,000 "
    "28x28 images of clothing, watch the cost fall and the accuracy climb live, see exactly "
    "which classes it confuses, and try it on your own drawings."
)
notice = st.container()  # the no-data message, if any, goes here: above the links

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

# Only now the heavy part. This import brings torch in, here in the script's thread before
# any worker thread can use it (importing torch lazily inside a worker raced with Plotly's
# numpy import: "partially initialized module 'numpy'").
from fmnist_app.common import show_data_error, sidebar_status  # noqa: E402

status = sidebar_status()
if not status.ok:
    with notice:
        show_data_error(status)
