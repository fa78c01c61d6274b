"""Streamlit glue of the Sketch page: model picker, canvas and its controls, the three tabs.

The page draws, uploads or picks an image; sketch_result.py frames it, predicts and shows
what the model sees, the top class and all 10 probabilities, then what the network sees
inside and how its answer changed through the epochs (explain_view.py).
"""

from __future__ import annotations

import random
from typing import Any

import streamlit as st
from PIL import Image

from fmnist_app.common import TRAIN_PAGE, plain
from fmnist_app.sketch_result import (
    Loaded,
    explain_switch,
    load_model,
    show_answer,
    show_explanation,
    show_result,
    stamp,
)
from fmnist_core import DataError, Run, RunError, active_run, load_run, ood
from fmnist_core.runs import scan_runs
from fmnist_core.sketch import (
    DEFAULT_MODEL_DIR,
    MAX_UPLOAD_BYTES,
    SKETCH_MODEL_DIR,
    UploadError,
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
DEFAULT_TOOL, DEFAULT_STROKE, MIN_STROKE, MAX_STROKE = "freedraw", 12, 2, 40
RESULT_PX = 440  # the result column: next to the canvas from a 1280 px wide window


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
        st.caption("Shipped for drawings: it learned from the training photos and drawings "
                   "of them. Your own runs are in the list.")  # fmt: skip
    try:
        model = load_model(str(run.path), stamp(run))
    except RunError as exc:
        st.error(f"Could not load this model: {plain(exc)}. Pick another one or train a new one.")
        return None
    limits = ood.load(run.path)
    return Loaded(model, run.config.image_size, label, default, run, limits, _active())


def _clear() -> None:
    st.session_state[CLEARS_KEY] = st.session_state.get(CLEARS_KEY, 0) + 1


def pen() -> tuple[str, int]:
    """(tool, stroke width) as the controls below the canvas hold them: read before the canvas
    is made, which needs them (a forged tool: the default)."""
    tool = st.session_state.get("sketch_tool", DEFAULT_TOOL)
    stroke = st.session_state.get("sketch_stroke", DEFAULT_STROKE)
    if not isinstance(stroke, int) or not MIN_STROKE <= stroke <= MAX_STROKE:
        stroke = DEFAULT_STROKE
    return (tool if tool in TOOLS else DEFAULT_TOOL), stroke


def canvas_controls() -> None:
    """The tool, stroke width and "Fill outlines" widgets (read through the session state:
    ``pen``, ``fill_setting``), plus the Clear button."""
    st.segmented_control(
        "Tool", list(TOOLS), format_func=lambda t: TOOLS.get(t, str(t)), default=DEFAULT_TOOL,
        required=True, key="sketch_tool",
        help="Polygon: click the corners, then the first corner to close it.",
    )  # fmt: skip
    st.slider("Stroke width", MIN_STROKE, MAX_STROKE, DEFAULT_STROKE, key="sketch_stroke")
    fill_col, clear_col = st.columns([3, 2], vertical_alignment="center")
    with fill_col:
        st.toggle(
            "Fill outlines", value=True, key="sketch_fill",
            help="Dataset images are filled silhouettes, so closed outlines are filled.",
        )  # fmt: skip
    with clear_col:
        st.button(
            "Clear", on_click=_clear, key="sketch_clear", icon=":material/delete:", width="stretch"
        )


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


def current_drawing() -> tuple[Image.Image | None, str | None]:
    """(the canvas's drawing, None) from the session state, before the canvas is created; a
    refused value gives (None, why) and a fresh, empty canvas (the old key drops the value)."""
    try:  # checked before the component is created (and could decode it)
        return drawing(st.session_state.get(_canvas_key())), None
    except UploadError as exc:
        _clear()
        return None, plain(exc)


def canvas(tool: str, stroke: int, refused: str | None = None) -> None:
    """The drawing canvas (its drawing: ``current_drawing``)."""
    # Imported here: the component registers itself, which needs a running Streamlit app.
    # This st_canvas sends a stroke as soon as it ends (the package's waits 200 ms).
    from fmnist_app.canvas import st_canvas  # noqa: PLC0415

    if refused:
        st.error(refused)
    st_canvas(
        fill_color="rgba(0, 0, 0, 0)", stroke_width=stroke, stroke_color="#FFFFFF",
        background_color="#000000", height=CANVAS_PX, width=CANVAS_PX, drawing_mode=tool,
        return_image_data=True, key=_canvas_key(),
    )  # fmt: skip


@st.fragment
def draw_panel(loaded: Loaded) -> None:
    """The canvas, its controls and its answer, side by side where both fit. A fragment: a
    stroke reruns only this, not the page above it (the model list reads the runs folder)."""
    # Side by side where both fit, else the result below (a wrapping row). The row is made in
    # here: made outside, the fragment would be its one child and stack the two.
    with st.container(horizontal=True, gap="medium"):
        left, right = st.container(width=CANVAS_PX + 24), st.container(width=RESULT_PX)
    # The answer is written first, into the right column: the browser redraws the page after
    # each element it receives, so the answer no longer waits for the ~10 elements of the
    # controls and the canvas. The drawing and "Fill outlines" are read from the session
    # state, which holds what those widgets return below.
    image, refused = current_drawing()
    with right:
        shown = show_answer("draw", image, loaded, fill_setting())
        # After the answer, and always drawn (a switch not drawn in a run forgets its state).
        if explain_switch() and shown is not None:
            show_explanation("draw", loaded, shown)
    with left:  # the canvas first: on a laptop's screen it starts above the fold
        canvas(*pen(), refused)
        st.caption("Draw with the mouse (or a finger); point at the canvas for its undo and "
                   "redo buttons.")  # fmt: skip
        canvas_controls()


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
