"""Reliability of the app against hostile input: a forged canvas drawing, rejected uploads,
forged select-widget values and run files holding Markdown.

A forged value is what a hand-made websocket message carries: the browser's widgets cannot send
it, so it goes in through the widget protocol (``forge``) or the session state, as
tests/app/test_reliability_app.py does for sliders.
"""

from __future__ import annotations

import base64
import io
import json

import pytest
from PIL import Image, ImageDraw, ImageFile
from streamlit.proto.WidgetStates_pb2 import WidgetState
from streamlit.testing.v1 import AppTest

from fmnist_app import sketch as ui
from fmnist_core import config as C
from fmnist_core.runs import ACTIVE_FILE
from tests.app.test_confusion_page import write_known_run
from tests.app.test_sketch_page import CANVAS, drawing_state, write_run
from tests.conftest import REPO
from tests.test_images import png_of_zeros

APP = REPO / "streamlit_app.py"
TRAIN, CONFUSION, SKETCH = "pages/1_Train.py", "pages/2_Confusion_matrix.py", "pages/3_Sketch.py"
JOB_WAIT = 90


def _open(page: str | None = None) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=60).run()
    if page:
        at.switch_page(page).run()
    assert not at.exception, at.exception
    return at


def _errors(at: AppTest) -> str:
    return " ".join(e.value for e in at.error)


# ---------------------------------------------------------------- the canvas


def _canvas_value(png: bytes) -> dict:
    url = "data:image/png;base64," + base64.b64encode(png).decode()
    return {"drawing": {"raw": {"objects": [{"type": "path"}]}, "data": url}}


