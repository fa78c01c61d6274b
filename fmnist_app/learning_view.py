"""Streamlit glue of the Learning page: how a run learned, its feature space, its calibration.

Everything comes from the run's saved per-epoch files (fmnist_core.dynamics); the features
need a forward pass of a stratified test sample per epoch, cached per (run folder, epoch)
since an epoch's weights never change once written.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import streamlit as st
import torch

from fmnist_app.common import plain
from fmnist_app.confusion import PRED_KEY as CM_PRED_KEY
from fmnist_app.confusion import TRUE_KEY as CM_TRUE_KEY
from fmnist_core import CLASSES, DataError, Run, RunError, load_dataset, load_run
from fmnist_core import dynamics as dyn
from fmnist_core import dynamics_plots as dpl
from fmnist_core.data import load_tensors
from fmnist_core.explain_plots import epochs_figure

OPENED_KEY = "learn_opened"  # the test index whose per-epoch probabilities are shown
SCATTER_KEY = "learn_scatter"
CELL_TRUE_KEY, CELL_PRED_KEY = "learn_cell_true", "learn_cell_pred"  # the selectors
CELL_KEY = "learn_cell"  # the highlighted (true, pred) cell, or None
SEEN_KEY = "learn_cm_seen"  # the Confusion page's cell last taken over
SAMPLE = 2000  # test images in the feature view (stratified), as the issue asks at least
PER_GALLERY, COLUMNS = 12, 6
COLOUR_BY = ("true class", "predicted class", "right / wrong")


@st.cache_data(max_entries=16, show_spinner=False)
def predictions(path: str, epochs: tuple[int, ...]) -> tuple[np.ndarray, ...]:
    """(preds, confidences, labels) of every epoch; ``epochs`` keys a run that grew."""
    return dyn.run_predictions(load_run(path))


@st.cache_data(max_entries=16, show_spinner=False)
def calibration(path: str, epochs: tuple[int, ...]) -> list[dyn.Calibration]:
    return dyn.run_calibration(load_run(path))


@st.cache_data(max_entries=64, show_spinner=False)
def epoch_probs(path: str, epoch: int) -> torch.Tensor:
    return load_run(path).probs(epoch)


@st.cache_resource(max_entries=64, show_spinner=False)
def features(path: str, epoch: int) -> torch.Tensor:
    """Penultimate features (SAMPLE, D) of the sampled test images after ``epoch``."""
    run = load_run(path)
    tensors = load_tensors(run.config.image_size)
    index = dyn.feature_sample(tensors.test_y, SAMPLE)
    return dyn.run_features(run, epoch, tensors.test_x[index])


def test_images(run: Run) -> torch.Tensor | None:
    """The dataset's test images (N, 28, 28) uint8 if they are the run's test set."""
    try:
        ds = load_dataset()
    except DataError:
        st.info("The images need the dataset (see the message at the top of the page).")
        return None
    if not torch.equal(ds.test_labels, run.labels()):
        st.error(f"Run {plain(run.id)} was evaluated on a different test set than the dataset "
                 "found now, so its images cannot be shown.")  # fmt: skip
        return None
    return ds.test_images


def _open(index: int | None) -> None:
    st.session_state[OPENED_KEY] = index


def gallery(key: str, images: torch.Tensor, indices: np.ndarray, captions: list[str]) -> None:
    """Thumbnails with an Open button each (opens its per-epoch probabilities)."""
    if not len(indices):
        st.caption("None.")
        return
    items = list(zip(indices[:PER_GALLERY], captions[:PER_GALLERY], strict=False))
    for row in range(0, len(items), COLUMNS):
        for col, (i, text) in zip(st.columns(COLUMNS), items[row : row + COLUMNS], strict=False):
            with col:
                st.image(images[int(i)].numpy(), caption=f"#{int(i)} {text}", width=56)
                st.button("Open", key=f"learn_open_{key}_{int(i)}", icon=":material/zoom_in:",
                          on_click=_open, args=(int(i),))  # fmt: skip


def opened(run: Run, images: torch.Tensor, labels: np.ndarray) -> None:
    """The opened image and its saved probabilities after every epoch."""
    index = st.session_state.get(OPENED_KEY)
    if not (isinstance(index, int) and not isinstance(index, bool) and 0 <= index < len(images)):
        return  # nothing opened (or a value no button sends)
    with st.container(border=True):
        head, close = st.columns([5, 1], vertical_alignment="center")
        head.markdown(f"##### :material/zoom_in: Test image #{index} "
                      f"(true *{CLASSES[int(labels[index])]}*)")  # fmt: skip
        close.button("Close", key="learn_close", icon=":material/close:", on_click=_open,
                     args=(None,))  # fmt: skip
        pic, chart = st.columns([1, 4])
        pic.image(images[index].numpy(), width=112)
        probs = np.stack([epoch_probs(str(run.path), e)[index].float().numpy()
                          for e in run.epochs])  # fmt: skip
        top = int(probs[-1].argmax())
        fig = epochs_figure(run.epochs, probs, CLASSES, highlight=[int(labels[index]), top])
        chart.plotly_chart(fig, key="learn_opened_chart", config={"displayModeBar": False})


def clicked_index(state: Mapping[str, Any] | None) -> int | None:
    """The test index of a clicked scatter point (its customdata), None when none."""
    selection = state.get("selection") if isinstance(state, Mapping) else None
    points = selection.get("points") if isinstance(selection, Mapping) else None
    if not isinstance(points, list | tuple) or not points or not isinstance(points[0], Mapping):
        return None
    data = points[0].get("customdata")
    if isinstance(data, list | tuple) and len(data) == 1:
        data = data[0]
    return data if isinstance(data, int) and not isinstance(data, bool) and data >= 0 else None


def _is_class(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < len(CLASSES)


def _cell(value: Any) -> tuple[int, int] | None:
    """A (true, pred) pair of class indices, else None (also for a value no widget sends)."""
    ok = isinstance(value, tuple | list) and len(value) == 2 and all(map(_is_class, value))
    return (int(value[0]), int(value[1])) if ok else None


def adopt_confusion_cell() -> None:
    """Take over a cell newly picked on the Confusion-matrix page. Call on every run, first:
    Streamlit drops that page's widget values at the end of the first run of another page,
    so they are kept here in plain session state (CELL_KEY), which lasts the session."""
    picked = _cell((st.session_state.get(CM_TRUE_KEY), st.session_state.get(CM_PRED_KEY)))
    if picked is not None and picked != st.session_state.get(SEEN_KEY):
        st.session_state[SEEN_KEY] = picked
        st.session_state[CELL_KEY] = picked


def _store_cell() -> None:
    """The selectors' values (either may be None until both are picked) into CELL_KEY."""
    st.session_state[CELL_KEY] = (
        st.session_state.get(CELL_TRUE_KEY),
        st.session_state.get(CELL_PRED_KEY),
    )


