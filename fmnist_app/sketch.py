"""Streamlit glue of the Sketch page: model picker, canvas controls, and the result panel.

The page draws, uploads or picks an image; ``show_result`` frames it (fmnist_core.sketch),
predicts and shows what the model sees, the top class and all 10 probabilities, then what
the network sees inside and how its answer changed through the epochs (explain_view.py).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

import numpy as np
import streamlit as st
from PIL import Image
from torch import nn

from fmnist_app.common import TRAIN_PAGE, plain
from fmnist_app.explain_view import epochs_panel, explain_panel
from fmnist_core import CLASSES, DataError, Run, RunError, active_run, load_run, ood
from fmnist_core.plots import probability_figure
from fmnist_core.runs import scan_runs
from fmnist_core.sketch import (
    DEFAULT_MODEL_DIR,
    MAX_UPLOAD_BYTES,
    SKETCH_MODEL_DIR,
    EmptySketchError,
    SketchError,
    UploadError,
    predict,
    prepare,
    read_data_url,
)
from fmnist_core.sketch import dataset_image as load_test_image

CANVAS_KEY = "sketch_canvas"  # + "_<n>": a new n gives a fresh, empty canvas (Clear)
CLEARS_KEY = "sketch_clears"
MODEL_KEY = "sketch_model"
OPEN_RUN_KEY = "sketch_open_run"  # a run id to preselect, set by another page
TEST_INDEX_KEY = "sketch_test_index"
# Plain words: with a symbol each, the five buttons overflowed the half-width column at 1400 px.
TOOLS = {"freedraw": "Freehand", "line": "Line", "rect": "Rectangle", "circle": "Circle",
         "polygon": "Polygon"}  # fmt: skip
# The canvas's width and height (the drawing it sends has this size): small enough to fit,
# with its tools above it, on an 800 px wide page and under the fold of a 1280x800 screen.
CANVAS_PX = 320
RESULT_PX = 560  # the widest the result column gets next to the canvas
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
def _load_model(path: str, stamp: float) -> nn.Module:  # stamp: reload when history changes
    return load_run(path).load_model()


def _stamp(run: Run) -> float:
    try:
        return (run.path / "history.json").stat().st_mtime
    except OSError:
        return 0.0


def why(run: Run) -> str:
    """How a model was trained, in the words that explain its answers to drawings."""
    cfg = run.config
    seen = "with drawing-like images" if cfg.sketch_augment else "on photos only"
    return f"trained at {cfg.image_size}x{cfg.image_size} {seen}"


def _shipped(folder: Any, title: str) -> dict[str, tuple[Run, bool]]:
    try:
        run = load_run(folder)
    except RunError:
        return {}  # a checkout without assets/: only trained runs
    acc = f"{run.final_val_acc:.1%}" if run.final_val_acc is not None else "-"
    return {f"{title} ({acc} test accuracy)": (run, True)}


def _active() -> Run | None:
    active = active_run()
    return active if active is not None and active.history else None


def _choices() -> dict[str, tuple[Run, bool]]:
    """label -> (run, is shipped); the sketch model first (the best for drawings), then the
    active run, the other finished runs, and the shipped photo model last."""
    runs, _ = scan_runs()
    finished = [run for run in runs if run.status == "finished" and run.history]
    active = _active()
    if active is not None:
        finished = [active] + [run for run in finished if run.path != active.path]
    choices = _shipped(SKETCH_MODEL_DIR, "Sketch model, shipped: trained for drawings")
    # The active run's entry names it without its status: the label is the selectbox's value,
    # and a label that changed with each epoch lost the user's pick (back to the first entry)
    # when the run moved on. Its status is in the caption under the selector.
    choices |= {
        (f"Active: {run.id}" if i == 0 and run is active else run.label()): (run, False)
        for i, run in enumerate(finished)
    }
    return choices | _shipped(DEFAULT_MODEL_DIR, "Photo model, shipped")


def pick_model() -> Loaded | None:
    """Selectbox over the models; None (with a message) when no model can be loaded."""
    choices = _choices()
    if not choices:
        st.info("No model yet: train one on the Train page, then come back here.")
        st.page_link(TRAIN_PAGE, label="Go to the Train page", icon=":material/model_training:")
        return None
    opened = st.session_state.pop(OPEN_RUN_KEY, None)  # the Runs page's "open in" button
    for name, (run, is_default) in choices.items():
        if not is_default and run.id == opened:
            st.session_state[MODEL_KEY] = name
    label = st.selectbox("Model", list(choices), key=MODEL_KEY)
    run, default = choices.get(label) or next(iter(choices.values()))
    if run is not None and not default and label.startswith("Active: "):
        st.caption(f"The active run: {run.label()}.")
    if default and run.path == SKETCH_MODEL_DIR:
        st.caption("The model shipped for drawings (it learned from drawing-like versions of the "
                   "training images). Your own runs are in the list.")  # fmt: skip
    try:
        model = _load_model(str(run.path), _stamp(run))
    except RunError as exc:
        st.error(f"Could not load this model: {plain(exc)}. Pick another one or train a new one.")
        return None
    limits = ood.load(run.path)
    return Loaded(model, run.config.image_size, label, default, run, limits, _active())


def _other_answer(loaded: Loaded, image: Any, fill: bool, top: int) -> None:
    """The active run's answer next to the shown one, when it differs, and why it may."""
    active = loaded.active
    if active is None or loaded.run is None or active.path == loaded.run.path:
        return
    try:
        model = _load_model(str(active.path), _stamp(active))
        probs = predict(model, prepare(image, active.config.image_size, fill=fill).tensor)
    except (RunError, SketchError, UploadError):
        return
    other = int(probs.argmax())
    if other != top:
        st.caption(f"Your active run {active.id} says **{CLASSES[other]}** ({probs[other]:.1%}):"
                   f" it was {why(active)}.")  # fmt: skip


