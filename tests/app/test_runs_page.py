"""AppTest of the Runs page: the table, selecting runs, overlaid curves, only the differing
parameters, rename, note, delete (with the active model named), mark active, open in."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from fmnist_app import runs_view as ui
from fmnist_core.events import append_event
from fmnist_core.runs import find_run, list_runs, set_active
from tests.fake_runs import make_run

APP = Path(__file__).resolve().parents[2] / "streamlit_app.py"
PAGE = "pages/4_Runs.py"


class Runs:
    """A (lr 0.1), B (lr 0.05, best epoch 2 of 3), C (lr 0.1, batch 200), and ``order``:
    the ids as the table lists them (newest id first)."""

    def __init__(self, runs_dir: Path) -> None:
        self.a = make_run(runs_dir, lr=0.1, accs=(0.5, 0.7))
        self.b = make_run(runs_dir, lr=0.05, accs=(0.4, 0.8, 0.6))
        self.c = make_run(runs_dir, lr=0.1, batch_size=200, accs=(0.3,))
        self.order = [r.id for r in list_runs(runs_dir)]


@pytest.fixture
def three_runs(tiny_env, runs_dir) -> Runs:
    return Runs(runs_dir)


def open_page() -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=60).run()
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    return at


def table(at: AppTest):
    (frame,) = at.dataframe
    return frame.value


def choose(at: AppTest, ids: list[str], picked: list[str]) -> AppTest:
    """What a click on the rows' checkboxes sends: the selected row positions."""
    state = at.session_state  # AppTest's session state has no .get()
    gen = state[ui.GENERATION_KEY] if ui.GENERATION_KEY in state else 0  # noqa: SIM401
    key = ui.table_key(ids, gen)
    rows = [ids.index(i) for i in picked]
    at.session_state[key] = {"selection": {"rows": rows, "columns": [], "cells": []}}
    at.run()
    assert not at.exception, at.exception
    return at


def curve_names(at: AppTest) -> set[str]:
    charts = [el for el in at.get("plotly_chart") if "runs_curves" in el.proto.id]
    (chart,) = charts
    return {trace.get("name") for trace in json.loads(chart.proto.spec)["data"]}


def button(at: AppTest, label: str):
    return next(b for b in at.button if b.label == label)


def test_table_lists_every_run_with_best_epoch_and_differing_params(three_runs):
    at = open_page()
    df = table(at)
    assert list(df["run id"]) == three_runs.order
    assert {"lr", "batch_size"} <= set(df.columns) and "optimizer" not in df.columns
    b = df[df["run id"] == three_runs.b].iloc[0]
    assert (b["best acc"], b["best epoch"], b["final acc"], b["epochs"]) == (80.0, 2, 60.0, 3)
    assert any("none selected" in c.value or "differ" in c.value for c in at.caption)


def test_select_two_runs_overlays_both_and_shows_only_what_differs(three_runs: Runs):
    at = open_page()
    a, b = three_runs.a, three_runs.b
    at = choose(at, three_runs.order, [b, a])
    df = table(at)
    assert "lr" in df.columns and "batch_size" not in df.columns  # equal for A and B
    names = curve_names(at)
    assert any(b[-4:] in n for n in names) and any(a[-4:] in n for n in names)
    assert len([n for n in names if not n.endswith(")")]) == 0  # every trace names its run
    assert not any("batch loss" in n for n in names)
    next(t for t in at.toggle if t.key == "runs_batch").set_value(True).run()
    names = curve_names(at)  # each run's batch losses, from its event log
    assert {n for n in names if n.endswith("(batch loss)")} == {
        n.replace(")", ") (batch loss)", 1)
        for n in names
        if n.endswith(f"{a[-4:]})") or n.endswith(f"{b[-4:]})")
    }


