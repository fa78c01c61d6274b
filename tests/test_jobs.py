"""JobManager without Streamlit: one job at a time, stop, finished runs active, failures not.

Real trainings on the tiny dataset go through ``start_run``; the one-at-a-time and stop
tests use a scripted starter whose events wait on gates, so nothing depends on timing.
"""

from __future__ import annotations

import platform
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from fmnist_app import jobs as jobs_module
from fmnist_app.jobs import JobError, JobManager, JobSnapshot, LossTrace, job_caption
from fmnist_core import runs
from fmnist_core.config import TrainConfig
from fmnist_core.gate import Gate
from fmnist_core.record import RunRecorder
from fmnist_core.train import MAX_EPOCHS, BatchProgress, RunEnd, Started

TINY = TrainConfig(epochs=2, batch_size=100, lr=0.1, name="tiny")
BOOM = TrainConfig(epochs=2, lr=1.0, optimizer="adam", batch_size=16, name="boom")
WAIT = 60  # seconds: generous for a loaded 2-core machine; a passing test never waits it


class ScriptedStarter:
    """A ``start_run`` stand-in: Started, one batch, then waits for ``release`` or the stop.
    Its events are recorded in a real run folder: the job's snapshot is read from there."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.first_batch = threading.Event()
        self.calls = 0
        self.run_ids: list[str] = []

    def __call__(self, cfg, directory, stop, epochs=None) -> tuple[RunRecorder, Iterator]:
        self.calls += 1
        rec = RunRecorder.create(cfg, directory)
        self.run_ids.append(rec.run_id)
        return rec, rec.record(self._events(stop), torch.zeros(10, dtype=torch.long))

    def _events(self, stop: threading.Event) -> Iterator:
        yield Started("cpu", 600, 200, 6, 1000, "scripted")
        yield BatchProgress(1, 1, 6, 2.3, 100.0, 5.0, 0.1)
        self.first_batch.set()
        while not (stop.is_set() or self.release.is_set()):
            stop.wait(0.01)  # the real loop checks its flag once per batch
        if stop.is_set():
            yield RunEnd("stopped", "stopped by the user", 0, None, 0.2)
        else:
            yield RunEnd("finished", "", 2, 0.9, 0.3)


@pytest.fixture
def jobs(runs_dir: Path, tiny_env) -> Iterator[JobManager]:
    manager = JobManager(runs_dir)
    yield manager
    manager.stop()
    assert manager.join(WAIT)


@pytest.mark.learns
def test_a_tiny_training_finishes_saves_and_becomes_active(jobs, runs_dir):
    run_id = jobs.start(TINY)
    assert jobs.join(WAIT)
    snap = jobs.snapshot()
    assert snap.status == "finished" and snap.run_id == run_id and snap.active
    assert [row["epoch"] for row in snap.history] == [1, 2]
    assert snap.final_val_acc == snap.history[-1]["val_acc"] > 0.5
    assert snap.batches == 6 and (snap.epoch, snap.batch) == (2, 6) and snap.progress == 1.0
    assert [round(x, 3) for x, _ in snap.losses] == [round(i / 6, 3) for i in range(1, 13)]
    assert snap.config == TINY and not snap.running
    saved = runs.find_run(run_id, runs_dir)
    assert saved.status == "finished" and saved.epochs == [1, 2]
    assert runs.active_run(runs_dir).id == run_id


@pytest.mark.learns
def test_a_diverging_training_fails_with_its_reason_and_is_never_active(jobs, runs_dir):
    run_id = jobs.start(BOOM)
    assert jobs.join(WAIT)
    snap = jobs.snapshot()
    assert snap.status == "failed" and not snap.active
    assert "diverged at epoch" in snap.reason and "lower the learning rate" in snap.reason
    assert runs.find_run(run_id, runs_dir).status == "failed"
    assert not (runs_dir / runs.ACTIVE_FILE).exists() and runs.active_run(runs_dir) is None


def test_one_job_at_a_time_and_stop_ends_it_as_stopped(runs_dir):
    starter = ScriptedStarter()
    jobs = JobManager(runs_dir, starter=starter)
    jobs.start(TINY)
    assert starter.first_batch.wait(WAIT)
    snap = jobs.snapshot()
    assert snap.running and (snap.epoch, snap.batch, snap.batches) == (1, 1, 6)
    assert snap.progress == pytest.approx(1 / 12)
    started = time.strftime("%H:%M", time.localtime(snap.started))
    first = starter.run_ids[0]
    caption = f"**Training now:** run {first}, started {started} (live on Train)"
    assert job_caption(snap) == caption
    with pytest.raises(JobError, match=f"already running .*{first}"):
        jobs.start(TINY.replace(seed=1))
    assert starter.calls == 1 and jobs.snapshot().config == TINY
    assert jobs.stop() and jobs.snapshot().stopping
    assert jobs.join(WAIT)
    snap = jobs.snapshot()
    assert snap.status == "stopped" and not snap.stopping and not snap.active
    assert job_caption(snap) is None and not jobs.stop()
    assert not (runs_dir / runs.ACTIVE_FILE).exists()
    jobs.start(TINY)  # a new job may start once the last one ended
    assert jobs.snapshot().run_id == starter.run_ids[1] and jobs.snapshot().history == ()
    starter.release.set()
    assert jobs.join(WAIT) and jobs.snapshot().status == "finished"


def test_missing_data_is_a_clear_error_and_starts_nothing(runs_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("FMNIST_DATA_DIR", str(tmp_path / "nowhere"))
    jobs = JobManager(runs_dir)
    not_found = "(?s)^Cannot start training: Fashion-MNIST was not found.*nowhere"
    with pytest.raises(JobError, match=not_found):
        jobs.start(TINY)
    assert jobs.snapshot() == JobSnapshot() and jobs._thread is None
    assert list(runs_dir.iterdir()) == []


def test_a_crashing_event_stream_ends_as_failed(runs_dir):
    def broken(cfg, directory, stop, epochs=None):
        def events():
            yield Started("cpu", 600, 200, 6, 1000, "broken")
            raise OSError("disk vanished")

        return SimpleNamespace(run_id="broken-1"), events()

    jobs = JobManager(runs_dir, starter=broken)
    jobs.start(TINY)
    assert jobs.join(WAIT)
    snap = jobs.snapshot()
    assert snap.status == "failed" and snap.reason == "training crashed: disk vanished"


def test_loss_trace_stays_bounded_and_keeps_the_mean():
    trace = LossTrace(limit=50)
    values = [float(i % 7) for i in range(10_000)]
    for i, v in enumerate(values):
        trace.add((i + 1) / 1000, v)
    assert 25 <= len(trace.points) < 50 and trace.stride == 256
    xs = [x for x, _ in trace.points]
    assert xs == sorted(xs) and xs[-1] <= 10.0
    covered = len(trace.points) * trace.stride
    mean = sum(v for _, v in trace.points) / len(trace.points)
    assert mean == pytest.approx(sum(values[:covered]) / covered)


def test_loss_trace_keeps_every_batch_while_short():
    trace = LossTrace(limit=10)
    for i in range(9):
        trace.add(i, 2.0 * i)
    assert trace.points == [(i, 2.0 * i) for i in range(9)] and trace.stride == 1


def test_an_unexpected_error_while_starting_is_a_message_and_the_manager_stays_usable(runs_dir):
    def out_of_memory(cfg, directory, stop, epochs=None):
        raise RuntimeError("DefaultCPUAllocator: can't allocate memory")

    jobs = JobManager(runs_dir, starter=out_of_memory)
    with pytest.raises(JobError, match="^Cannot start training: DefaultCPUAllocator"):
        jobs.start(TINY)
    assert jobs.snapshot() == JobSnapshot() and jobs._thread is None
    jobs._starter = ScriptedStarter()
    jobs.start(TINY)
    assert jobs.snapshot().running and jobs.stop() and jobs.join(WAIT)


def test_one_more_epoch_for_a_held_run_ends_it_with_one_epoch_more(runs_dir, tiny_env, tmp_path):
    gate = Gate(tmp_path / "gate")
    jobs = JobManager(runs_dir, gate=gate)
    gate.hold("epoch", 2)  # held right after its last epoch: without the raise, it would end
    run_id = jobs.start(TINY)
    gate.wait_held(WAIT)
    snap = jobs.snapshot()
    assert snap.epochs == 2 and snap.progress == 1.0 and snap.extend_refusal == ""
    assert jobs.extend()
    snap = jobs.snapshot()  # at once, before the loop has seen it
    assert snap.epochs == 3 and snap.progress == pytest.approx(2 / 3)
    assert snap.config == TINY  # as started: the settings' summary keeps its label
    gate.release()
    assert jobs.join(WAIT)
    snap = jobs.snapshot()
    assert snap.status == "finished" and [row["epoch"] for row in snap.history] == [1, 2, 3]
    assert snap.epochs == 3 and snap.progress == 1.0
    saved = runs.find_run(run_id, runs_dir)
    assert saved.config.epochs == 3 and saved.epochs == [1, 2, 3]
    assert not jobs.extend() and jobs.snapshot().epochs == 3  # over: nothing to extend


def test_one_more_epoch_while_paused_and_never_past_the_limit(runs_dir):
    starter = ScriptedStarter()
    jobs = JobManager(runs_dir, starter=starter)
    jobs.start(TINY.replace(epochs=MAX_EPOCHS - 1))
    assert starter.first_batch.wait(WAIT)
    assert jobs.pause() and jobs.extend()
    snap = jobs.snapshot()
    assert snap.paused and snap.epochs == MAX_EPOCHS
    assert "30 epochs is the most" in snap.extend_refusal and not jobs.extend()
    jobs.stop()
    assert jobs.join(WAIT) and not jobs.extend()
    assert "only a running training" in jobs.snapshot().extend_refusal


def test_a_onecycle_run_gets_no_more_epochs(runs_dir):
    starter = ScriptedStarter()
    jobs = JobManager(runs_dir, starter=starter)
    jobs.start(TINY.replace(schedule="onecycle"))
    assert starter.first_batch.wait(WAIT)
    assert "one-cycle" in jobs.snapshot().extend_refusal and not jobs.extend()
    jobs.stop()
    assert jobs.join(WAIT)


class FakeGlibc:
    """Records ``malloc_trim`` calls in place of the C library's."""

    def __init__(self) -> None:
        self.trims: list[int] = []
        self.options: list[tuple[int, int]] = []

    def mallopt(self, option: int, value: int) -> int:
        self.options.append((option, value))
        return 1

    def malloc_trim(self, pad: int) -> int:
        self.trims.append(pad)
        return 1