def _half(value: Any) -> int | None:
    return int(value) if _is_class(value) else None


def cell_picker() -> tuple[int, int] | None:
    """A confusion-matrix cell (true, predicted) to highlight; None: no highlight. The
    selectors show CELL_KEY (they are set from it before they exist: a widget's own value
    is dropped whenever another section is shown) and write it back when changed."""
    saved = st.session_state.get(CELL_KEY)
    pair = saved if isinstance(saved, tuple | list) and len(saved) == 2 else (None, None)
    true, pred = _half(pair[0]), _half(pair[1])
    st.session_state[CELL_TRUE_KEY], st.session_state[CELL_PRED_KEY] = true, pred
    options = [None, *range(len(CLASSES))]
    names = {None: "-", **dict(enumerate(CLASSES))}
    left, right = st.columns(2)
    left.selectbox("Highlight true class", options, key=CELL_TRUE_KEY, format_func=names.get,
                   on_change=_store_cell)  # fmt: skip
    right.selectbox("... predicted as", options, key=CELL_PRED_KEY, format_func=names.get,
                    on_change=_store_cell)  # fmt: skip
    return None if true is None or pred is None else (true, pred)


def _epoch_slider(run: Run, key: str) -> int:
    if len(run.epochs) == 1:
        st.caption(f"Epoch {run.epochs[0]} (the run's only epoch)")
        return run.epochs[0]
    return st.select_slider("Epoch", run.epochs, value=run.epochs[-1], key=f"{key}_{run.id}")


