"""Streamlit glue of the Confusion-matrix page: run picker, clickable matrix, summary, gallery.

A click on the matrix and the two class selectors pick the same cell. The click arrives in
``st.session_state[CHART_KEY]`` before the page runs; ``sync_click`` copies a *new* click into
the selectors' state before they are created, so afterwards the selectors alone drive the
gallery (changing a selector is never undone by an old click).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd
import streamlit as st
import torch

from fmnist_app.common import TRAIN_PAGE, plain
from fmnist_app.explain_view import image_detail
from fmnist_core import CLASSES, DataError, Run, RunError, active_run, load_dataset
from fmnist_core.evaluate import (
    accuracy,
    cell_images,
    confusion_matrix,
    per_class_metrics,
    top_confusions,
)
from fmnist_core.plots import confusion_figure
from fmnist_core.runs import scan_runs
from fmnist_core.sketch import from_frame

CHART_KEY = "cm_chart"
TRUE_KEY, PRED_KEY = "cm_true", "cm_pred"
PAGE_KEY, PAGE_FOR_KEY = "cm_page", "cm_page_for"
LAST_CLICK_KEY = "cm_last_click"
OPENED_KEY = "cm_opened"  # the test index of the gallery image opened large (None: none)
SCROLL_KEY, CLICKS_KEY = "cm_scroll", "cm_clicks"  # a cell was just picked; picks so far
GALLERY_ANCHOR = "cm-gallery"  # the gallery heading's id in the page
PER_PAGE, SCALE = 24, 4
MATRIX_PX, SUMMARY_PX = 620, 440  # the widest they get; narrower pages shrink the matrix
TILE_PX = 120  # one gallery image with its caption: as many per row as fit, then the next row
CELL_HIT_PX = 28  # the clickable square on each cell: the smallest cell the layout allows
METRICS = ("precision", "recall", "f1")


@dataclass(frozen=True)
class View:
    """One run at one epoch: its test labels, predictions and confusion matrix."""

    run: Run
    epoch: int
    labels: torch.Tensor  # (N,)
    probs: torch.Tensor  # (N, 10)
    cm: torch.Tensor  # (10, 10) counts


def select_cell(true: int, pred: int, point: bool = True) -> None:
    """Point the selectors at a cell; call before they are created (or from a callback).
    With ``point`` the gallery then points at itself (``point_at_gallery``)."""
    st.session_state[TRUE_KEY] = true
    st.session_state[PRED_KEY] = pred
    if not point:  # the page's default cell: nothing was clicked
        return
    st.session_state[SCROLL_KEY] = st.session_state.get(CLICKS_KEY, 0) + 1
    st.session_state[CLICKS_KEY] = st.session_state[SCROLL_KEY]


def clicked_cell(state: Mapping[str, Any] | None) -> tuple[int, int] | None:
    """The (true, pred) cell of a plotly_chart selection state, None when nothing is clicked."""
    selection = state.get("selection") if isinstance(state, Mapping) else None
    points = selection.get("points") if isinstance(selection, Mapping) else None
    if not isinstance(points, list | tuple) or not points:
        return None
    point = points[0] if isinstance(points[0], Mapping) else {}
    data = point.get("customdata")
    if isinstance(data, list | tuple) and len(data) == 2 and all(map(_is_class, data)):
        return int(data[0]), int(data[1])
    x, y = point.get("x"), point.get("y")
    if isinstance(x, str) and isinstance(y, str) and x in CLASSES and y in CLASSES:
        return CLASSES.index(y), CLASSES.index(x)
    return None  # nothing clicked, or a value no chart sends (a hand-made request)


def _is_class(value: Any) -> bool:
    """A class index; bool is an int to Python but no chart sends one."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < len(CLASSES)


def sync_click() -> None:
    """Apply a click that is new since the last run to the selectors."""
    cell = clicked_cell(st.session_state.get(CHART_KEY))
    if cell != st.session_state.get(LAST_CLICK_KEY):
        st.session_state[LAST_CLICK_KEY] = cell
        if cell is not None:
            select_cell(*cell)


OPEN_RUN_KEY = "cm_open_run"  # a run id to preselect, set by another page


