"""The Sketch page's answer panel: what the model sees, its answer, the 10 probabilities,
then (on demand in the Draw tab) what the network sees and its answers through the epochs.

``show_answer`` frames an image (fmnist_core.sketch), asks the model (fmnist_core.ood: the
answer and whether it looks like clothing) and shows the answer; ``show_explanation`` adds the
panels of explain_view.py. The Draw tab redraws the answer after every stroke, so it stays
cheap: HTML bars (fmnist_app/bars.py), and the panels behind a switch, off by default.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import streamlit as st
from PIL import Image
from torch import nn

from fmnist_app.bars import probability_bars
from fmnist_app.common import plain
from fmnist_app.explain_view import epochs_panel, explain_panel
from fmnist_core import CLASSES, Run, RunError, load_run, ood
from fmnist_core.sketch import (
    EmptySketchError,
    Prepared,
    SketchError,
    UploadError,
    from_frame,
    predict,
    prepare,
)

EXPLAIN_KEY = "sketch_explain"  # the Draw tab's "what the network sees" switch
SHOWN_PX = 196  # the model's input is shown enlarged to this width
EMPTY_MESSAGES = {"draw": "Draw something on the canvas: the prediction appears here."}


@dataclass(frozen=True)
class Loaded:
    model: nn.Module
    image_size: int
    label: str
    default: bool  # a model shipped with the app
    run: Run | None = None  # where the model's epochs are (for "through the epochs")
    limits: dict | None = None  # its out-of-distribution calibration (fmnist_core.ood)
    active: Run | None = None  # the active run, whose answer is shown too when it differs


@st.cache_resource(max_entries=8, show_spinner=False)
def load_model(path: str, stamp: float) -> nn.Module:  # stamp: reload when history changes
    return load_run(path).load_model()


def stamp(run: Run) -> float:
    try:
        return (run.path / "history.json").stat().st_mtime
    except OSError:
        return 0.0


def why(run: Run) -> str:
    """How a model was trained, in the words that explain its answers to drawings."""
    cfg = run.config
    seen = "on photos and drawings of them" if cfg.sketch_augment else "on photos only"
    return f"trained at {cfg.image_size}x{cfg.image_size} {seen}"


@dataclass(frozen=True)
class Shown:
    tensor: Any  # the model's input (1, 1, S, S)
    probs: np.ndarray  # (10,)


def _other_answer(loaded: Loaded, prepared: Prepared, top: int) -> None:
    """The active run's answer next to the shown one, when it differs, and why it may."""
    active = loaded.active
    if active is None or loaded.run is None or active.path == loaded.run.path:
        return
    try:
        model = load_model(str(active.path), stamp(active))
        # The same 28x28 frame, at the active run's input size: prepare() = from_frame(frame).
        probs = predict(model, from_frame(prepared.preview, active.config.image_size).tensor)
    except RunError:
        return
    other = int(probs.argmax())
    if other != top:
        st.caption(f"Your active run {active.id} says **{CLASSES[other]}** ({probs[other]:.1%}):"
                   f" it was {why(active)}.")  # fmt: skip


def enlarged(tensor: Any) -> Image.Image:
    pixels = (tensor.squeeze().clamp(0, 1).mul(255).round().byte().numpy()).astype(np.uint8)
    return Image.fromarray(pixels).resize((SHOWN_PX, SHOWN_PX), Image.Resampling.NEAREST)


def show_answer(key: str, image: Any, loaded: Loaded, fill: bool = True,
                true_label: int | None = None, prepared: Any = None) -> Shown | None:  # fmt: skip
    """Frame ``image`` (or use ``prepared``), predict, and show what the model sees, its answer
    and the 10 probabilities; None (with a message) when there is nothing to classify."""
    try:
        prepared = prepared or prepare(image, loaded.image_size, fill=fill)
    except EmptySketchError:
        st.info(
            EMPTY_MESSAGES.get(key, "Nothing to classify: the image is one flat colour."),
            icon=":material/draw:",
        )
        return None
    except (SketchError, UploadError) as exc:
        st.error(plain(exc))
        return None
    answer = ood.judge(loaded.model, prepared.tensor, loaded.limits)
    probs, top = answer.probs, answer.top
    size = loaded.image_size
    left, right = st.columns([1, 2])
    with left:
        st.image(enlarged(prepared.tensor), caption=f"What the model sees ({size}x{size})")
    with right:
        if answer.clothing:
            st.metric("Prediction", CLASSES[top])
        else:
            st.metric("Prediction", "Not clothing?")
            st.warning(
                "This does not look like a clothing item to the model "
                f"(the closest class is {CLASSES[top]}).",
                icon=":material/help:",
            )
        st.badge(f"{probs[top]:.1%} probability of {CLASSES[top]}", color="gray")
        if true_label is not None:
            verdict = ":green[:material/check: right]" if top == true_label else ":red[wrong]"
            st.markdown(f"True class: **{CLASSES[true_label]}** ({verdict})")
        elif image is not None:
            _other_answer(loaded, prepared, top)
    st.html(probability_bars(probs.tolist(), CLASSES, true_label))
    return Shown(prepared.tensor, probs)


def explain_switch() -> bool:
    """The Draw tab's switch for the panels under the answer (off: a stroke's answer comes
    sooner, as a stroke does not wait for the previous stroke's panels)."""
    return st.toggle(
        "Explain the answer", value=False, key=EXPLAIN_KEY,
        help="What the network sees (Grad-CAM, the first layer's filters, every block's "
        "activation maps) and this drawing's answer after each epoch, redrawn after every "
        "stroke. Off, a stroke's answer comes sooner.",
    )  # fmt: skip


def show_explanation(key: str, loaded: Loaded, shown: Shown) -> None:
    """What the network sees for the shown input, and its answers through the run's epochs."""
    explain_panel(key, loaded.model, shown.tensor, shown.probs)
    epochs_panel(key, loaded.run, shown.tensor)


def show_result(key: str, image: Any, loaded: Loaded, fill: bool = True,
                true_label: int | None = None, prepared: Any = None) -> None:  # fmt: skip
    """The answer, then what the network sees (uploads and test images). ``key`` names this
    panel's widgets (one panel per tab)."""
    shown = show_answer(key, image, loaded, fill, true_label, prepared)
    if shown is not None:
        show_explanation(key, loaded, shown)
