"""JobManager(mode="process"): a single training in a child process (``python -m fmnist_core
train --control-signals``), followed through its record; Pause, One more epoch and Stop reach
it by signals. The child inherits the test gate (``FMNIST_TEST_GATE``) that holds it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from fmnist_app.jobs import JobManager
from fmnist_core import runs
from fmnist_core.config import TrainConfig
from fmnist_core.gate import ENV, Gate

TINY = TrainConfig(epochs=2, batch_size=100, lr=0.1, name="tiny")
WAIT = 120  # seconds: the child imports torch on a loaded 2-core machine


@pytest.fixture
def gate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Gate:
    monkeypatch.setenv(ENV, str(tmp_path / "gate"))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    return Gate.from_env()


@pytest.fixture
def jobs(runs_dir: Path, tiny_env: Path, gate: Gate) -> Iterator[JobManager]:
    """A process-mode job manager; its child is stopped even when a test fails midway."""
    manager = JobManager(runs_dir, mode="process")
    yield manager
    manager.stop()
    gate.release()
    assert manager.join(WAIT)


def until(condition, what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)  # the poll interval of a deadline loop


def test_a_child_process_pauses_gets_one_more_epoch_and_finishes(jobs, runs_dir, gate):
    gate.hold("step", 1)
    assert jobs.start(TINY) is None  # the child names its run once its folder exists
    gate.wait_held(WAIT)
    until(lambda: jobs.snapshot().batch == 1, "the first batch in the record")
    snap = jobs.snapshot()
    assert snap.status == "running" and snap.run_id and snap.processes == 1
    assert jobs.pause() and jobs.snapshot().paused
    gate.hold("epoch", 2)  # the gate lets it go; the pause keeps it before its next batch
    assert jobs.resume() and not jobs.snapshot().paused
    gate.wait_held(WAIT)  # right after its last epoch: without the raise it would end
    assert jobs.extend() and jobs.snapshot().epochs == 3
    gate.release()
    assert jobs.join(WAIT)
    snap = jobs.snapshot()
    assert snap.status == "finished" and [row["epoch"] for row in snap.history] == [1, 2, 3]
    assert snap.active and runs.find_run(snap.run_id, runs_dir).epochs == [1, 2, 3]


def test_a_child_process_stops_and_a_failed_child_is_reported(jobs, gate):
    gate.hold("step", 1)
    jobs.start(TINY)
    gate.wait_held(WAIT)
    until(lambda: jobs.snapshot().run_id is not None, "the run id")
    assert jobs.stop() and jobs.join(WAIT)
    snap = jobs.snapshot()
    assert snap.status == "stopped" and not snap.active
    bad = TrainConfig(epochs=1, batch_size=100, train_subset=50_000, name="bad")
    jobs.start(bad)  # refused by the child: more training images than the dataset has
    assert jobs.join(WAIT)
    snap = jobs.snapshot()
    assert snap.status == "failed" and "training process ended (exit status 2)" in snap.reason
    assert "--train-subset" in snap.reason  # the child's own message, for the user
