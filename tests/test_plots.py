"""Figure builders checked against hand-computed answers."""

from __future__ import annotations

import pytest

from fmnist_core.plots import runs_figure, smooth

ROWS = [
    {"epoch": 1, "val_acc": 0.5, "val_loss": 1.0, "train_loss": 1.2, "elapsed_s": 10.0},
    {"epoch": 2, "val_acc": 0.7, "val_loss": 0.8, "train_loss": 0.9, "elapsed_s": 30.0},
]


def test_smoothing_is_tensorboards_debiased_moving_average():
    assert smooth([3.0, 1.0], 0.0) == [3.0, 1.0]  # weight 0: the raw values
    assert smooth([2.0] * 5, 0.9) == pytest.approx([2.0] * 5)  # debiased: no pull towards 0
    # by hand: avg1 = 0.5*4 = 2 -> 2/0.5 = 4; avg2 = 0.5*2 + 0.5*0 = 1 -> 1/0.75
    assert smooth([4.0, 0.0], 0.5) == pytest.approx([4.0, 4 / 3])


def test_runs_figure_overlays_each_runs_curves_and_its_batch_losses():
    losses = [(0.5, 2.0), (1.0, 1.5), (1.5, 1.0), (2.0, 0.5)]
    fig = runs_figure([("a", ROWS), ("b", ROWS[:1])], "epoch", [losses, []], smoothing=0.0)
    names = [t.name for t in fig.data]
    assert names == ["a", "a (validation)", "a (training)", "a (batch loss)",
                     "b", "b (validation)", "b (training)"]  # fmt: skip
    batch = fig.data[3]
    assert list(batch.x) == [0.5, 1.0, 1.5, 2.0] and list(batch.y) == [2.0, 1.5, 1.0, 0.5]
    assert fig.data[0].line.color == batch.line.color  # one colour per run
    seconds = runs_figure([("a", ROWS)], "elapsed_s", [losses], smoothing=0.0).data[3]
    assert list(seconds.x) == pytest.approx([5.0, 10.0, 20.0, 30.0])  # between epoch ends
    assert len(runs_figure([("a", ROWS)], "epoch").data) == 3  # no losses asked: no trace
