"""AppTest of the Sketch page's "what the network sees" and "through the epochs" panels.

The run's epochs are hand-made so the answer is known: epoch k's head has a large bias for
class k-1, so the drawing is a T-shirt/top after epoch 1, Trouser after 2, Pullover after 3.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import torch
from streamlit.testing.v1 import AppTest

from fmnist_app import sketch as ui
from fmnist_app import sketch_result as result
from fmnist_core import CLASSES, TrainConfig, build_model
from fmnist_core.runs import RunRecorder
from fmnist_core.train import EpochEnd, RunEnd
from tests.app.test_sketch_page import CANVAS, drawing_state, open_page, write_run


def _epoch(k: int, epochs: int, cfg: TrainConfig) -> EpochEnd:
    torch.manual_seed(k)
    state = build_model(cfg).state_dict()
    state["fc1.bias"][k - 1] = 50.0  # class k-1 wins after epoch k
    probs = torch.full((200, 10), 0.1)
    return EpochEnd(k, epochs, 1.0, 1.0, 1.0, 0.5, 1.0, float(k), probs, state)


def _events(epochs: int, cfg: TrainConfig) -> Iterator:
    for k in range(1, epochs + 1):
        yield _epoch(k, epochs, cfg)
    yield RunEnd("finished", "", epochs, 0.5, 1.0)


def write_epochs_run(runs_dir: Path, epochs: int = 3) -> str:
    cfg = TrainConfig(epochs=epochs, conv1=4, conv2=8, name="epochs")
    rec = RunRecorder.create(cfg, runs_dir)
    list(rec.record(_events(epochs, cfg), torch.arange(200) % 10))
    return rec.run_id


def captions(at: AppTest) -> list[str]:
    return [img.caption for element in at.get("image") for img in element.proto.imgs]


def drawn(at: AppTest, explain: bool = True) -> AppTest:
    """The test's run picked (the shipped sketch model answers by default), a drawing made;
    ``explain``: the Draw tab's "what the network sees" switch turned on (it starts off)."""
    picker = at.selectbox(key=ui.MODEL_KEY)
    picker.select(next(o for o in picker.options if o.startswith("Active:"))).run()
    at.session_state[CANVAS] = drawing_state()
    at.run()
    assert not at.exception, at.exception
    if explain:
        at.toggle(key=result.EXPLAIN_KEY).set_value(True).run()
        assert not at.exception, at.exception
    return at


def predicted(at: AppTest) -> str:
    """The predicted class, from its Grad-CAM caption (the answer itself may read "Not
    clothing?" for these tiny untrained models)."""
    (name,) = [c.split("Evidence for ")[1].split(" (predicted")[0]
               for c in captions(at) if "(predicted, Grad-CAM)" in c]  # fmt: skip
    return name


def epochs_chart(at: AppTest) -> dict:
    charts = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    return next(c for c in charts if "each epoch" in c["layout"].get("title", {}).get("text", ""))


def test_the_draw_tab_shows_the_panels_on_demand_only(tiny_env, runs_dir):
    write_epochs_run(runs_dir, epochs=3)
    at = drawn(open_page(), explain=False)
    switch = at.toggle(key=result.EXPLAIN_KEY)
    assert switch.value is False and at.metric  # the answer, without the panels
    assert not any("What the network sees" in m.value for m in at.markdown)
    assert not any("Grad-CAM" in c for c in captions(at)) and not at.get("plotly_chart")
    switch.set_value(True).run()
    assert any("What the network sees" in m.value for m in at.markdown)
    assert predicted(at) in CLASSES and epochs_chart(at)["data"][0]["x"] == [1, 2, 3]
    at.session_state[CANVAS] = drawing_state()  # the next stroke: the switch stays on
    at.run()
    assert at.toggle(key=result.EXPLAIN_KEY).value is True and predicted(at) in CLASSES


def test_panel_shows_grad_cam_filters_and_every_block(tiny_env, runs_dir):
    write_run(runs_dir)  # notebook CNN, 4 and 8 channels, 16x16
    at = drawn(open_page())
    assert any("What the network sees" in m.value for m in at.markdown)
    shown = captions(at)
    assert predicted(at) in CLASSES
    assert sum("(picked, Grad-CAM)" in c for c in shown) == 1
    assert any(c.startswith("First layer's 4 filters") for c in shown)
    assert "Block 1: 4 maps of 8x8" in shown and "Block 2: 8 maps of 4x4" in shown


