"""Streamlit glue of "what the network sees" (Sketch and Confusion pages).

``explain_panel`` shows, for one prepared input, Grad-CAM of the predicted class and of a
class the user picks, the first layer's filters and every conv block's maps;
``epochs_panel`` shows the input's 10 class probabilities after every saved epoch of the
run, and Grad-CAM at the epoch picked with a slider. While the run trains, that part is a
fragment polling the run folder, so the chart grows with each finished epoch. The maths
and the pictures are fmnist_core.explain / explain_plots; this module only lays them out.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import streamlit as st
from torch import nn

from fmnist_app.common import plain
from fmnist_core import CLASSES, Run, RunError, load_run
from fmnist_core.explain import epoch_probabilities, explain, first_filters
from fmnist_core.explain_plots import activation_strip, cam_overlay, epochs_figure, filter_strip

LIVE_POLL_S = 2.0  # how often a running run's folder is checked for a new epoch
CAM_PX = 150  # shown size of a Grad-CAM overlay


@st.cache_resource(max_entries=64, show_spinner=False)
def epoch_model(path: str, epoch: int) -> nn.Module:
    """The model after ``epoch`` of the run at ``path`` (an epoch's weights never change once
    written, so the pair is the whole key)."""
    return load_run(path).load_model(epoch)


def _show(column: Any, pixels: np.ndarray, caption: str, fill: bool = False) -> None:
    """An image as wide as its column (``fill``: the side-by-side overlays, whose columns are
    narrower than an overlay at 800 px, where a fixed width overflowed the page), else at
    its own pixel width: "content" showed a lone 150-px overlay ~270 px wide, blurred."""
    width = "stretch" if fill else int(pixels.shape[1]) if pixels.shape[1] <= CAM_PX else "content"
    column.image(pixels, caption=caption, width=width)


def _strip_cols(n: int) -> int:
    return 8 if n <= 32 else 16  # rows of 8 stay legible in a half-width column at 800 px


def _why_not(key: str, probs: np.ndarray) -> int:
    top = int(probs.argmax())
    runner_up = int(np.argsort(-probs)[1])
    other = st.selectbox(
        "Why not...?", range(len(CLASSES)), index=runner_up, key=f"explain_class_{key}",
        format_func=lambda k: f"{CLASSES[k]} ({probs[k]:.1%})",
        help="Grad-CAM of another class: where the network found evidence for it.",
    )  # fmt: skip
    return top if other is None else int(other)


def explain_panel(key: str, model: nn.Module, tensor: Any, probs: np.ndarray) -> None:
    """Grad-CAM (predicted + picked class), first-layer filters and each block's maps."""
    st.markdown("##### :material/visibility: What the network sees")
    top = int(probs.argmax())
    other = _why_not(key, probs)
    expl = explain(model, tensor, classes=[top, other])
    image = tensor[0, 0].numpy()
    cols = st.columns(2)
    for col, cls, cam in zip(cols, expl.classes, expl.cams, strict=True):
        what = "predicted" if cls == top else "picked"
        _show(col, cam_overlay(image, cam, 2 * CAM_PX),
              f"Evidence for {CLASSES[cls]} ({what}, Grad-CAM)", fill=True)  # fmt: skip
    filters = first_filters(model)
    _show(
        st,
        filter_strip(filters, _strip_cols(len(filters))),
        f"First layer's {len(filters)} filters (blue: negative weights, red: positive)",
    )
    for n, maps in enumerate(expl.activations, start=1):
        c, h, w = maps.shape
        _show(st, activation_strip(maps, _strip_cols(c)), f"Block {n}: {c} maps of {h}x{w}")


def _epochs_body(key: str, path: Path, tensor: Any, live: bool) -> None:
    try:
        run = load_run(path)  # read again: a training adds epochs while the page is open
        models = [epoch_model(str(path), e) for e in run.epochs]
    except RunError as exc:
        st.error(f"Could not read this run's epochs: {plain(exc)}.")
        return
    if live and run.status != "running":
        st.rerun()  # the training ended: a full run stops the polling
    if len(models) < 2:  # one point is no history (and the panel above shows that epoch)
        st.caption("This run has one saved epoch so far: with more, this shows how its answer "
                   "for this image changed as it learned.")  # fmt: skip
        return
    probs = epoch_probabilities(models, tensor)
    chosen = st.select_slider("Epoch", run.epochs, value=run.epochs[-1],
                              key=f"explain_epoch_{key}")  # fmt: skip
    at = run.epochs.index(chosen)
    top = int(probs[at].argmax())
    figure = epochs_figure(run.epochs, probs, CLASSES, highlight=[top], marked_epoch=chosen)
    st.plotly_chart(figure, key=f"explain_epochs_{key}", config={"displayModeBar": False})
    cam = explain(models[at], tensor, classes=[top]).cams[0]
    _show(
        st,
        cam_overlay(tensor[0, 0].numpy(), cam, CAM_PX),
        f"Epoch {chosen}: {CLASSES[top]} ({probs[at, top]:.1%}), its evidence (Grad-CAM)",
    )


def epochs_panel(key: str, run: Run | None, tensor: Any) -> None:
    """The input's probabilities through the run's epochs; live while the run trains."""
    st.markdown("##### :material/timeline: Through the epochs")
    if run is None:
        st.caption("Pick a trained run to see how its answer changed epoch by epoch.")
        return
    live = run.status == "running"

    @st.fragment(run_every=LIVE_POLL_S if live else None)
    def body() -> None:
        _epochs_body(key, run.path, tensor, live)

    body()


def image_detail(key: str, run: Run, epoch: int, tensor: Any, true: int, pred: int) -> None:
    """One test image large, with Grad-CAM for its true and predicted class side by side,
    its top-3 (from the model at ``epoch``) and its probabilities through the run's epochs."""
    try:
        model = epoch_model(str(run.path), epoch)
    except RunError as exc:
        st.error(f"Could not load epoch {epoch} of this run: {plain(exc)}.")
        return
    expl = explain(model, tensor, classes=list(dict.fromkeys([true, pred])))
    image = tensor[0, 0].numpy()
    cols = st.columns(3)
    _show(
        cols[0],
        cam_overlay(image, np.zeros_like(image), 2 * CAM_PX, alpha=0.0),
        f"The image (true class {CLASSES[true]})",
    )
    for col, cls, cam in zip(cols[1:], expl.classes, expl.cams, strict=False):
        what = " and ".join(w for w, c in (("true", true), ("predicted", pred)) if c == cls)
        _show(
            col,
            cam_overlay(image, cam, 2 * CAM_PX),
            f"Evidence for {CLASSES[cls]} ({what}, Grad-CAM)",
        )
    top3 = np.argsort(-expl.probs)[:3]
    st.markdown("Top-3 after epoch " + f"{epoch}: " + ", ".join(
        f"**{CLASSES[k]}** {expl.probs[k]:.1%}" for k in top3))  # fmt: skip
    epochs_panel(key, run, tensor)
