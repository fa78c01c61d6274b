"""Reliability of the app: no dataset, foreign or broken runs, hostile uploads and two
sessions at once never show a traceback, and the server's defaults are the safe ones."""

from __future__ import annotations

import importlib
import io
import struct
import time
import tomllib
import zlib
from pathlib import Path

import pytest
import torch
from PIL import Image, ImageDraw
from streamlit import config as st_config
from streamlit.testing.v1 import AppTest

from fmnist_app import common
from fmnist_core import data, runs
from fmnist_core.config import RANGES
from fmnist_core.runs import active_run, load_run
from fmnist_core.sketch import MAX_UPLOAD_BYTES
from tests.app.test_sketch_page import write_run
from tests.conftest import REPO

runs_module = importlib.import_module("fmnist_core.session")  # start_run loads the data there
APP = REPO / "streamlit_app.py"
PAGES = sorted(p.relative_to(REPO).as_posix() for p in (REPO / "pages").glob("*.py"))
CONFIG = REPO / ".streamlit" / "config.toml"
NOT_FOUND = "Fashion-MNIST was not found"


def _texts(at: AppTest) -> str:
    parts = [*at.error, *at.warning, *at.info, *at.markdown, *at.caption, *at.success]
    return "\n".join(str(e.value) for e in parts)


def _open(page: str | None = None, timeout: float = 60) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=timeout).run()
    return at.switch_page(page).run() if page else at


@pytest.fixture
def fresh_status():
    """The data status is cached per process: start and end every test without it."""
    common._data_status.clear()
    yield
    common._data_status.clear()


@pytest.fixture
def nowhere(tmp_path, monkeypatch, runs_dir, fresh_status) -> None:
    """No dataset anywhere (empty project/system folders, no env var, offline)."""
    for name in ("PROJECT_DATA_DIR", "SYSTEM_DATA_DIR"):
        empty = tmp_path / name.lower()
        empty.mkdir()
        monkeypatch.setattr(data, name, empty)
    monkeypatch.delenv("FMNIST_DATA_DIR", raising=False)
    monkeypatch.setenv("FMNIST_OFFLINE", "1")
    monkeypatch.setenv("FMNIST_RUNS_DIR", str(runs_dir))
    data._load.cache_clear()
    data._tensors.cache_clear()


# ---------------------------------------------------------------- server defaults


def test_config_binds_loopback_limits_uploads_and_hides_tracebacks():
    cfg = tomllib.loads(CONFIG.read_text())
    assert cfg["server"]["address"] == "127.0.0.1"
    assert cfg["server"]["maxUploadSize"] == MAX_UPLOAD_BYTES // 2**20 <= 10
    assert cfg["client"]["showErrorDetails"] == "none"
    assert cfg["client"]["showErrorLinks"] is False
    assert "client.showErrorLinks" in st_config.get_config_options()  # an option Streamlit has
    assert st_config.ShowErrorDetailsConfigOptions.NONE == "none"  # a value 1.67 knows
    assert "logger" not in cfg or cfg["logger"].get("level", "info") in ("debug", "info")


def test_an_uncaught_error_is_hidden_from_the_page_but_logged(caplog):
    value = tomllib.loads(CONFIG.read_text())["client"]["showErrorDetails"]
    before = st_config.get_option("client.showErrorDetails")
    st_config.set_option("client.showErrorDetails", value)
    try:
        at = AppTest.from_string("raise RuntimeError('secret-detail-42')").run()
    finally:
        st_config.set_option("client.showErrorDetails", before)
    shown = at.exception[0]
    assert "secret-detail-42" not in shown.message and shown.stack_trace == []
    logged = [r for r in caplog.records if r.exc_info and "secret-detail-42" in str(r.exc_info[1])]
    assert logged and "Traceback" in caplog.text  # the server's log keeps the full traceback


# ---------------------------------------------------------------- no dataset


@pytest.mark.parametrize("page", [None, *PAGES])
def test_every_page_says_how_to_get_the_data(page, nowhere):
    at = _open(page)
    assert not at.exception, at.exception
    text = _texts(at)
    assert NOT_FOUND in text and "dataset-fashion-mnist" in text
    assert "Traceback" not in text


# ---------------------------------------------------------------- foreign and broken runs


class Evil:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"open({str(self.marker)!r}, 'w').write('pwned')",))


