"""AppTest of the Learning page: the three views on runs with hand-made predictions.

The tiny test set has labels = index % 10; tests/fake_runs.py puts the first ``acc`` share
of the images on the right class, so which images are learned when is known exactly.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import streamlit as st
import torch
from streamlit.testing.v1 import AppTest

from fmnist_app import learning_view as ui
from fmnist_core.dynamics import calibration_split
from fmnist_core.runs import load_run
from tests.fake_runs import make_run

APP = Path(__file__).resolve().parents[2] / "streamlit_app.py"
PAGE = "pages/5_Learning.py"


@pytest.fixture(autouse=True)
def _fresh_caches() -> None:
    st.cache_data.clear()
    st.cache_resource.clear()


def open_page(section: str | None = None, timeout: float = 60) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=timeout).run()
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    if section:
        at.session_state["learn_section"] = section
        at.run()
        assert not at.exception, at.exception
    return at


def charts(at: AppTest) -> dict[str, dict]:
    return {c.proto.id: json.loads(c.proto.spec) for c in at.get("plotly_chart")}


def metric_t(temperature: float) -> str:
    return f"temperature {temperature:.2f}"


def metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def test_timeline_counts_learned_forgotten_and_never(tiny_env: Path, runs_dir: Path) -> None:
    # epoch 1: images 0-99 right; epoch 2: 0-159; epoch 3: 0-119 (120-159 forgotten once)
    run_id = make_run(runs_dir, accs=(0.5, 0.8, 0.6))
    at = open_page()
    assert at.selectbox(key="cm_run").value == run_id
    assert metric(at, "Learned") == "120"
    assert metric(at, "Forgotten") == "40"
    assert metric(at, "Never learned") == "40"  # 160-199 are never right
    specs = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    flips = next(s for s in specs if "flipped" in s["layout"]["title"]["text"])
    learned, forgot = flips["data"]
    assert learned["y"] == [60, 0] and forgot["y"] == [0, 40]
    per_class = next(s for s in specs if "per true class" in s["layout"]["title"]["text"])
    assert per_class["data"][0]["z"][0] == [0, 4]  # 4 T-shirts among 120-159 went wrong at 3
    learned_at = next(s for s in specs if "were learned" in s["layout"]["title"]["text"])
    assert [t["x"][0] for t in learned_at["data"]] == [10, 2, 0, 8]  # T-shirts: 1, 2, -, never


def test_gallery_opens_an_image_with_its_probabilities(tiny_env: Path, runs_dir: Path) -> None:
    make_run(runs_dir, accs=(0.5, 0.8, 0.6))
    at = open_page()
    at.button(key="learn_open_forgot_120").click().run()
    assert not at.exception, at.exception
    assert any("Test image #120" in m.value for m in at.markdown)
    spec = json.loads(at.get("plotly_chart")[-1].proto.spec)
    assert "after each epoch" in spec["layout"]["title"]["text"]


def test_compare_two_runs(tiny_env: Path, runs_dir: Path) -> None:
    weak = make_run(runs_dir, accs=(0.5,), name="a")  # 0-99 right
    strong = make_run(runs_dir, accs=(0.8,), name="b", seed=1)  # 0-159 right
    at = open_page()
    at.selectbox(key="cm_run").set_value(strong).run()
    at.selectbox(key="learn_other").set_value(load_run(runs_dir / weak)).run()
    assert not at.exception, at.exception
    texts = " ".join(m.value for m in at.markdown)
    assert "**60** right here, wrong in the other run" in texts  # 100-159
    assert "**0** wrong here, right in the other run" in texts
    assert at.button(key="learn_open_cmp_a_100") and at.button(
        key="learn_open_cmp_a_111"
    )  # first 12


def test_feature_space_scatter_moves_with_the_epoch(tiny_env: Path, runs_dir: Path) -> None:
    run_id = make_run(runs_dir, accs=(0.5, 0.8, 0.6))
    at = open_page("features")
    first = charts(at)
    scatter = next(s for s in first.values() if "PCA" in s["layout"]["title"]["text"])
    points = sum(len(t["x"]) for t in scatter["data"])
    assert points == 200  # the whole tiny test set (fewer than SAMPLE)
    ids = sorted(i for t in scatter["data"] for i in t["customdata"])
    assert ids == list(range(200))
    at.select_slider(key=f"learn_feat_epoch_{run_id}").set_value(1).run()
    assert not at.exception, at.exception
    moved = next(s for s in charts(at).values() if "PCA" in s["layout"]["title"]["text"])
    assert moved["layout"]["xaxis"]["range"] == scatter["layout"]["xaxis"]["range"]  # fixed axes
    assert moved["data"][0]["x"] != scatter["data"][0]["x"]  # other weights, other points


def highlighted(at: AppTest) -> list[int]:
    scatter = next(s for s in charts(at).values() if "PCA" in s["layout"]["title"]["text"])
    return sorted(i for t in scatter["data"] for i, size in zip(t["customdata"],
                  t["marker"]["size"], strict=True) if size > 5)  # fmt: skip


def test_confusion_cell_highlights_its_images(tiny_env: Path, runs_dir: Path) -> None:
    make_run(runs_dir, accs=(0.5, 0.8))
    at = AppTest.from_file(str(APP), default_timeout=60).run()
    at.switch_page(PAGE)
    at.session_state["cm_true"], at.session_state["cm_pred"] = 6, 7  # set on the Confusion page
    at.run()  # the first run of the page opens the timeline
    assert not at.exception, at.exception
    # Streamlit drops the Confusion page's widget values after this first run
    del at.session_state["cm_true"]
    del at.session_state["cm_pred"]
    at.session_state["learn_section"] = "features"
    at.run()
    assert not at.exception, at.exception
    assert at.selectbox(key=ui.CELL_TRUE_KEY).value == 6
    assert at.selectbox(key=ui.CELL_PRED_KEY).value == 7
    # epoch 2: images 160-199 are wrong, predicted as the next class: 4 shirts (166, 176, ...)
    assert any(c.value.startswith("4 of the shown images") for c in at.caption)
    assert highlighted(at) == [166, 176, 186, 196]


def test_cell_picker_choice_survives_other_sections(tiny_env: Path, runs_dir: Path) -> None:
    make_run(runs_dir, accs=(0.5, 0.8))
    at = open_page("features")
    assert highlighted(at) == []  # nothing picked: no highlight
    at.selectbox(key=ui.CELL_TRUE_KEY).set_value(3).run()
    at.selectbox(key=ui.CELL_PRED_KEY).set_value(4).run()
    assert highlighted(at) == [163, 173, 183, 193]
    at.session_state["learn_section"] = "calibration"
    at.run()
    at.session_state["learn_section"] = "features"
    at.run()
    assert not at.exception, at.exception
    assert at.selectbox(key=ui.CELL_TRUE_KEY).value == 3 and highlighted(at) == [163, 173, 183, 193]
    at.selectbox(key=ui.CELL_TRUE_KEY).set_value(None).run()
    assert highlighted(at) == []


def test_scatter_click_opens_the_image(tiny_env: Path, runs_dir: Path) -> None:
    make_run(runs_dir, accs=(0.5, 0.8))
    at = open_page("features")
    at.session_state[ui.SCATTER_KEY] = {"selection": {"points": [{"customdata": 42}]}}
    at.run()
    assert not at.exception, at.exception
    assert any("Test image #42" in m.value for m in at.markdown)


def test_calibration_with_and_without_temperature(tiny_env: Path, runs_dir: Path) -> None:
    make_run(runs_dir, accs=(0.5, 0.8))  # 0.9 confidence everywhere: overconfident at 50%
    at = open_page("calibration")
    # judged on the held-out half only: its share of right images (0-99 at epoch 1, 0-159 at 2)
    _, held = calibration_split(torch.arange(200) % 10)
    accs = [float((held < 100).float().mean()), float((held < 160).float().mean())]
    expected = [abs(0.9 - a) for a in accs]  # one confidence (0.9): ECE is the gap
    shown = float(metric(at, "ECE as saved").rstrip("%")) / 100
    assert shown == pytest.approx(expected[1], abs=2e-4)  # probs are saved as float16
    temperature = float(metric(at, "Temperature"))
    assert temperature > 1  # overconfident: T > 1 softens
    specs = charts(at)
    ece = next(s for s in specs.values() if "per epoch" in s["layout"]["title"]["text"])
    raw, scaled = ece["data"]
    assert raw["y"] == pytest.approx(expected, abs=1e-3)  # probs are saved as float16
    # epoch 1: both halves 50% right at 0.9, so the fitted T brings the held half to ~0 ECE
    assert scaled["y"][0] < 0.01 < raw["y"][0]
    reliability = next(s for s in specs.values() if "Reliability" in s["layout"]["title"]["text"])
    assert [t["name"] for t in reliability["data"]][1:] == ["as saved", metric_t(temperature)]
    assert any("Most confidently wrong" in m.value for m in at.markdown)
    assert at.button(key="learn_open_conf_160")  # a wrong image in the gallery


def test_no_runs_says_so(tiny_env: Path) -> None:
    at = open_page()
    assert any("No trained model yet" in i.value for i in at.info)


@pytest.mark.parametrize(
    "forged",
    [
        {"learn_section": "bogus"},
        {"learn_section": "features", ui.CELL_TRUE_KEY: 99, ui.CELL_PRED_KEY: "x"},
        {"learn_section": "features", "learn_colour": "sepia"},
        {
            "learn_section": "features",
            ui.SCATTER_KEY: {"selection": {"points": [{"customdata": 10**9}]}},
        },
        {"learn_section": "features", "cm_true": 42, "cm_pred": [1]},
        {ui.OPENED_KEY: "12"},
        {ui.OPENED_KEY: 10**9, "learn_flip_kind": "sideways"},
    ],
)
def test_forged_values_fall_back(tiny_env: Path, runs_dir: Path, forged: dict) -> None:
    make_run(runs_dir, accs=(0.5, 0.8))
    at = AppTest.from_file(str(APP), default_timeout=60).run()
    at.switch_page(PAGE)
    for key, value in forged.items():
        at.session_state[key] = value
    at.run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    assert at.get("plotly_chart"), "the view still shows its charts"


class Evil:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"open({str(self.marker)!r}, 'w').write('pwned')",))


@pytest.mark.parametrize("section", ["timeline", "features", "calibration"])
@pytest.mark.parametrize("name", ["probs_002.pt", "epoch_002.pt"])
def test_a_malicious_or_broken_epoch_file_gives_a_message(
    tiny_env: Path, runs_dir: Path, tmp_path: Path, section: str, name: str
) -> None:
    run_id = make_run(runs_dir, accs=(0.5, 0.8))
    marker = tmp_path / "pwned"
    torch.save({"w": Evil(marker)}, runs_dir / run_id / name)
    at = open_page(section)
    assert not marker.exists()
    errors = " ".join(e.value for e in at.error)
    if name.startswith("probs") or section == "features":  # the views that read that file
        assert "Cannot show run" in errors and "refused to load" in errors, errors
    (runs_dir / run_id / name).write_bytes(b"not a checkpoint")
    st.cache_data.clear()
    st.cache_resource.clear()
    at.run()
    assert not at.exception, at.exception
    if name.startswith("probs") or section == "features":
        assert "Cannot show run" in " ".join(e.value for e in at.error)
