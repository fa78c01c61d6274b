"""The test gate holds a real training where asked, until released or stopped."""

from __future__ import annotations

import threading

import pytest

from fmnist_core.config import TrainConfig
from fmnist_core.gate import Gate
from fmnist_core.train import BatchProgress, EpochEnd, RunEnd, train

CFG = TrainConfig(epochs=2, batch_size=100, lr=0.1, name="gated")  # 6 batches per epoch
WAIT = 60


def run_in_thread(gate: Gate, stop: threading.Event) -> tuple[threading.Thread, list]:
    events: list = []

    def consume() -> None:
        events.extend(gate.wrap(train(CFG, stop=stop), stop))

    thread = threading.Thread(target=consume, daemon=True)
    thread.start()
    return thread, events


@pytest.mark.parametrize(("point", "n", "seen"), [("step", 3, (1, 3)), ("epoch", 1, (1, 6))])
def test_a_held_training_waits_there_until_released(tmp_path, tiny_env, point, n, seen):
    gate, stop = Gate(tmp_path / "gate"), threading.Event()
    gate.hold(point, n)
    thread, events = run_in_thread(gate, stop)
    assert gate.wait_held(WAIT) == {"point": point, "n": n}
    last = [e for e in events if isinstance(e, BatchProgress)][-1]
    assert (last.epoch, last.batch) == seen and thread.is_alive()  # no batch past the hold
    assert any(isinstance(e, EpochEnd) for e in events) == (point == "epoch")
    gate.release()
    thread.join(WAIT)
    assert isinstance(events[-1], RunEnd) and events[-1].status == "finished"
    assert events[-1].epochs_done == 2


def test_a_stop_ends_the_hold_and_the_run_stops_before_its_next_batch(tmp_path, tiny_env):
    gate, stop = Gate(tmp_path / "gate"), threading.Event()
    gate.hold("step", 2)
    thread, events = run_in_thread(gate, stop)
    gate.wait_held(WAIT)
    stop.set()
    thread.join(WAIT)
    assert not thread.is_alive()
    assert len([e for e in events if isinstance(e, BatchProgress)]) == 2
    assert events[-1].status == "stopped" and events[-1].epochs_done == 0
    stop.clear()  # the hold is gone for good: the next run is not held
    assert gate._wanted() is None


def test_without_the_variable_there_is_no_gate(monkeypatch, tmp_path):
    monkeypatch.delenv("FMNIST_TEST_GATE", raising=False)
    assert Gate.from_env() is None
    with pytest.raises(ValueError, match="hold at one of"):
        Gate(tmp_path).hold("batch", 1)


def test_a_new_hold_moves_a_held_run_on_to_it(tmp_path, tiny_env):
    gate, stop = Gate(tmp_path / "gate"), threading.Event()
    gate.hold("step", 1)
    thread, events = run_in_thread(gate, stop)
    gate.wait_held(WAIT)
    gate.hold("epoch", 1)  # replaces the first hold in one move: no gap to slip through
    assert gate.wait_held(WAIT) == {"point": "epoch", "n": 1}
    assert isinstance(events[-1], EpochEnd) and events[-1].epoch == 1 and thread.is_alive()
    gate.release()
    thread.join(WAIT)
    assert events[-1].status == "finished"