def pick_run() -> Run | None:
    """Selectbox over runs with a completed epoch; None (and a message) when there are none."""
    runs, warnings = scan_runs()
    if warnings:
        with st.expander(f"{len(warnings)} broken run folder(s) skipped"):
            for warning in warnings:
                st.caption(plain(warning))  # folder names and file errors: shown as plain text
    usable = {run.id: run for run in runs if run.history}
    if not usable:
        st.info("No trained model yet: train one on the Train page, then come back here.")
        st.page_link(TRAIN_PAGE, label="Go to the Train page", icon=":material/model_training:")
        return None
    ids = list(usable)
    active = active_run()
    finished = [i for i, run in enumerate(usable.values()) if run.status == "finished"]
    default = ids.index(active.id) if active and active.id in usable else (finished or [0])[0]
    opened = st.session_state.pop(OPEN_RUN_KEY, None)  # the Runs page's "open in" button
    if isinstance(opened, str) and opened in usable:
        default = ids.index(opened)
        st.session_state.pop("cm_run", None)  # the widget starts again from ``index``
    run_id = st.selectbox(
        "Run", ids, index=default, format_func=lambda i: usable[i].label(), key="cm_run"
    )
    return usable[run_id]


def pick_epoch(run: Run) -> int:
    epochs = run.epochs
    if len(epochs) == 1:
        st.caption(f"Epoch {epochs[0]} (the run's only epoch)")
        return epochs[0]
    return st.select_slider("Epoch", epochs, value=epochs[-1], key=f"cm_epoch_{run.id}")


def load_view(run: Run, epoch: int) -> View | None:
    """The run's predictions at ``epoch``; None (with a message) when its files are broken."""
    try:
        probs, labels = run.probs(epoch), run.labels()
    except RunError as exc:
        st.error(f"Cannot show run {plain(run.id)}: {plain(exc)}. Pick another run.")
        return None
    if len(probs) != len(labels) or probs.shape[1] != len(CLASSES):
        st.error(
            f"Run {plain(run.id)} has predictions that do not match its labels. Pick another run."
        )
        return None
    return View(run, epoch, labels, probs, confusion_matrix(labels, probs.argmax(1)))


def init_selection(view: View) -> tuple[int, int]:
    """The selected cell; starts at the most confused pair (also when the session holds a
    value no selector sends, e.g. cm_true="99" from a hand-made request)."""
    state = st.session_state
    if not (_is_class(state.get(TRUE_KEY)) and _is_class(state.get(PRED_KEY))):
        pairs = top_confusions(view.cm, 1)
        select_cell(*(pairs[0][:2] if pairs else (0, 0)), point=False)
    return st.session_state[TRUE_KEY], st.session_state[PRED_KEY]


def matrix(view: View, rates: bool) -> None:
    selected = init_selection(view)
    fig = confusion_figure(view.cm.tolist(), CLASSES, rates=rates, selected=selected)
    # Square cells (the counts are in them: no colour bar), sized by the column's width.
    fig.update_traces(showscale=False, selector={"type": "heatmap"})
    fig.update_traces(marker_size=CELL_HIT_PX, selector={"type": "scatter"})
    fig.update_layout(height=MATRIX_PX - 120, yaxis_scaleanchor="x", yaxis_constrain="domain",
                      xaxis_constrain="domain")  # fmt: skip
    st.plotly_chart(fig, on_select="rerun", selection_mode="points", key=CHART_KEY)
    st.caption("Click a cell to see its test images below (rows: true class, columns: predicted).")


def summary(view: View) -> None:
    """Accuracy, the per-class table and the most confused pairs (each opens its cell)."""
    st.metric("Test accuracy", f"{accuracy(view.cm):.1%}")
    st.caption(
        f"{int(view.cm.sum()):,} test images, epoch {view.epoch} of run {plain(view.run.id)}"
    )
    table = pd.DataFrame(per_class_metrics(view.cm))
    table[list(METRICS)] *= 100
    percent = st.column_config.NumberColumn(format="%.1f%%")
    st.dataframe(table, hide_index=True, column_config=dict.fromkeys(METRICS, percent),
                 width="stretch")  # fmt: skip
    st.markdown("**Most confused pairs** (true → predicted)")
    for true, pred, count in top_confusions(view.cm, 5):
        st.button(
            f"{CLASSES[true]} → {CLASSES[pred]}: {count}",
            key=f"cm_pair_{true}_{pred}",
            on_click=select_cell,
            args=(true, pred),
        )


def _page(view: View, true: int, pred: int, total: int) -> int:
    """The page number widget (when needed); back to page 1 whenever the cell changes."""
    cell = (view.run.id, view.epoch, true, pred)
    if st.session_state.get(PAGE_FOR_KEY) != cell:
        st.session_state[PAGE_FOR_KEY] = cell
        st.session_state[PAGE_KEY] = 1
    pages = max(1, math.ceil(total / PER_PAGE))
    if pages == 1:
        return 1
    page = st.columns([1, 4])[0].number_input(f"Page (of {pages})", 1, pages, step=1, key=PAGE_KEY)
    return int(page)


