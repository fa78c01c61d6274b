"""DistributedDataParallel under torchrun: 2 gloo processes on the CPU, tiny data.

The processes are real (``python -m torch.distributed.run``), so they train for real whatever
``FMNIST_TEST_PACE`` says (the pace patches only this test process). A run that must still be
going when the test acts is held with the gate (fmnist_core/gate.py), never by a slow config.
"""

from __future__ import annotations

import importlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from fmnist_core import cli, distributed, launch
from fmnist_core.config import preset
from fmnist_core.gate import ENV as GATE_ENV
from fmnist_core.gate import Gate
from fmnist_core.launch import children
from fmnist_core.record import Replay
from fmnist_core.runfiles import process_alive
from fmnist_core.runs import find_run, list_runs
from fmnist_core.sketchdraw import VERSIONS, DrawingStopped
from tests.conftest import REPO

# 600 tiny images in global batches of 60: 10 steps per epoch, 30 ms each.
FLAGS = ["--preset", "quick", "--train-subset", "600", "--batch-size", "60", "--epochs", "2",
         "--device", "cpu", "--json"]  # fmt: skip
train_module = importlib.import_module("fmnist_core.train")  # the package's `train` is the loop
TIMEOUT_S = 300  # two processes importing torch on a loaded 2-core machine


def torchrun(*args: str) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--standalone",
            "--nproc-per-node", "2", "-m", "fmnist_core", "train", *args]  # fmt: skip


def summary(stdout: str) -> tuple[list[dict], dict]:
    lines = [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]
    return lines[:-1], lines[-1]


def test_from_env_outside_torchrun_is_one_process(monkeypatch):
    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    assert distributed.from_env() is None
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    assert distributed.from_env() == distributed.Dist(rank=1, world_size=2, local_rank=1)
    monkeypatch.setenv("RANK", "2")
    with pytest.raises(distributed.DistError, match="outside 0..1"):
        distributed.from_env()
    monkeypatch.setenv("WORLD_SIZE", "two")
    with pytest.raises(distributed.DistError, match="whole numbers"):
        distributed.from_env()


def test_end_process_flushes_and_exits_with_the_code():
    # what a torchrun rank ends with (__main__): os._exit, so a pipe's buffer must be flushed
    code = ("import sys; from fmnist_core import distributed; assert not distributed.joined(); "
            "print('last line', end=''); sys.stderr.write('why'); "
            "distributed.end_process(3)")  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}  # buffered, as usual
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO,
                          env=env, timeout=TIMEOUT_S)  # fmt: skip
    assert (proc.returncode, proc.stdout, proc.stderr) == (3, "last line", "why")


def test_two_processes_make_one_run_with_single_process_numbers(tiny_env, runs_dir):
    env = os.environ | {"OMP_NUM_THREADS": "1"}
    ddp = subprocess.run(torchrun(*FLAGS), capture_output=True, text=True, cwd=REPO, env=env,
                         timeout=TIMEOUT_S)  # fmt: skip
    assert ddp.returncode == 0, ddp.stderr
    rows, end = summary(ddp.stdout)  # rank 0 alone prints: one summary, 2 epoch rows
    assert end["status"] == "finished" and len(rows) == 2
    single = subprocess.run([sys.executable, "-m", "fmnist_core", "train", *FLAGS],
                            capture_output=True, text=True, cwd=REPO, env=env,
                            timeout=TIMEOUT_S)  # fmt: skip
    assert single.returncode == 0, single.stderr
    single_rows, _ = summary(single.stdout)
    runs = list_runs(runs_dir)
    assert len(runs) == 2  # one folder for the 2 processes, one for the single process
    run = find_run(end["run_id"], runs_dir)
    assert (run.info["world_size"], run.info["backend"]) == (2, "gloo")
    assert run.history == rows
    # The same global batches and the same gradients (up to float summation order).
    for a, b in zip(rows, single_rows, strict=True):
        assert a["val_acc"] == pytest.approx(b["val_acc"], abs=0.01)
        assert a["val_loss"] == pytest.approx(b["val_loss"], rel=1e-3)
        assert a["cost"] == pytest.approx(b["cost"], rel=1e-3)
    again = subprocess.run(torchrun(*FLAGS), capture_output=True, text=True, cwd=REPO, env=env,
                           timeout=TIMEOUT_S)  # fmt: skip
    assert again.returncode == 0, again.stderr
    numbers = ("cost", "train_loss", "val_loss", "val_acc")  # same seed, same world size:
    assert [[r[k] for k in numbers] for r in summary(again.stdout)[0]] == [
        [r[k] for k in numbers] for r in rows
    ]  # the same numbers, exactly


