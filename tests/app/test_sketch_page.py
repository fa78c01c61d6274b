"""AppTest of the Sketch page: injected canvas drawings, uploads, test images, model choice.

The canvas is a custom component (an UnknownElement for AppTest): a drawing is injected the
way the browser sends it, ``{"drawing": {"raw": fabric JSON, "data": PNG data URL}}`` under
the canvas key (see streamlit_drawable_canvas.st_canvas: ``result["drawing"]["data"]``).
"""

from __future__ import annotations

import base64
import io
import json
import re
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw
from streamlit.testing.v1 import AppTest

from fmnist_app import sketch as ui
from fmnist_app import sketch_result as result
from fmnist_core import CLASSES, TrainConfig, build_model
from fmnist_core.runs import RunRecorder
from fmnist_core.sketch import from_frame, prepare
from fmnist_core.train import EpochEnd, RunEnd

PAGE = Path(__file__).resolve().parents[2] / "pages" / "3_Sketch.py"
CANVAS = f"{ui.CANVAS_KEY}_0"


def write_run(runs_dir: Path, name: str = "sketchy", always: int | None = None) -> str:
    """A finished one-epoch run (random weights, 16x16) written by the real recorder;
    ``always``: a class the model answers for any input (a huge bias on it)."""
    cfg = TrainConfig(epochs=1, conv1=4, conv2=8, name=name)
    torch.manual_seed(0)
    state = build_model(cfg).state_dict()
    if always is not None:
        state["fc1.bias"][always] = 100.0
    probs = torch.full((200, 10), 0.1)
    events = [EpochEnd(1, 1, 1.0, 1.0, 1.0, 0.5, 1.0, 1.0, probs, state)]
    rec = RunRecorder.create(cfg, runs_dir)
    list(rec.record(iter([*events, RunEnd("finished", "", 1, 0.5, 1.0)]), torch.arange(200) % 10))
    return rec.run_id