def timeline_section(run: Run, images: torch.Tensor, others: list[Run]) -> None:
    """Learned-at per class, flips per epoch (and class), the galleries, a run comparison."""
    preds, _, labels = predictions(str(run.path), tuple(run.epochs))
    correct = dyn.correctness(preds, labels)
    tl = dyn.timeline(correct, run.epochs)
    cols = st.columns(4)
    cols[0].metric("Learned", f"{int((tl.learned_at > 0).sum()):,}",
                   help="Right from some epoch on, to the last epoch")  # fmt: skip
    cols[1].metric("Forgotten", f"{int((tl.forgotten > 0).sum()):,}",
                   help="Went from right to wrong at least once")  # fmt: skip
    cols[2].metric("Never learned", f"{int(tl.never.sum()):,}", help="Wrong at every epoch")
    cols[3].metric("Wrong at the end", f"{int((~correct[-1]).sum()):,}",
                   help="Wrong at the last epoch")  # fmt: skip
    counts = dyn.learned_at_counts(tl, labels)
    st.plotly_chart(dpl.learned_at_figure(counts, run.epochs, CLASSES), key="learn_learned_at")
    if len(run.epochs) > 1:
        f = dyn.flips(correct, labels)
        st.plotly_chart(dpl.flips_figure(run.epochs[1:], f["forgot"], f["learned"]),
                        key="learn_flips")  # fmt: skip
        kind = st.radio("Per class", ("right → wrong", "wrong → right"), horizontal=True,
                        key="learn_flip_kind")  # fmt: skip
        table = f["forgot_per_class"] if kind == "right → wrong" else f["learned_per_class"]
        title = f"Images that went {kind} at each epoch, per true class"
        st.plotly_chart(dpl.class_epoch_figure(table.T, run.epochs[1:], CLASSES, title),
                        key="learn_flips_class")  # fmt: skip
    opened(run, images, labels)
    g = dyn.galleries(tl, PER_GALLERY)
    never, forgot, late = st.tabs(["Never learned", "Most forgotten", "Learned last"])
    with never:
        gallery("never", images, g["never"], [CLASSES[labels[i]] for i in g["never"]])
    with forgot:
        gallery("forgot", images, g["forgotten"],
                [f"forgotten {tl.forgotten[i]}×" for i in g["forgotten"]])  # fmt: skip
    with late:
        gallery("late", images, g["late"], [f"at {tl.learned_at[i]}" for i in g["late"]])
    compare(run, images, correct[-1], others)


def compare(run: Run, images: torch.Tensor, right: np.ndarray, others: list[Run]) -> None:
    """The test images this run (last epoch) gets right and another run's last epoch wrong."""
    st.markdown("##### :material/compare_arrows: Compare with another run")
    others = [o for o in others if o.id != run.id and o.history]
    if not others:
        st.caption("No other trained run to compare with.")
        return
    other = st.selectbox("Other run", others, format_func=Run.label, key="learn_other")
    try:
        preds, _, labels = predictions(str(other.path), tuple(other.epochs))
    except RunError as exc:
        st.error(f"Cannot read run {plain(other.id)}: {plain(exc)}.")
        return
    if len(labels) != len(right) or not np.array_equal(labels, run.labels().numpy()):
        st.warning("That run was evaluated on a different test set: nothing to compare.")
        return
    only_this, only_other = dyn.disagreements(right, preds[-1] == labels)
    left, right_col = st.columns(2)
    with left:
        st.markdown(f"**{len(only_this):,}** right here, wrong in the other run")
        gallery("cmp_a", images, only_this, [CLASSES[labels[i]] for i in only_this])
    with right_col:
        st.markdown(f"**{len(only_other):,}** wrong here, right in the other run")
        gallery("cmp_b", images, only_other, [CLASSES[labels[i]] for i in only_other])


@st.cache_resource(max_entries=16, show_spinner=False)
def _final_frame(path: str, epoch: int) -> tuple[dyn.Basis, np.ndarray, tuple]:
    """The final epoch's PCA basis, its projected points and the fixed axis ranges."""
    final = features(path, epoch)
    basis = dyn.pca_basis(final)
    reference = dyn.project(final, basis)
    return basis, reference, dyn.axis_ranges(reference)


def _groups(mode: str, labels: np.ndarray, preds: np.ndarray) -> tuple[np.ndarray, list, tuple]:
    """Group index per point, the group names and their colours for ``mode``."""
    if mode == "right / wrong":
        return (preds != labels).astype(int), ["right", "wrong"], (dpl.RIGHT, dpl.WRONG)
    return (labels if mode == "true class" else preds), list(CLASSES), dpl.TEN