def test_rename_note_and_mark_active(three_runs, runs_dir):
    at = open_page()
    run_id = three_runs.c
    at = choose(at, three_runs.order, [run_id])
    at.text_input(key=f"runs_name_{run_id}").set_value("big batch")
    button(at, "Rename").click()
    at.run()
    at.text_area(key=f"runs_note_text_{run_id}").set_value("try lr 0.2 next")
    button(at, "Add note").click()
    at.run()
    button(at, "Mark as active").click()
    at.run()
    assert not at.exception, at.exception
    run = find_run(run_id, runs_dir)
    assert (run.name, run.notes) == ("big batch", ["try lr 0.2 next"])
    df = table(at)
    assert df[df["run id"] == run_id].iloc[0]["name"] == "big batch"
    assert json.loads((runs_dir / "active.json").read_text())["run_id"] == run_id


def test_delete_asks_and_names_the_active_model(three_runs, runs_dir):
    b, rest = three_runs.b, [i for i in three_runs.order if i != three_runs.b]
    set_active(b, runs_dir)
    at = open_page()
    at = choose(at, three_runs.order, [b])
    button(at, "Delete").click()
    at.run()
    assert "active model" in at.warning[0].value and find_run(b, runs_dir)
    button(at, "Yes, delete").click()
    at.run()
    assert not at.exception, at.exception
    assert [r.id for r in list_runs(runs_dir)] == rest
    assert list(table(at)["run id"]) == rest
    assert "Deleted" in at.success[0].value


def test_open_in_confusion_matrix_preselects_the_run(three_runs):
    at = open_page()
    at = choose(at, three_runs.order, [three_runs.a])
    button(at, "Confusion matrix").click()
    at.run()
    assert not at.exception, at.exception
    assert at.selectbox(key="cm_run").value == three_runs.a


def test_no_runs_says_how_to_get_one(tiny_env):
    at = open_page()
    assert "No runs yet" in at.info[0].value


def test_open_in_sketch_and_pick_from_the_parallel_coordinates(three_runs):
    at = open_page()
    at.selectbox(key="runs_parcoords_pick").set_value(three_runs.b).run()
    button(at, "Add to the selection").click()
    at.run()
    assert not at.exception, at.exception
    assert at.session_state[ui.SELECTED_KEY] == [three_runs.b]
    assert any(three_runs.b[-4:] in n for n in curve_names(at))
    button(at, "Sketch").click()
    at.run()
    assert not at.exception, at.exception
    assert three_runs.b in at.selectbox(key="sketch_model").value


def test_a_sweeps_runs_are_grouped_and_charted(tiny_env, runs_dir):
    trials = [make_run(runs_dir, lr=lr, accs=(acc,)) for lr, acc in ((0.01, 0.5), (0.2, 0.9))]
    other = make_run(runs_dir, lr=0.1, batch_size=200, accs=(0.3,))
    for run_id, lr in zip(trials, (0.01, 0.2), strict=True):
        append_event(runs_dir / run_id, {"type": "sweep", "sweep_id": "sweep-20261129-1200-ab12",
                                         "trial": run_id[-4:], "params": {"lr": lr}})  # fmt: skip
    at = open_page()
    assert set(table(at)["run id"]) == {*trials, other}  # all runs until a sweep is chosen
    df = table(at)
    assert list(df[df["run id"] == other]["sweep"]) == [""]
    at.selectbox(key=ui.SWEEP_KEY).set_value("sweep-20261129-1200-ab12").run()
    assert not at.exception, at.exception
    df = table(at)
    assert set(df["run id"]) == set(trials) and set(df["sweep"]) == {"sweep-20261129-1200-ab12"}
    (chart,) = [el for el in at.get("plotly_chart") if "runs_parcoords" in el.proto.id]
    (trace,) = json.loads(chart.proto.spec)["data"]
    assert sorted(trace["ids"]) == sorted(trials)  # the chart shows the sweep's runs only
    axes = {d["label"]: d["values"] for d in trace["dimensions"]}
    assert set(axes) == {"lr", "best accuracy"}  # batch_size no longer differs