def png(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def drawing_state(draw: bool = True) -> dict:
    """What the canvas sends after a stroke: a canvas-sized RGBA PNG, black, a white outline."""
    n = ui.CANVAS_PX
    image = Image.new("RGBA", (n, n), (0, 0, 0, 255))
    if draw:
        box = (n // 5, n * 3 // 20, n * 4 // 5, n * 17 // 20)
        ImageDraw.Draw(image).rectangle(box, outline=(255, 255, 255, 255), width=12)
    url = "data:image/png;base64," + base64.b64encode(png(image)).decode()
    return {"drawing": {"raw": {"objects": [{"type": "path"}] if draw else []}, "data": url}}


def open_page(timeout: float = 60, pick: str | None = None) -> AppTest:
    """The page; ``pick``: a run id to choose in the model picker (default: the sketch model)."""
    at = AppTest.from_file(str(PAGE), default_timeout=timeout).run()
    assert not at.exception, at.exception
    if pick is not None:
        picker = at.selectbox(key=ui.MODEL_KEY)
        picker.select(next(o for o in picker.options if pick in o)).run()
        assert not at.exception, at.exception
    return at


def bars(at: AppTest) -> list:
    """The probability bars shown (fmnist_app/bars.py: one HTML element per answer)."""
    return [h for h in at.get("html") if "Probability of each class" in h.proto.body]


def bar_values(element) -> list[float]:
    """The percentages the bars show, in class order."""
    return [float(p) / 100 for p in re.findall(r">(\d+\.\d)%</span></div>", element.proto.body)]


def texts(at: AppTest) -> str:
    return " ".join(e.value for e in [*at.info, *at.error, *at.markdown, *at.caption])


def test_injected_drawing_shows_a_prediction_and_the_bar_chart(tiny_env, runs_dir):
    run_id = write_run(runs_dir)
    at = open_page(pick=run_id)
    assert run_id in at.selectbox(key=ui.MODEL_KEY).value
    assert "Draw something" in texts(at) and not at.metric
    at.session_state[CANVAS] = drawing_state()
    at.run()
    assert not at.exception, at.exception
    metric = at.metric[0]
    assert metric.label == "Prediction" and metric.value in (*CLASSES, "Not clothing?")
    assert not metric.delta  # no arrow: a probability is not a change
    assert re.search(r"\d+\.\d% probability of ", texts(at)), texts(at)
    (shown,) = bars(at)
    values = bar_values(shown)
    assert len(values) == 10 and abs(sum(values) - 1) < 10 * 0.0005  # each rounded to 0.1%
    assert f"{max(values):.1%} probability of " in texts(at)
    assert "What the model sees (16x16)" in [img.caption for img in at.get("image")[0].proto.imgs]


def test_blank_canvas_shows_the_message_and_no_prediction(tiny_env, runs_dir):
    write_run(runs_dir)
    at = open_page()
    at.session_state[CANVAS] = drawing_state(draw=False)
    at.run()
    assert not at.exception, at.exception
    assert "Draw something on the canvas" in texts(at)
    assert not at.metric and not bars(at)


def test_the_canvas_is_the_copy_that_sends_a_stroke_at_once(tiny_env):
    at = open_page()
    (canvas,) = at.get("bidi_component")
    assert canvas.proto.component_name == "fmnist.sketch_canvas"
    assert "Bc = 0, Ar = " in canvas.proto.js_content  # no 200 ms wait (fmnist_app/canvas.py)
    assert "Bc = 200" not in canvas.proto.js_content
    assert canvas.proto.html_content and canvas.proto.css_content  # the package's own


def test_clear_gives_a_fresh_canvas(tiny_env, runs_dir):
    write_run(runs_dir)
    at = open_page()
    at.session_state[CANVAS] = drawing_state()
    at.run()
    assert at.metric
    at.button(key="sketch_clear").click().run()
    assert at.session_state[ui.CLEARS_KEY] == 1
    assert not at.metric and "Draw something" in texts(at)


def test_corrupt_upload_is_refused_and_a_good_one_classified(tiny_env, runs_dir):
    write_run(runs_dir)
    at = open_page()
    uploader = at.get("file_uploader")[0]
    uploader.upload("shirt.png", b"\x89PNG\r\n\x1a\n not really a png", "image/png").run()
    assert not at.exception, at.exception
    assert any("not a PNG or JPEG" in e.value for e in at.error), texts(at)
    assert not at.metric
    image = Image.new("L", (120, 160), 255)  # dark drawing on white paper
    ImageDraw.Draw(image).rectangle((20, 20, 100, 140), outline=0, width=6)
    at.get("file_uploader")[0].upload("bag.png", png(image), "image/png").run()
    assert not at.error and at.metric and len(bars(at)) == 1


def test_random_test_image_shows_its_true_class(tiny_env, runs_dir):
    write_run(runs_dir)
    at = open_page()
    at.button(key="sketch_random").click().run()
    assert not at.exception, at.exception
    index = at.session_state[ui.TEST_INDEX_KEY]
    label = (index % 200) % 10  # the tiny test set's labels are index % 10
    assert f"True class: **{CLASSES[label]}**" in texts(at)
    assert at.metric and len(bars(at)) == 1


def test_the_sketch_model_is_the_default_and_any_finished_run_can_be_chosen(tiny_env, runs_dir):
    first = write_run(runs_dir, "first")
    second = write_run(runs_dir, "second")
    (runs_dir / "active.json").write_text(json.dumps({"run_id": first}))
    at = open_page()
    picker = at.selectbox(key=ui.MODEL_KEY)
    assert picker.value.startswith("Sketch model, shipped") and picker.options[0] == picker.value
    assert picker.options[1].startswith("Active: " + first)
    assert picker.options[-1].startswith("Photo model, shipped")
    assert any(second in option for option in picker.options)
    picker.select(next(o for o in picker.options if second in o)).run()
    at.session_state[CANVAS] = drawing_state()
    at.run()
    assert not at.exception and at.metric


def test_the_active_runs_different_answer_is_shown_with_the_reason(tiny_env, runs_dir):
    run_id = write_run(runs_dir, "bent", always=1)  # answers Trouser to anything
    (runs_dir / "active.json").write_text(json.dumps({"run_id": run_id}))
    at = open_page()  # the sketch model answers; a rectangle outline is no trouser to it
    at.session_state[CANVAS] = drawing_state()
    at.run()
    assert not at.exception, at.exception
    assert at.metric[0].value != "Trouser"
    assert (f"Your active run {run_id} says **Trouser** (100.0%): it was trained at 16x16 on "
            "photos only.") in texts(at)  # fmt: skip
    at.selectbox(key=ui.MODEL_KEY).select(next(
        o for o in at.selectbox(key=ui.MODEL_KEY).options if run_id in o)).run()  # fmt: skip
    assert at.metric[0].value == "Trouser" and "Your active run" not in texts(at)


def test_a_single_line_does_not_look_like_clothing_to_the_sketch_model(tiny_env):
    at = open_page()
    n = ui.CANVAS_PX
    image = Image.new("RGBA", (n, n), (0, 0, 0, 255))
    ImageDraw.Draw(image).line([(40, 280), (280, 40)], fill=(255, 255, 255, 255), width=12)
    url = "data:image/png;base64," + base64.b64encode(png(image)).decode()
    at.session_state[CANVAS] = {"drawing": {"raw": {"objects": [{}]}, "data": url}}
    at.run()
    assert not at.exception, at.exception
    assert at.metric[0].value == "Not clothing?"
    assert "does not look like a clothing item to the model" in " ".join(
        w.value for w in at.warning
    )


def test_shipped_models_work_before_any_training(tiny_env):
    at = open_page()
    picker = at.selectbox(key=ui.MODEL_KEY)
    assert len(picker.options) == 2 and picker.value.startswith("Sketch model, shipped")
    at.session_state[CANVAS] = drawing_state()
    at.run()
    assert not at.exception, at.exception
    assert at.metric and len(bars(at)) == 1
    assert "What the model sees (28x28)" in [img.caption for img in at.get("image")[0].proto.imgs]


def test_enlarged_input_is_the_model_tensor():
    tensor = torch.zeros(1, 1, 16, 16)
    tensor[0, 0, 3, 5] = 1.0
    pixels = np.asarray(result.enlarged(tensor))
    assert pixels.shape == (result.SHOWN_PX, result.SHOWN_PX)
    scale = result.SHOWN_PX / 16
    assert pixels[int(3.5 * scale), int(5.5 * scale)] == 255 and pixels.sum() // 255 < scale**2 + 50


def test_the_active_runs_answer_reuses_the_frame_at_its_own_size():
    """_other_answer feeds the active run from_frame(shown frame, its size): the same input as
    framing the drawing again at that size (what it did before, at twice the cost)."""
    image = Image.open(io.BytesIO(base64.b64decode(drawing_state()["drawing"]["data"][22:])))
    shown = prepare(image, 28)
    for size in (16, 28):
        again = prepare(image, size).tensor
        assert torch.equal(from_frame(shown.preview, size).tensor, again)
        assert again.shape == (1, 1, size, size) and again.max() > 0.5