@pytest.fixture
def decoded(monkeypatch) -> list[tuple[int, int]]:
    """The sizes of the images PIL decodes; decoding one over 2000x2000 fails the test on the
    spot (before the memory is taken)."""
    sizes: list[tuple[int, int]] = []
    load = ImageFile.ImageFile.load

    def spy(self):
        sizes.append(self.size)
        if self.size[0] * self.size[1] > 2000 * 2000:
            raise AssertionError(f"decoded a {self.size[0]}x{self.size[1]} image")
        return load(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", spy)
    return sizes


def test_a_forged_canvas_png_declaring_13000x13000_is_refused_without_decoding_it(
    tiny_env, runs_dir, decoded
):
    write_run(runs_dir)
    bomb = png_of_zeros(13_000, 13_000)
    assert len(bomb) < 1_000_000  # small on the wire: only its declared size gives it away
    at = _open(SKETCH)
    at.session_state[CANVAS] = _canvas_value(bomb)
    at.run()
    assert not at.exception, at.exception
    assert "13000 x 13000 pixels" in _errors(at) and "drawing was ignored" in _errors(at)
    assert not at.metric and decoded == []  # nothing classified, nothing decoded
    assert at.session_state[ui.CLEARS_KEY] == 1  # a fresh canvas replaced the refused one
    at.session_state[f"{ui.CANVAS_KEY}_1"] = drawing_state()  # the next stroke works
    at.run()
    assert not at.exception and not at.error and at.metric[0].label == "Prediction"
    assert set(decoded) == {(ui.CANVAS_PX, ui.CANVAS_PX)}  # only the canvas-sized drawing


FORGED_CANVAS = {
    "other size": (_canvas_value(png_of_zeros(1000, 300)), f"canvas is {ui.CANVAS_PX} x "),
    "not a dict": ("evil", "not a drawing"),
    "no drawing": ({"drawing": "evil"}, "not a drawing"),
    "not a PNG url": ({"drawing": {"raw": {}, "data": "data:image/gif;base64,R0lGOD"}}, "PNG"),
    "bad base64": ({"drawing": {"raw": {}, "data": "data:image/png;base64,!!!"}}, "base64"),
    "not a string": ({"drawing": {"raw": {}, "data": 12}}, "not a PNG"),
    "too long": (_canvas_value(b"\0" * (10 * 2**20 + 10)), "over 10 MB"),
}


@pytest.mark.parametrize("case", list(FORGED_CANVAS))
def test_a_forged_canvas_value_is_refused_with_a_message(case, tiny_env, runs_dir, decoded):
    write_run(runs_dir)
    value, message = FORGED_CANVAS[case]
    at = _open(SKETCH)
    at.session_state[CANVAS] = value
    at.run()
    assert not at.exception, at.exception
    assert message in _errors(at) and not at.metric and decoded == []


# ---------------------------------------------------------------- uploads


def _shirt() -> bytes:
    image = Image.new("L", (280, 280), 0)
    ImageDraw.Draw(image).rectangle((70, 40, 210, 250), fill=255)
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def _upload(at: AppTest, name: str, blob: bytes) -> AppTest:
    uploader = next(w for w in at.get("file_uploader") if w.key == "sketch_upload")
    return uploader.upload(name, blob, "application/octet-stream").run()


@pytest.mark.parametrize(
    ("name", "blob", "message"),
    [
        ("notes.txt", b"my notes, not a picture\n" * 20, "not a PNG or JPEG"),
        ("shirt.gif", b"GIF89a" + b"\0" * 100, "not a PNG or JPEG"),
        ("huge.png", b"\x89PNG\r\n\x1a\n" + b"\0" * (10 * 2**20), "the limit is 10 MB"),
    ],
)
def test_a_rejected_upload_clears_the_previous_prediction(name, blob, message, tiny_env, runs_dir):
    write_run(runs_dir)
    at = _upload(_open(SKETCH), "shirt.png", _shirt())
    assert at.metric[0].label == "Prediction"
    assert "Result for **shirt.png**" in [c.value for c in at.caption]
    _upload(at, name, blob)
    assert not at.exception, at.exception
    assert message in _errors(at)
    assert not at.metric and not at.get("html")  # no result (nor its bars) left from shirt.png
    assert not any("shirt.png" in c.value for c in at.caption)


# ---------------------------------------------------------------- forged select widgets


def forge(widget, value) -> None:
    """Make ``widget`` send ``value`` in the field its protocol uses (string, int, list...),
    what a hand-made request would carry; AppTest's own setters refuse foreign values."""
    proper = type(widget)._widget_state.fget(widget)
    field = proper.WhichOneof("value") or "string_value"

    class Forged(type(widget)):
        @property
        def _widget_state(self) -> WidgetState:
            state = WidgetState(id=self.id)
            if field.endswith("array_value"):
                getattr(state, field).data.extend([value])
            elif field == "int_value":
                state.int_value = int(value)
            else:
                setattr(state, field, value)
            return state

    widget.__class__ = Forged


def _widget(at: AppTest, key: str):
    kinds = ("selectbox", "radio", "select_slider", "button_group")
    return next(w for kind in kinds for w in at.get(kind) if getattr(w, "key", None) == key)


FORGED_SELECTS = [
    (TRAIN, "w_preset", "evil", list(C.PRESETS)),
    (TRAIN, "w_image_size", "evil", list(C.IMAGE_SIZES)),
    (TRAIN, "w_optimizer", "evil", list(C.OPTIMIZERS)),
    (TRAIN, "w_arch", "evil", list(C.ARCHS)),
    (TRAIN, "w_schedule", "evil", list(C.SCHEDULES)),
    (TRAIN, "w_device", "evil", list(C.DEVICES)),
    (CONFUSION, "cm_true", "99", list(range(10))),
    (CONFUSION, "cm_pred", "-1", list(range(10))),
    (CONFUSION, "cm_run", "no-such-run", None),
    (SKETCH, "sketch_tool", "evil", list(ui.TOOLS)),
    (SKETCH, "sketch_model", "evil", None),
]


@pytest.mark.parametrize(("page", "key", "value", "options"), FORGED_SELECTS)
def test_a_forged_select_value_is_reset_never_an_error(page, key, value, options, jobs, runs_dir):
    write_known_run(runs_dir)
    at = _open(page)
    widget = _widget(at, key)
    forge(widget, value)
    at.run()
    assert not at.exception, at.exception
    if options is None:  # options named by label (runs, models): the forged one is gone
        assert at.session_state[key] != value
    else:
        assert at.session_state[key] in options
    assert not at.error, _errors(at)


def test_a_forged_preset_with_a_train_click_trains_a_valid_config(jobs, runs_dir):
    at = _open(TRAIN)
    forge(_widget(at, "w_preset"), "evil")
    at.button(key="train").click().run()  # the forged value and the click in one request
    assert not at.exception, at.exception
    cfg = jobs.snapshot().config  # the preset fell back to the default one, and trains
    assert cfg is not None and cfg.name == next(iter(C.PRESETS))
    assert not C.validation_errors(cfg) and at.session_state["w_preset"] in C.PRESETS
    jobs.stop()
    assert jobs.join(JOB_WAIT)


@pytest.mark.parametrize(
    "state",
    [
        {"cm_chart": {"selection": {"points": [{"customdata": [99, "x"]}]}}},
        {"cm_chart": {"selection": {"points": [{"customdata": [True, 2.5]}]}}},
        {"cm_chart": {"selection": {"points": ["evil"]}}},
        {"cm_chart": {"selection": "evil"}},
    ],
)
def test_a_forged_matrix_click_is_ignored_never_an_error(state, tiny_env, runs_dir):
    write_known_run(runs_dir)
    at = _open(CONFUSION)
    for key, value in state.items():
        at.session_state[key] = value
    at.run()
    assert not at.exception, at.exception
    assert at.session_state["cm_true"] in range(10) and at.session_state["cm_pred"] in range(10)
    assert at.metric[0].label == "Test accuracy"


# ---------------------------------------------------------------- run files are plain text

HOSTILE = "![x](evil.png)"  # a run folder's name: a browser would fetch evil.png
MARKDOWN = ("markdown", "caption", "error", "warning", "info", "success", "subheader", "title")


def _rendered(at: AppTest) -> list[str]:
    """The bodies of every element that Streamlit renders as Markdown."""
    bodies = [str(e.value) for kind in MARKDOWN for e in at.get(kind)]
    return bodies + [m.label for m in at.metric] + [str(m.value) for m in at.metric]


@pytest.mark.parametrize("page", [None, CONFUSION, SKETCH])
def test_text_from_run_folders_is_shown_as_plain_text(page, tiny_env, runs_dir):
    good = write_run(runs_dir, "good")
    hostile = runs_dir / f"{good}-{HOSTILE}"
    (runs_dir / good).rename(hostile)
    (runs_dir / ACTIVE_FILE).write_text(json.dumps({"run_id": hostile.name}))
    broken = runs_dir / f"broken-{HOSTILE}"
    broken.mkdir()
    (broken / "config.json").write_text("[")
    at = _open(page)
    bodies = _rendered(at)
    assert not any("[x](" in body for body in bodies), bodies  # escaped: "\\[x\\]\\("
    escaped = [body for body in bodies if r"\!\[x\]\(evil.png\)" in body]
    assert escaped  # still shown, as text: the sidebar names the active run
