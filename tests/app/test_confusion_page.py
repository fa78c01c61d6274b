"""AppTest of the Confusion-matrix page: render, injected clicks, selectors, paging, no runs.

Most tests use a run written through the real RunRecorder with hand-made predictions on the
tiny test set (labels = index % 10), so the images behind every cell are known exactly.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from streamlit.testing.v1 import AppTest

from fmnist_app import confusion as ui
from fmnist_core import TrainConfig, build_model, start_run
from fmnist_core.runs import RunRecorder, load_run
from fmnist_core.train import EpochEnd, RunEnd

APP = Path(__file__).resolve().parents[2] / "streamlit_app.py"
PAGE = "pages/2_Confusion_matrix.py"
SHIRT, TSHIRT, PULLOVER, COAT = 6, 0, 2, 4
N_TEST = 200


def _probs(mistakes: bool) -> torch.Tensor:
    """Every image right with 0.9; with ``mistakes``, some shirts go wrong or are borderline."""
    labels = torch.arange(N_TEST) % 10
    probs = torch.zeros(N_TEST, 10)
    probs[torch.arange(N_TEST), labels] = 0.9
    probs[torch.arange(N_TEST), (labels + 1) % 10] = 0.1
    if mistakes:
        # index: (class, its probability), the rest on Coat
        changes = {16: (TSHIRT, 0.6), 46: (TSHIRT, 0.9), 86: (TSHIRT, 0.75),
                   126: (PULLOVER, 0.8), 6: (SHIRT, 0.55), 36: (SHIRT, 0.51)}  # fmt: skip
        for i, (cls, p) in changes.items():
            probs[i] = 0.0
            probs[i, cls], probs[i, COAT] = p, 1 - p
    return probs


def write_known_run(runs_dir: Path) -> str:
    """A finished 2-epoch run: epoch 1 all correct, epoch 2 with the mistakes above."""
    cfg = TrainConfig(epochs=2, name="known")
    rec = RunRecorder.create(cfg, runs_dir)
    state = build_model(cfg).state_dict()
    events = [
        EpochEnd(e, 2, 1.0, 1.0, 1.0, 0.9, 1.0, float(e), _probs(e == 2), state) for e in (1, 2)
    ]
    list(rec.record(iter([*events, RunEnd("finished", "", 2, 0.9, 2.0)]), torch.arange(200) % 10))
    return rec.run_id


def open_page(timeout: float = 60) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=timeout).run()
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    return at


def click(at: AppTest, true: int, pred: int) -> AppTest:
    """Inject what st.plotly_chart(on_select="rerun") stores for a click on the overlay."""
    classes = ui.CLASSES
    point = {"curve_number": 1, "point_number": true * 10 + pred, "point_index": true * 10 + pred,
             "x": classes[pred], "y": classes[true], "customdata": [true, pred]}  # fmt: skip
    at.session_state[ui.CHART_KEY] = {
        "selection": {
            "points": [point],
            "point_indices": [true * 10 + pred],
            "box": [],
            "lasso": [],
        }
    }
    at.run()
    assert not at.exception, at.exception
    return at


def shown_indices(at: AppTest) -> list[int]:
    """Test indices of the gallery images, in display order (from their '#N · top-3' lines)."""
    return [int(c.value.split(" ")[0][1:]) for c in at.caption if c.value.startswith("#")]


def selectors(at: AppTest) -> tuple[int, int]:
    return at.selectbox(key=ui.TRUE_KEY).value, at.selectbox(key=ui.PRED_KEY).value


def test_page_renders_a_trained_run(tiny_env: Path, runs_dir: Path) -> None:
    rec, events = start_run(TrainConfig(epochs=2, train_subset=0, batch_size=100, name="t"))
    for _ in events:
        pass
    run = load_run(rec.path)
    at = open_page()
    assert at.selectbox(key="cm_run").value == run.id
    assert at.select_slider(key=f"cm_epoch_{run.id}").value == 2
    assert at.metric[0].value == f"{run.final_val_acc:.1%}"
    table = at.dataframe[0].value
    assert list(table["class"]) == list(ui.CLASSES) and table["support"].sum() == N_TEST
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    heat, overlay = spec["data"]
    assert heat["type"] == "heatmap" and heat["hoverinfo"] == "skip"
    assert overlay["customdata"][SHIRT * 10 + TSHIRT] == [SHIRT, TSHIRT]
    assert spec["layout"]["xaxis"]["type"] == spec["layout"]["yaxis"]["type"] == "category"
    at.toggle(key="cm_rates").set_value(True).run()
    rates = json.loads(at.get("plotly_chart")[0].proto.spec)["data"][0]
    assert rates["z"][SHIRT] == pytest.approx([c / N_TEST * 10 for c in heat["z"][SHIRT]])
    assert rates["text"][SHIRT][SHIRT].endswith(f"({heat['z'][SHIRT][SHIRT]})")


def test_injected_click_shows_that_cells_images_most_confident_first(
    tiny_env: Path, runs_dir: Path
) -> None:
    write_known_run(runs_dir)
    at = click(open_page(), SHIRT, TSHIRT)
    assert selectors(at) == (SHIRT, TSHIRT)
    assert shown_indices(at) == [46, 86, 16]
    assert any("**3 test image(s)** with true *Shirt* predicted *T-shirt/top*" in m.value
               for m in at.markdown)  # fmt: skip
    assert "#86 · 75% sure" in [c.value for c in at.caption]  # one short caption per image
    details = at.button(key="cm_open_86").help  # the rest on hover
    assert details == (
        "Test image #86: true Shirt, predicted T-shirt/top (75%). "
        "Top-3: T-shirt/top 75%, Coat 25%, Sneaker 0%."
    )
    # The click is answered where the user looks: a toast, and the page scrolls to the images.
    assert [t.value for t in at.toast] == [
        "3 test image(s): true Shirt, predicted T-shirt/top - shown below the matrix."
    ]
    assert ui.GALLERY_ANCHOR in at.get("iframe")[0].proto.srcdoc
    at.run()  # no new click: no toast, no scroll
    assert not at.toast and not at.get("iframe")


def test_the_default_cell_opens_without_a_toast_and_a_pair_button_points_at_it(
    tiny_env: Path, runs_dir: Path
) -> None:
    write_known_run(runs_dir)
    at = open_page()
    assert not at.toast and not at.get("iframe")
    at.button(key=f"cm_pair_{SHIRT}_{PULLOVER}").click().run()
    assert "true Shirt, predicted Pullover" in at.toast[0].value and at.get("iframe")


def test_selectors_drive_the_gallery_and_an_old_click_does_not_undo_them(
    tiny_env: Path, runs_dir: Path
) -> None:
    write_known_run(runs_dir)
    at = click(open_page(), SHIRT, TSHIRT)
    at.selectbox(key=ui.PRED_KEY).set_value(SHIRT).run()
    # the diagonal: least confident correct first, then ties in index order
    rest = [i for i in range(SHIRT, N_TEST, 10) if i not in {6, 16, 36, 46, 86, 126}]
    assert shown_indices(at) == [36, 6, *rest]
    at.run()  # the chart's stale click (Shirt, T-shirt/top) must not come back
    assert selectors(at) == (SHIRT, SHIRT)
    click(at, SHIRT, PULLOVER)
    assert selectors(at) == (SHIRT, PULLOVER) and shown_indices(at) == [126]


def test_most_confused_pair_button_opens_its_cell(tiny_env: Path, runs_dir: Path) -> None:
    write_known_run(runs_dir)
    at = open_page()
    assert selectors(at) == (SHIRT, TSHIRT)  # the default cell is the most confused pair
    at.button(key=f"cm_pair_{SHIRT}_{PULLOVER}").click().run()
    assert selectors(at) == (SHIRT, PULLOVER) and shown_indices(at) == [126]


def test_epoch_slider_switches_the_predictions(tiny_env: Path, runs_dir: Path) -> None:
    run_id = write_known_run(runs_dir)
    at = click(open_page(), SHIRT, TSHIRT)
    at.select_slider(key=f"cm_epoch_{run_id}").set_value(1).run()
    assert at.metric[0].value == "100.0%" and shown_indices(at) == []
    assert any("No test image falls in this cell" in i.value for i in at.info)


def test_paging_and_back_to_page_one_on_a_new_cell(
    tiny_env: Path, runs_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ui, "PER_PAGE", 5)
    write_known_run(runs_dir)
    at = click(open_page(), SHIRT, SHIRT)  # 16 images: 4 pages
    assert shown_indices(at) == [36, 6, 26, 56, 66]
    at.number_input(key=ui.PAGE_KEY).set_value(4).run()
    assert shown_indices(at) == [196]
    click(at, SHIRT, TSHIRT)
    assert shown_indices(at) == [46, 86, 16] and not at.number_input


def test_no_runs_shows_a_message_and_a_link_to_train(tiny_env: Path) -> None:
    at = open_page()
    assert any("No trained model yet" in i.value for i in at.info)
    assert at.get("page_link")[0].proto.page == "Train"
    assert not at.get("plotly_chart")


def test_broken_runs_are_reported_and_the_page_still_works(tiny_env: Path, runs_dir: Path) -> None:
    run_id = write_known_run(runs_dir)
    (runs_dir / "zz-broken").mkdir()
    (runs_dir / "zz-broken" / "config.json").write_text("{not json")
    at = open_page()
    assert any("zz-broken" in c.value for c in at.caption) and at.get("plotly_chart")
    (runs_dir / run_id / "probs_002.pt").write_bytes(b"garbage")
    at.run()
    assert any(f"Cannot show run {run_id}" in e.value for e in at.error)
    assert not at.exception