def feature_section(run: Run, images: torch.Tensor) -> None:
    """The sampled test images' penultimate features on the final epoch's two principal
    directions, per epoch; a clicked point opens its image."""
    epoch_col, colour_col = st.columns([3, 2])
    with epoch_col:
        epoch = _epoch_slider(run, "learn_feat_epoch")
    mode = colour_col.radio("Colour by", COLOUR_BY, horizontal=True, key="learn_colour")
    cell = cell_picker()
    path = str(run.path)
    basis, reference, ranges = _final_frame(path, run.epochs[-1])
    coords = dyn.aligned(dyn.project(features(path, epoch), basis), reference)
    labels_all = run.labels().numpy()
    index = dyn.feature_sample(torch.from_numpy(labels_all), SAMPLE).numpy()
    preds, _, _ = predictions(path, tuple(run.epochs))
    labels, pred = labels_all[index], preds[run.epochs.index(epoch)][index]
    groups, names, colours = _groups(mode, labels, pred)
    hover = [f"#{i}: {CLASSES[t]}, predicted {CLASSES[p]}" for i, t, p in zip(index, labels, pred,
             strict=True)]  # fmt: skip
    highlight = None if cell is None else (labels == cell[0]) & (pred == cell[1])
    if highlight is not None:
        st.caption(f"{int(highlight.sum())} of the shown images are true *{CLASSES[cell[0]]}* "
                   f"predicted *{CLASSES[cell[1]]}* after epoch {epoch}.")  # fmt: skip
    fig = dpl.feature_scatter(coords, groups, names, index, hover, ranges, highlight, colours)
    st.plotly_chart(fig, on_select="rerun", selection_mode="points", key=SCATTER_KEY)
    st.caption(f"{len(index):,} test images (a stratified sample), each epoch projected on the "
               "final epoch's two principal directions and scaled to its spread, so the axes "
               "stay put while the clusters form. Click a point to open its image.")  # fmt: skip
    clicked = clicked_index(st.session_state.get(SCATTER_KEY))
    if clicked != st.session_state.get("learn_last_click"):
        st.session_state["learn_last_click"] = clicked
        if clicked is not None and clicked < len(images):
            _open(clicked)
    opened(run, images, labels_all)


def calibration_section(run: Run, images: torch.Tensor) -> None:
    """Reliability diagram, ECE per epoch (with and without temperature), the confidence
    histogram split right / wrong and the most confidently wrong images."""
    path = str(run.path)
    cals = calibration(path, tuple(run.epochs))
    epoch = _epoch_slider(run, "learn_cal_epoch")
    cal = cals[run.epochs.index(epoch)]
    cols = st.columns(3)
    cols[0].metric("ECE as saved", f"{cal.ece:.2%}")
    cols[1].metric("ECE after temperature scaling", f"{cal.ece_scaled:.2%}")
    cols[2].metric("Temperature", f"{cal.temperature:.2f}")
    st.caption("The temperature is fitted on one half of the test set (a fixed stratified "
               "half); both ECEs and the diagram are measured on the other half, which the "
               "fit never saw.")  # fmt: skip
    probs, labels = epoch_probs(path, epoch), run.labels()
    _, held = dyn.calibration_split(labels)
    raw = dyn.reliability(*dyn.confidence(probs[held], labels[held]))
    scaled = dyn.reliability(
        *dyn.confidence(dyn.scale_probs(probs[held], cal.temperature), labels[held])
    )
    left, right = st.columns(2)
    left.plotly_chart(dpl.reliability_figure(raw, scaled, cal.temperature), key="learn_rel")
    right.plotly_chart(dpl.ece_figure(run.epochs, [c.ece for c in cals],
                       [c.ece_scaled for c in cals]), key="learn_ece")  # fmt: skip
    conf, ok = dyn.confidence(probs, labels)
    st.plotly_chart(dpl.confidence_figure(dyn.confidence_histogram(conf, ok)), key="learn_conf")
    st.markdown("##### :material/error: Most confidently wrong")
    opened(run, images, labels.numpy())
    worst = dyn.most_confident_wrong(conf, ok, PER_GALLERY)
    gallery("conf", images, worst, [f"{conf[i]:.0%} sure" for i in worst])