def _clear() -> None:
    st.session_state[CLEARS_KEY] = st.session_state.get(CLEARS_KEY, 0) + 1


def canvas_controls() -> tuple[str, int, bool]:
    """(tool, stroke width, fill outlines) widgets, plus the Clear button."""
    tool = st.segmented_control(
        "Tool", list(TOOLS), format_func=lambda t: TOOLS.get(t, str(t)), default="freedraw",
        required=True, key="sketch_tool",
        help="Polygon: click the corners, then the first corner to close it.",
    )  # fmt: skip
    stroke = st.slider("Stroke width", 2, 40, 12, key="sketch_stroke")
    fill_col, clear_col = st.columns([3, 2], vertical_alignment="center")
    with fill_col:
        fill = st.toggle(
            "Fill outlines", value=True, key="sketch_fill",
            help="Dataset images are filled silhouettes, so closed outlines are filled.",
        )  # fmt: skip
    with clear_col:
        st.button(
            "Clear", on_click=_clear, key="sketch_clear", icon=":material/delete:", width="stretch"
        )
    return tool if tool in TOOLS else "freedraw", stroke, fill  # a forged tool: the default


def _canvas_key() -> str:
    return f"{CANVAS_KEY}_{st.session_state.get(CLEARS_KEY, 0)}"


def drawing(value: Any) -> Image.Image | None:
    """The image in a canvas's state ``{"drawing": {"raw": ..., "data": PNG data URL}}``
    (None before the first stroke); UploadError when it is not a drawing of the canvas's size.

    The component's own ``image_data`` decodes the PNG with no size check, so it is never used:
    a client can send a small PNG that declares 13000x13000 pixels (~676 MB once decoded).
    """
    if value is None:
        return None
    strokes = value.get("drawing") if isinstance(value, dict) else None
    if not isinstance(strokes, dict):
        raise UploadError("The canvas sent something that is not a drawing; it was ignored.")
    url = strokes.get("data")
    return None if url is None else read_data_url(url, (CANVAS_PX, CANVAS_PX))


def canvas(tool: str, stroke: int) -> Image.Image | None:
    """The drawing canvas; its image (None before the first stroke or when it was refused)."""
    # Imported here: the component registers itself, which needs a running Streamlit app.
    # This st_canvas sends a stroke as soon as it ends (the package's waits 200 ms).
    from fmnist_app.canvas import st_canvas  # noqa: PLC0415

    st.caption("Draw below with the mouse (or a finger). The canvas's toolbar has undo and redo.")
    try:  # the value is checked before the component is created (and could decode it)
        image = drawing(st.session_state.get(_canvas_key()))
    except UploadError as exc:
        st.error(plain(exc))
        _clear()  # a fresh, empty canvas: the refused value is dropped with the old key
        image = None
    st_canvas(
        fill_color="rgba(0, 0, 0, 0)", stroke_width=stroke, stroke_color="#FFFFFF",
        background_color="#000000", height=CANVAS_PX, width=CANVAS_PX, drawing_mode=tool,
        return_image_data=True, key=_canvas_key(),
    )  # fmt: skip
    return image