def test_each_ended_training_gives_its_freed_memory_back(runs_dir, monkeypatch):
    # The server grew ~10 MB per training without it (benchmarks/server_memory.py).
    libc = FakeGlibc()
    monkeypatch.setattr(jobs_module, "_GLIBC", libc)
    starter = ScriptedStarter()
    jobs = JobManager(runs_dir, starter=starter)
    jobs.start(TINY)
    assert starter.first_batch.wait(WAIT)
    assert libc.trims == []  # never while a training runs
    starter.release.set()
    assert jobs.join(WAIT) and jobs.snapshot().status == "finished"
    assert libc.trims == [0]
    starter.release.clear()  # the second run is held at its first batch until stopped
    starter.first_batch.clear()
    jobs.start(TINY)
    assert starter.first_batch.wait(WAIT)
    jobs.stop()
    assert jobs.join(WAIT) and jobs.snapshot().status == "stopped"
    assert libc.trims == [0, 0]


def test_the_server_limits_malloc_arenas_unless_the_user_chose(monkeypatch):
    libc = FakeGlibc()
    monkeypatch.setattr(jobs_module, "_GLIBC", libc)
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    jobs_module.job_manager.clear()
    try:
        jobs_module.job_manager()
    finally:
        jobs_module.job_manager.clear()
    assert libc.options == [(jobs_module.M_ARENA_MAX, jobs_module.ARENAS)]
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")  # glibc read it at start: leave it be
    jobs_module.limit_malloc_arenas()
    assert libc.options == [(jobs_module.M_ARENA_MAX, jobs_module.ARENAS)]


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc",
    reason="glibc only",
)
def test_glibc_is_found_on_glibc_systems():
    assert jobs_module._GLIBC is not None
    jobs_module.release_free_memory()  # the real call works