@pytest.mark.parametrize("page", ["pages/2_Confusion_matrix.py", "pages/3_Sketch.py"])
def test_pages_refuse_a_malicious_pickle_and_never_run_it(page, tiny_env, runs_dir, tmp_path):
    marker = tmp_path / "pwned"
    run_id = write_run(runs_dir)
    for name in ("epoch_001.pt", "probs_001.pt", "labels.pt", "model.pt"):
        torch.save({"w": Evil(marker)}, runs_dir / run_id / name)
    at = _open(page)
    assert not at.exception, at.exception
    if page == "pages/3_Sketch.py":  # the shipped sketch model answers first: pick the run
        picker = at.selectbox(key="sketch_model")
        picker.select(next(o for o in picker.options if run_id in o)).run()
        assert not at.exception, at.exception
    assert "refused to load" in " ".join(e.value for e in at.error)
    assert not marker.exists()


@pytest.mark.parametrize("page", [None, *PAGES])
def test_a_broken_run_folder_does_not_break_any_page(page, tiny_env, runs_dir, fresh_status):
    good = write_run(runs_dir, "good")
    broken = write_run(runs_dir, "broken")
    (runs_dir / broken / "history.json").write_text("[{")
    at = _open(page)
    assert not at.exception, at.exception
    assert good in _texts(at) + " ".join(str(s.value) for s in at.selectbox)


# ---------------------------------------------------------------- hostile uploads

SKETCH = "pages/3_Sketch.py"
UPLOAD = "sketch_upload"