def _enlarged(tensor: Any) -> Image.Image:
    pixels = (tensor.squeeze().clamp(0, 1).mul(255).round().byte().numpy()).astype(np.uint8)
    return Image.fromarray(pixels).resize((SHOWN_PX, SHOWN_PX), Image.Resampling.NEAREST)


def show_result(key: str, image: Any, loaded: Loaded, fill: bool = True,
                true_label: int | None = None, prepared: Any = None) -> None:  # fmt: skip
    """Frame ``image`` (or use ``prepared``), predict, and show input, top class and bars.

    ``key`` names this panel's chart (one panel per tab).
    """
    try:
        prepared = prepared or prepare(image, loaded.image_size, fill=fill)
    except EmptySketchError:
        st.info(
            EMPTY_MESSAGES.get(key, "Nothing to classify: the image is one flat colour."),
            icon=":material/draw:",
        )
        return
    except (SketchError, UploadError) as exc:
        st.error(plain(exc))
        return
    answer = ood.judge(loaded.model, prepared.tensor, loaded.limits)
    probs, top = answer.probs, answer.top
    size = loaded.image_size
    left, right = st.columns([1, 2])
    with left:
        st.image(_enlarged(prepared.tensor), caption=f"What the model sees ({size}x{size})")
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
            _other_answer(loaded, image, fill, top)
    figure = probability_figure(probs.tolist(), CLASSES, true_label)
    st.plotly_chart(figure, key=f"sketch_bars_{key}", config={"displayModeBar": False})
    explain_panel(key, loaded.model, prepared.tensor, probs)
    epochs_panel(key, loaded.run, prepared.tensor)


@st.fragment
def draw_panel(loaded: Loaded) -> None:
    """The canvas, its controls and its answer, side by side where both fit. A fragment: a
    stroke reruns only this, not the page above it (the model list reads the runs folder)."""
    # Side by side where both fit, else the result below (a wrapping row). The row is made in
    # here: made outside, the fragment would be its one child and stack the two.
    with st.container(horizontal=True, gap="large"):
        with st.container(width=CANVAS_PX + 24):
            tool, stroke, fill = canvas_controls()
            image = canvas(tool, stroke)
        with st.container(width=RESULT_PX):
            show_result("draw", image, loaded, fill)


def fill_setting() -> bool:
    """The Draw tab's "Fill outlines" switch, which uploads follow too."""
    return bool(st.session_state.get("sketch_fill", True))


def upload(loaded: Loaded, fill: bool) -> None:
    # No ``type=``: the browser then uploads any file, which replaces the previous one, and
    # the page refuses it with its own message. With it, the browser refused a wrong type
    # itself, kept the previous file and so its prediction (read as the new file's), and a
    # hand-made request with another extension crashed the page (Streamlit's check raises).
    file = st.file_uploader(
        "A PNG or JPEG image of one clothing item (light on dark or dark on light)",
        max_upload_size=MAX_UPLOAD_BYTES // 2**20, key="sketch_upload",
    )  # fmt: skip
    if file is None:
        st.caption("Upload an image to see how the model frames and classifies it.")
        return
    st.caption(f"Result for **{plain(file.name)}**")  # a result always names its file
    show_result("upload", file.getvalue(), loaded, fill)


def _new_test_image() -> None:
    st.session_state[TEST_INDEX_KEY] = random.randrange(10_000)


def random_test_image(loaded: Loaded, data_ok: bool) -> None:
    if not data_ok:
        st.info("The dataset is not installed, so there are no test images to show.")
        return
    st.button(
        "Random test image", on_click=_new_test_image, key="sketch_random", icon=":material/casino:"
    )
    index = st.session_state.get(TEST_INDEX_KEY)
    if index is None:
        st.caption("Pick a random image of the test set to compare its framing with a sketch.")
        return
    try:
        prepared, label = load_test_image(index, loaded.image_size)
    except DataError as exc:
        st.error(str(exc))
        return
    st.caption(f"Test image #{index}")
    show_result("test", None, loaded, true_label=label, prepared=prepared)