def _test_images(view: View) -> torch.Tensor | None:
    """The dataset's test images if they are the run's test set; else a message and None."""
    try:
        ds = load_dataset()
    except DataError:
        st.info("The images need the dataset (see the message at the top of the page).")
        return None
    if not torch.equal(ds.test_labels, view.labels):
        st.error(
            f"Run {plain(view.run.id)} was evaluated on a different test set "
            f"({len(view.labels):,} images) than the dataset found now "
            f"({len(ds.test_labels):,} images from {plain(ds.source)}), so its images cannot "
            "be shown."
        )
        return None
    return ds.test_images


def point_at_gallery(true: int, pred: int, total: int) -> None:
    """After a click on the matrix (or a confused pair): a toast saying what opened, and the
    page scrolled to the gallery (it sits below the fold of a wide page, under the matrix).

    Drawn last and only on the run after a click, so no widget above moves. The script runs
    in a same-origin component frame and scrolls the page's own heading into view; the click
    count in it makes each click's frame new (an unchanged one would not run again)."""
    clicks = st.session_state.pop(SCROLL_KEY, None)
    if not clicks:
        return
    st.toast(
        f"{total} test image(s): true {CLASSES[true]}, predicted {CLASSES[pred]} - shown "
        "below the matrix.",
        icon=":material/arrow_downward:",
    )
    st.iframe(
        f"<script>/* click {clicks} */ const heading = window.parent.document"
        f".getElementById('{GALLERY_ANCHOR}'); if (heading) heading.scrollIntoView("
        "{behavior: 'smooth', block: 'start'});</script>",
        height=1,
    )


def gallery(view: View) -> None:
    """Selectors for (true, predicted) and the test images of that cell, paged."""
    st.subheader("Test images behind a cell", anchor=GALLERY_ANCHOR)
    left, right = st.columns(2)
    true = left.selectbox(
        "True class", range(len(CLASSES)), format_func=CLASSES.__getitem__, key=TRUE_KEY
    )
    pred = right.selectbox(
        "Predicted class", range(len(CLASSES)), format_func=CLASSES.__getitem__, key=PRED_KEY
    )
    images = _test_images(view)
    if images is None:
        return
    total = int(view.cm[true, pred])
    kind = "least confident first" if true == pred else "most confident mistakes first"
    st.markdown(
        f"**{total} test image(s)** with true *{CLASSES[true]}* predicted "
        f"*{CLASSES[pred]}* ({kind})"
    )
    if total == 0:
        st.info("No test image falls in this cell.")
        return
    page = _page(view, true, pred, total)
    items, _ = cell_images(
        view.labels, view.probs, images, true, pred, (page - 1) * PER_PAGE, PER_PAGE, SCALE
    )
    opened(view, images)
    with st.container(horizontal=True):  # wraps: as many per row as the page's width allows
        for item in items:
            with st.container(width=TILE_PX, gap="small"):
                st.image(item.image.numpy())
                st.caption(item.caption)  # one short line; the rest on the button's tooltip
                st.button("Open", key=f"cm_open_{item.index}", icon=":material/zoom_in:",
                          on_click=_open, args=(item.index,), help=item.details)  # fmt: skip
    point_at_gallery(true, pred, total)


def _open(index: int | None) -> None:
    st.session_state[OPENED_KEY] = index


def opened(view: View, images: torch.Tensor) -> None:
    """The gallery image opened with its button: large, with what the network saw in it."""
    index = st.session_state.get(OPENED_KEY)
    if not (isinstance(index, int) and not isinstance(index, bool) and 0 <= index < len(images)):
        return  # none opened (or a value no button sends)
    true, pred = int(view.labels[index]), int(view.probs[index].argmax())
    with st.container(border=True):
        head, close = st.columns([5, 1], vertical_alignment="center")
        head.markdown(f"##### :material/zoom_in: Test image #{index}: true *{CLASSES[true]}*, "
                      f"predicted *{CLASSES[pred]}* (epoch {view.epoch})")  # fmt: skip
        close.button("Close", key="cm_close", icon=":material/close:", on_click=_open, args=(None,))
        tensor = from_frame(images[index].numpy(), view.run.config.image_size).tensor
        image_detail("cm", view.run, view.epoch, tensor, true, pred)