def _rank_of(pid: int) -> int | None:
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return None
    ranks = [v[5:] for v in environ if v.startswith(b"RANK=")]
    return int(ranks[0]) if ranks else None


def test_a_stop_on_rank_1_stops_both_before_the_same_batch(tiny_env, runs_dir, tmp_path):
    gate = Gate(tmp_path / "gate")
    gate.hold("step", 1)  # rank 0 (and so rank 1, at the next all-reduce) waits after step 1
    run_id_file = tmp_path / "run_id"
    env = os.environ | {GATE_ENV: str(gate.folder), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(torchrun(*FLAGS, "--run-id-file", str(run_id_file)),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
                            env=env, start_new_session=True)  # fmt: skip
    try:
        gate.wait_held(TIMEOUT_S)
        ranks = {_rank_of(pid): pid for pid in children(proc.pid)}
        assert set(ranks) == {0, 1}, ranks
        os.kill(ranks[1], signal.SIGINT)  # Ctrl-C on rank 1 only
        gate.release()
        out, err = proc.communicate(timeout=TIMEOUT_S)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 0, err  # both ranks ended cleanly
    _, end = summary(out)
    assert end["status"] == "stopped" and end["reason"] == "stopped by the user"
    assert run_id_file.read_text() == end["run_id"]
    state = Replay(runs_dir / end["run_id"]).read()
    assert state.status == "stopped" and state.epoch == 1 and state.batch < state.batches
    assert state.world_size == 2 and state.rows == ()


def test_a_dead_rank_is_reported(tiny_env, runs_dir, tmp_path):
    gate = Gate(tmp_path / "gate")
    gate.hold("step", 1)
    env = os.environ | {GATE_ENV: str(gate.folder), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(torchrun(*FLAGS), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=REPO, env=env, start_new_session=True)  # fmt: skip
    try:
        gate.wait_held(TIMEOUT_S)
        ranks = {_rank_of(pid): pid for pid in children(proc.pid)}
        os.kill(ranks[1], signal.SIGKILL)
        deadline = time.monotonic() + TIMEOUT_S
        while proc.poll() is None and time.monotonic() < deadline:
            try:  # rank 0 stays held until the group is torn down; let it go on
                gate.release()
                proc.wait(0.2)
            except subprocess.TimeoutExpired:
                pass
        _, err = proc.communicate(timeout=TIMEOUT_S)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode != 0
    assert "SIGKILL" in err or "Signal 9" in err, err[-2000:]
    (run,) = list_runs(runs_dir)
    assert run.status in ("failed", "interrupted")  # never "running", never "finished"


@pytest.mark.parametrize("rank", [0, 1])
@pytest.mark.parametrize("stopped_on_0", [False, True])
def test_local_rank_0_alone_makes_the_drawings_and_the_others_read_its_cache(monkeypatch, rank,
                                                                        stopped_on_0):  # fmt: skip
    calls: list[str] = []
    x, y = torch.zeros(6, 1, 16, 16), torch.zeros(6, dtype=torch.long)

    def drawings_of(x, y, stop=None):
        calls.append("draw")
        if stopped_on_0:  # only rank 0 gets this far when it is stopped while drawing
            raise DrawingStopped("stopped while making the drawings")
        return torch.zeros(2, len(x), 28, 28, dtype=torch.uint8)

    def all_sum(values, device):  # the group's sum: rank 0's stop flag, whichever rank asks
        calls.append("all_sum")
        return [1.0 if stopped_on_0 else 0.0]

    monkeypatch.setattr(train_module, "drawings_of", drawings_of)
    monkeypatch.setattr(distributed, "all_sum", all_sum)
    ctx = distributed.Dist(rank=rank, world_size=2, local_rank=rank)
    if stopped_on_0:
        with pytest.raises(DrawingStopped):  # every rank ends as stopped, none draws after
            train_module._drawings(x, y, ctx, torch.device("cpu"), None)
        assert calls == (["draw", "all_sum"] if rank == 0 else ["all_sum"])
    else:
        drawn = train_module._drawings(x, y, ctx, torch.device("cpu"), None)
        assert drawn.shape == (2, 6, 28, 28)
        # local rank 0 draws (or reads the cache) first; the others only once it is done
        assert calls == (["draw", "all_sum"] if rank == 0 else ["all_sum", "draw"])


def test_two_processes_train_the_sketch_preset_with_one_set_of_drawings(tiny_env, tmp_path):
    cache = tmp_path / "cache"
    env = os.environ | {"OMP_NUM_THREADS": "1", "FMNIST_CACHE_DIR": str(cache)}
    ddp = subprocess.run(torchrun(*FLAGS[:-3], "--epochs", "1", "--sketch-augment", "--json"),
                         capture_output=True, text=True, cwd=REPO, env=env,
                         timeout=TIMEOUT_S)  # fmt: skip
    assert ddp.returncode == 0, ddp.stderr
    rows, end = summary(ddp.stdout)
    assert end["status"] == "finished" and len(rows) == 1
    assert len(list(cache.glob("*.npy"))) == VERSIONS  # one file per version, made by local rank 0


@pytest.mark.parametrize(
    "cfg",
    [
        preset("seed"),
        preset("strong").replace(lr=0.123456789, augment=False, epochs=2),
        preset("quick").replace(name="quick+", optimizer="adamw", amp=True, train_subset=600),
        preset("seed").replace(name="seed+", sketch_augment=True),  # a dashed switch flag
        preset("sketch").replace(name="sketch+", sketch_augment=False),
    ],
)
def test_train_args_rebuild_the_config(cfg):
    args = cli.build_parser().parse_args(["train", *launch.train_args(cfg)])
    assert cli.config_from_args(args) == cfg


def launch_held_group(runs_dir: Path, tmp_path: Path, monkeypatch) -> launch.ProcessJob:
    """A 2-process torchrun group started by launch.py, held by the gate after its first
    step (so still running whatever the machine's speed); the caller kills it at the end."""
    gate = Gate(tmp_path / "gate")
    gate.hold("step", 1)
    monkeypatch.setenv(GATE_ENV, str(gate.folder))
    cfg = preset("quick").replace(train_subset=600, batch_size=60, epochs=2, device="cpu")
    job = launch.launch_torchrun(cfg, 2, runs_dir)
    try:
        gate.wait_held(TIMEOUT_S)
    except BaseException:
        job.kill()
        job.cleanup()
        raise
    return job


def test_launched_group_stops_on_one_signal_to_the_group(tiny_env, runs_dir, tmp_path,
                                                         monkeypatch):  # fmt: skip
    job = launch_held_group(runs_dir, tmp_path, monkeypatch)
    try:
        run_id = job.run_id()
        assert run_id is not None and job.poll() is None
        ranks = children(job.proc.pid)
        assert len(ranks) == 2
        job.stop()  # what the app's Stop does: SIGINT to torchrun, which passes it on
        job.wait(TIMEOUT_S)
        state = Replay(runs_dir / run_id).read()
        assert (state.status, state.reason) == ("stopped", "stopped by the user"), job.output_tail()
        assert state.world_size == 2
        with pytest.raises(ProcessLookupError):  # nothing of the group is left
            os.killpg(job.proc.pid, 0)
        assert not any(process_alive(pid, None) for pid in ranks)
    finally:
        job.kill()
        job.cleanup()


def test_kill_ends_torchrun_and_every_rank(tiny_env, runs_dir, tmp_path, monkeypatch):
    job = launch_held_group(runs_dir, tmp_path, monkeypatch)  # held for good: only the kill
    try:
        ranks = children(job.proc.pid)
        assert len(ranks) == 2
        job.kill()
        assert job.wait(TIMEOUT_S) == -signal.SIGKILL
        deadline = time.monotonic() + TIMEOUT_S  # a SIGKILL takes effect a moment later
        while any(process_alive(pid, None) for pid in ranks):
            assert time.monotonic() < deadline, "a rank outlived the kill"
            time.sleep(0.05)
    finally:
        job.kill()
        job.cleanup()