def _png(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _png_declaring(width: int, height: int) -> bytes:
    """A tiny PNG whose header promises width x height pixels (a decompression bomb)."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit greyscale
    row = zlib.compress(b"\0" * (width + 1))  # one row; a decoder would expect them all
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", row)
            + _chunk(b"IEND", b""))  # fmt: skip


def _shirt() -> bytes:
    image = Image.new("L", (280, 280), 0)
    ImageDraw.Draw(image).rectangle((70, 40, 210, 250), fill=255)
    return _png(image)


HOSTILE = {
    "not an image": ("notes.png", b"these are my notes, not a picture\n" * 20, "not a PNG or JPEG"),
    "empty": ("empty.png", b"", "empty"),
    "bomb": ("bomb.png", _png_declaring(30_000, 30_000), "limit is 25,000,000 pixels"),
    "too big": ("big.png", _png_declaring(6_000, 6_000), "6000 x 6000 pixels"),
    "cut short": ("cut.png", _shirt()[:300], "truncated or corrupt"),
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_hostile_upload_is_refused_and_the_page_keeps_working(case, tiny_env, runs_dir):
    write_run(runs_dir)
    name, blob, message = HOSTILE[case]
    at = _open(SKETCH)
    uploader = next(w for w in at.get("file_uploader") if w.key == UPLOAD)
    uploader.upload(name, blob, "image/png").run()
    assert not at.exception, at.exception
    assert message in " ".join(e.value for e in at.error)
    assert not at.metric  # no prediction from a refused file
    uploader = next(w for w in at.get("file_uploader") if w.key == UPLOAD)
    uploader.upload("shirt.png", _shirt(), "image/png").run()
    assert not at.exception, at.exception
    assert not at.error and at.metric[0].label == "Prediction"


# ---------------------------------------------------------------- the training job

TRAIN = "pages/1_Train.py"
WAIT = 90  # seconds; polls end as soon as the condition holds
HELD = {"w_image_size": 28, "w_batch_size": 16, "w_epochs": 30}  # held by the gate, stopped


def _train_page() -> AppTest:
    at = _open(TRAIN, timeout=WAIT)
    assert not at.exception, at.exception
    return at


WIDGET_KINDS = ("slider", "select_slider", "number_input")


def _set(at: AppTest, **values) -> AppTest:
    for key, value in values.items():
        at.session_state[key] = value
    return at.run()


def _poll(at: AppTest, done, what: str) -> AppTest:
    deadline = time.monotonic() + WAIT
    while not done(at.run()):
        assert not at.exception, at.exception
        if time.monotonic() > deadline:
            pytest.fail(f"never saw {what} within {WAIT} s")
    return at


def test_two_sessions_pressing_train_together_start_one_job(jobs, gate, runs_dir):
    gate.hold("step", 1)
    first, second = _train_page(), _train_page()
    _set(first, **HELD)
    _set(second, **HELD)
    assert not second.button(key="train").disabled  # rendered before any job existed
    first.button(key="train").click().run()
    second.button(key="train").click().run()  # a moment later, from another tab
    assert "A training is already running" in " ".join(e.value for e in second.error)
    run_id = jobs.snapshot().run_id
    assert [p.name for p in runs_dir.iterdir() if p.is_dir()] == [run_id]
    gate.wait_held(WAIT)
    for at in (first, second):
        assert f"Training: run `{run_id}`" in at.run().subheader[0].value
    second.button(key="stop").click().run()  # Stop in one tab stops the job both show
    _poll(first, lambda a: a.warning and "Stopped" in a.warning[0].value, "the stopped run")
    assert run_id in first.warning[0].value and active_run(runs_dir) is None


def test_refresh_during_a_run_shows_it_and_can_stop_it(jobs, gate, runs_dir):
    gate.hold("step", 1)
    at = _set(_train_page(), **HELD)
    at.button(key="train").click().run()
    run_id = jobs.snapshot().run_id
    del at  # the tab is reloaded: a new session, its session state gone
    gate.wait_held(WAIT)
    fresh = _train_page()
    assert f"Training: run `{run_id}`" in fresh.subheader[0].value
    assert fresh.button(key="train").disabled and fresh.button(key="stop")
    fresh.button(key="stop").click().run()
    _poll(fresh, lambda a: a.warning and run_id in a.warning[0].value, "the stopped run")
    assert load_run(runs_dir / run_id).status == "stopped"


@pytest.mark.parametrize(
    ("key", "value"),
    [("w_seed", -1), ("w_momentum", 1.5), ("w_epochs", 31), ("w_lr", 7.0), ("w_batch_size", 3000)],
)
def test_out_of_range_widget_values_never_reach_a_training(key, value, jobs):
    """A forged widget value outside its range (what a hand-made websocket message would
    carry: the browser's widgets cannot send it) ends up back in range, without an error."""
    at = _train_page()
    forged = next(w for kind in WIDGET_KINDS for w in getattr(at, kind) if w.key == key)
    forged._value = value  # set_value() would refuse it; the protocol does not
    at.run()
    assert not at.exception, at.exception
    low, high, _ = RANGES[key[2:]]
    assert low <= at.session_state[key] <= high
    at.button(key="train").click().run()
    assert low <= getattr(jobs.snapshot().config, key[2:]) <= high
    jobs.stop()
    assert jobs.join(WAIT)


def test_impossible_settings_are_refused_with_the_reason_even_on_a_forged_click(jobs, runs_dir):
    at = _set(_train_page(), w_train_subset=500, w_batch_size=1024)
    assert "Training images (500) must be at least Batch size (1024)" in at.warning[0].value
    button = at.button(key="train")
    assert button.disabled
    button._value = True  # forge the click a browser would not send (AppTest refuses to)
    at.run()
    assert not at.exception, at.exception
    assert not jobs.snapshot().running and not any(runs_dir.iterdir())
    _set(at, w_batch_size=100).button(key="train").click().run()
    assert jobs.snapshot().config.train_subset == 500  # the page still works once fixed


@pytest.mark.learns
def test_a_diverging_run_on_the_page_never_becomes_active(jobs, runs_dir, tiny_data_dir):
    earlier = write_run(runs_dir, "earlier")
    runs.set_active(earlier, runs_dir)
    at = _set(_train_page(), w_optimizer="adam", w_lr=1.0, w_batch_size=16, w_epochs=2)
    at.button(key="train").click().run()
    _poll(at, lambda a: not jobs.snapshot().running and a.error, "the failure")
    assert "diverged" in at.error[0].value and "Traceback" not in at.error[0].value
    assert active_run(runs_dir).id == earlier
    assert load_run(runs_dir / jobs.snapshot().run_id).status == "failed"


def test_an_unexpected_error_while_starting_is_reported_and_train_stays_usable(jobs, runs_dir):
    def out_of_memory(*_args, **_kwargs):
        raise RuntimeError("DefaultCPUAllocator: can't allocate memory")

    at = _set(_train_page(), w_epochs=1)
    with pytest.MonkeyPatch.context() as patch:  # its own: undo keeps tiny_env's settings
        patch.setattr(runs_module, "load_tensors", out_of_memory)
        at.button(key="train").click().run()
    assert not at.exception, at.exception
    assert "can't allocate memory" in " ".join(e.value for e in at.error)
    assert not jobs.snapshot().running and not at.button(key="train").disabled
    at.button(key="train").click().run()
    _poll(at, lambda a: a.success, "the finished run")
    assert (runs_dir / jobs.snapshot().run_id).is_dir()
