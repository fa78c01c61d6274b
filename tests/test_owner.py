"""A training started by the app stops when the app's server is gone (fmnist_core/owner.py).

The "server" here is a ``sleep`` process named as the owner; killing it is the server's end.
The trainings are real child processes (one, or a torchrun group of two), held by the gate,
so they are still running whatever the machine's speed when the owner goes.
"""

from __future__ import annotations

import os
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from fmnist_app.jobs import JobManager
from fmnist_core.config import TrainConfig
from fmnist_core.gate import ENV as GATE_ENV
from fmnist_core.gate import Gate
from fmnist_core.launch import children
from fmnist_core.owner import ENV, ORPHANED, Owner
from fmnist_core.record import Replay
from fmnist_core.runfiles import process_alive, process_start
from fmnist_core.runs import find_run
from tests.test_distributed import launch_held_group

WAIT = 300  # seconds: children import torch on a loaded 2-core machine


@pytest.fixture
def server() -> Iterator[subprocess.Popen]:
    """A stand-in for the app's server: a process that the test ends."""
    proc = subprocess.Popen(["sleep", "600"])
    yield proc
    proc.kill()
    proc.wait()


@pytest.fixture
def launched_by(server, monkeypatch) -> Owner:
    """launch.py names ``server`` as the owner of what it starts, as the app's server would be."""
    owner = Owner(server.pid, process_start(server.pid))
    monkeypatch.setattr(Owner, "this_process", classmethod(lambda cls: owner))
    return owner


def test_the_owner_travels_in_the_environment(monkeypatch, capsys):
    me = Owner.this_process()
    assert me.pid == os.getpid() and me.start and not me.gone()
    monkeypatch.setenv(ENV, me.env()[ENV])
    assert Owner.from_env() == me
    monkeypatch.delenv(ENV)
    assert Owner.from_env() is None  # the CLI in a terminal: nothing to watch
    monkeypatch.setenv(ENV, "streamlit")
    assert Owner.from_env() is None
    assert f"{ENV}='streamlit' is not <pid>:<start>" in capsys.readouterr().err


def test_an_owner_is_gone_when_exited_unreaped_or_replaced(server):
    owner = Owner(server.pid, process_start(server.pid))
    assert not owner.gone()
    assert Owner(server.pid, "1").gone()  # the same pid, another start: a reused pid
    server.kill()
    os.waitid(os.P_PID, server.pid, os.WEXITED | os.WNOWAIT)  # exited, not reaped: a zombie
    assert Path(f"/proc/{server.pid}").exists() and owner.gone()
    server.wait()
    assert owner.gone()


def test_watch_calls_once_when_the_owner_goes_and_stops_when_told(server):
    owner = Owner(server.pid, process_start(server.pid))
    calls: list[int] = []
    called = threading.Event()
    done = owner.watch(lambda: (calls.append(1), called.set()), poll_s=0.01)
    other = Owner.this_process().watch(lambda: calls.append(2), poll_s=0.01)
    assert not called.wait(0.1)  # polled ~10 times, the owner still there
    server.kill()  # not reaped: the watcher must see through the zombie
    assert called.wait(WAIT)
    other.set()
    done.set()
    assert calls == [1]


def test_a_child_training_stops_keeping_its_epoch_when_its_server_goes(
    launched_by, server, runs_dir, tiny_env, tmp_path, monkeypatch
):
    gate = Gate(tmp_path / "gate")
    monkeypatch.setenv(GATE_ENV, str(gate.folder))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    gate.hold("epoch", 1)
    jobs = JobManager(runs_dir, mode="process")
    jobs.start(TrainConfig(epochs=3, batch_size=100, lr=0.1, name="tiny"))
    try:
        gate.wait_held(WAIT)
        assert jobs.pause()  # paused too: no next batch would ever notice
        server.kill()
        assert jobs.join(WAIT)
    finally:
        jobs.stop()
        gate.release()
        jobs.join(WAIT)
    snap = jobs.snapshot()
    assert (snap.status, snap.reason) == ("stopped", ORPHANED)
    assert find_run(snap.run_id, runs_dir).epochs == [1]  # the finished epoch is kept


def test_a_torchrun_group_stops_when_its_server_goes(launched_by, server, runs_dir, tiny_env,
                                                      tmp_path, monkeypatch):  # fmt: skip
    job = launch_held_group(runs_dir, tmp_path, monkeypatch)
    try:
        environ = Path(f"/proc/{job.proc.pid}/environ").read_bytes().split(b"\0")
        assert f"{ENV}={launched_by.pid}:{launched_by.start}".encode() in environ
        ranks = children(job.proc.pid)
        server.kill()
        assert job.wait(WAIT) == 0, job.output_tail()
    finally:
        job.kill()
        job.wait()
    state = Replay(runs_dir / job.run_id()).read()
    assert (state.status, state.reason, state.world_size) == ("stopped", ORPHANED, 2)
    assert len(ranks) == 2 and not any(process_alive(pid, None) for pid in ranks)