def test_why_not_picks_the_class_of_the_second_overlay(tiny_env, runs_dir):
    write_run(runs_dir)
    at = drawn(open_page())
    top = CLASSES.index(predicted(at))
    other = (top + 5) % 10
    at.selectbox(key="explain_class_draw").set_value(other).run()
    assert not at.exception, at.exception
    assert f"Evidence for {CLASSES[other]} (picked, Grad-CAM)" in captions(at)


def test_epochs_chart_has_a_point_per_epoch_and_the_slider_moves_the_grad_cam(tiny_env, runs_dir):
    write_epochs_run(runs_dir, epochs=3)
    at = drawn(open_page())
    assert at.metric[0].value == "Pullover"  # the last epoch's model
    chart = epochs_chart(at)
    assert len(chart["data"]) == 10 and all(t["x"] == [1, 2, 3] for t in chart["data"])
    winners = [max(range(10), key=lambda k: chart["data"][k]["y"][e]) for e in range(3)]
    assert winners == [0, 1, 2]  # T-shirt/top, Trouser, Pullover: the known answer
    assert any(c.startswith("Epoch 3: Pullover") for c in captions(at))
    at.select_slider(key="explain_epoch_draw").set_value(1).run()
    assert not at.exception, at.exception
    assert any(c.startswith("Epoch 1: T-shirt/top") for c in captions(at))


def test_the_chart_grows_while_the_run_trains(tiny_env, runs_dir):
    cfg = TrainConfig(epochs=3, conv1=4, conv2=8, name="epochs")
    rec = RunRecorder.create(cfg, runs_dir)  # "running", with this process's pid
    stream = rec.record(iter([_epoch(k, 3, cfg) for k in (1, 2, 3)]), torch.arange(200) % 10)
    next(stream), next(stream)  # each event pulled is saved: two epochs so far
    (runs_dir / "active.json").write_text(json.dumps({"run_id": rec.run_id}))
    at = drawn(open_page())
    assert rec.run_id in at.selectbox(key=ui.MODEL_KEY).value
    assert epochs_chart(at)["data"][0]["x"] == [1, 2]
    next(stream)  # the third epoch ends
    at.run()  # what the fragment's poll does (AppTest does not tick fragments by itself)
    assert not at.exception, at.exception
    assert epochs_chart(at)["data"][0]["x"] == [1, 2, 3]


def test_confusion_gallery_image_opens_with_grad_cam_top3_and_epochs(tiny_env, runs_dir):
    from tests.app.test_confusion_page import open_page as open_confusion  # noqa: PLC0415
    from tests.app.test_confusion_page import write_known_run  # noqa: PLC0415

    write_known_run(runs_dir)  # epoch 2: test images 16, 46, 86 are Shirts called T-shirt/top
    at = open_confusion()
    assert (at.session_state["cm_true"], at.session_state["cm_pred"]) == (6, 0)
    assert not any("Evidence for" in c for c in captions(at))
    at.button(key="cm_open_46").click().run()
    assert not at.exception, at.exception
    shown = captions(at)
    assert "Evidence for Shirt (true, Grad-CAM)" in shown
    assert "Evidence for T-shirt/top (predicted, Grad-CAM)" in shown
    assert any("Test image #46" in m.value for m in at.markdown)
    assert any(m.value.startswith("Top-3 after epoch 2") for m in at.markdown)
    assert epochs_chart(at)["data"][0]["x"] == [1, 2]
    at.button(key="cm_close").click().run()
    assert not any("Evidence for" in c for c in captions(at))


def test_draw_and_test_image_tabs_each_have_their_panels(tiny_env, runs_dir):
    write_epochs_run(runs_dir, epochs=3)
    at = drawn(open_page())
    at.button(key="sketch_random").click().run()
    assert not at.exception, at.exception
    titles = [json.loads(c.proto.spec)["layout"].get("title", {}) for c in at.get("plotly_chart")]
    assert sum("each epoch" in t.get("text", "") for t in titles) == 2  # one per tab
    assert at.selectbox(key="explain_class_test") and at.select_slider(key="explain_epoch_test")
