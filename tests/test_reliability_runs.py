"""Reliability of runs on disk: kill -9, foreign pickles, broken run folders, failed writes
and two trainings at once never lose a finished run, never run foreign code, and always say
what went wrong."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from fmnist_core import atomic, cli, record, runs
from fmnist_core.config import TrainConfig
from fmnist_core.record import Replay
from fmnist_core.runs import RunError, active_run, load_run, scan_runs
from fmnist_core.session import start_run
from tests.conftest import REPO, write_tiny_dataset

TINY = TrainConfig(epochs=1, batch_size=100, lr=0.1, name="tiny")


def _train(runs_dir: Path, data_dir: Path, cfg: TrainConfig = TINY) -> tuple[str, list]:
    rec, events = start_run(cfg, runs_dir, None, data_dir)
    return rec.run_id, list(events)


@pytest.fixture
def earlier(tiny_data_dir: Path, runs_dir: Path) -> str:
    run_id, events = _train(runs_dir, tiny_data_dir)
    assert events[-1].status == "finished"
    runs.set_active(run_id, runs_dir)
    return run_id


def _digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def _leftover_temp_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.name.endswith(".tmp")]


def test_a_scan_removes_temp_files_only_from_runs_whose_writer_died(earlier, runs_dir):
    dead, live = runs_dir / earlier, runs_dir / f"{earlier}-live"
    shutil.copytree(dead, live)
    before = _digest(dead)
    for folder, pid in ((dead, 2**22 + 1), (live, os.getpid())):  # 2**22+1: above pid_max
        info = json.loads((folder / "status.json").read_text())
        info.update(status="running", pid=pid, proc_start=None)
        (folder / "status.json").write_text(json.dumps(info))
        (folder / ".epoch_002.pt.abc123.tmp").write_bytes(b"half a write")
    found = {run.id: run.status for run in runs.list_runs(runs_dir)}
    assert found == {earlier: "interrupted", live.name: "running"}
    assert _leftover_temp_files(dead) == [] and len(_leftover_temp_files(live)) == 1
    assert {k: v for k, v in _digest(dead).items() if k != "status.json"} == {
        k: v for k, v in before.items() if k != "status.json"
    }  # nothing else in the folder touched


def _python(*args: str) -> list[str]:
    return [sys.executable, "-m", "fmnist_core", *args]


def _wait_for(condition, deadline_s: float, what: str, proc=None) -> None:
    deadline = time.monotonic() + deadline_s
    while not condition():
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"process ended ({proc.returncode}) before {what}")
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


def _completed_epochs(runs_dir: Path, exclude: str) -> int:
    for folder in runs_dir.iterdir():
        if folder.is_dir() and folder.name != exclude:
            return len(Replay(folder).read().rows)
    return 0


def test_kill_9_during_training_keeps_earlier_runs_and_lists_the_killed_one_interrupted(
    earlier, runs_dir, tmp_path, capsys
):
    before = _digest(runs_dir / earlier)
    slow_data = write_tiny_dataset(tmp_path / "slow-data", n_train=1500, n_test=200)
    cmd = _python("train", "--epochs", "30", "--image-size", "28", "--batch-size", "16",
                  "--data-dir", str(slow_data), "--runs-dir", str(runs_dir), "--json")  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _wait_for(lambda: _completed_epochs(runs_dir, earlier) >= 1, 180, "epoch 1", proc)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    found, warnings = scan_runs(runs_dir)
    assert warnings == []
    killed = next(r for r in found if r.id != earlier)
    assert killed.status == "interrupted" and len(killed.history) >= 1
    killed.load_model()  # every completed epoch is whole and loadable
    assert killed.probs().shape == (200, 10)
    assert _digest(runs_dir / earlier) == before
    assert active_run(runs_dir).id == earlier
    assert cli.main(["runs", "--runs-dir", str(runs_dir)]) == 0
    listing = capsys.readouterr().out
    assert any(killed.id in line and "interrupted" in line for line in listing.splitlines())
    assert any(earlier in line and "finished" in line for line in listing.splitlines())


class Evil:
    """Unpickling this runs code: exactly what a plain torch.load would do with it."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"open({str(self.marker)!r}, 'w').write('pwned')",))


def test_malicious_pickle_in_a_run_folder_is_refused_and_never_runs(
    earlier, runs_dir, tmp_path, capsys
):
    marker = tmp_path / "pwned"
    control = tmp_path / "control.pt"
    torch.save({"x": Evil(tmp_path / "control-ran")}, control)
    torch.load(control, weights_only=False)  # the payload is live: an unsafe load runs it
    assert (tmp_path / "control-ran").exists()
    folder = runs_dir / earlier
    for name in ("epoch_001.pt", "probs_001.pt", "labels.pt", "model.pt"):
        torch.save({"weights": Evil(marker)}, folder / name)
    run = load_run(folder)
    for load in (run.load_model, run.probs, run.labels):
        with pytest.raises(RunError, match="refused to load"):
            load()
    assert cli.main(["evaluate", earlier, "--runs-dir", str(runs_dir)]) == 1
    err = capsys.readouterr().err
    assert "refused to load" in err and "Traceback" not in err
    assert not marker.exists()


def _write(path: Path, text: str) -> None:
    path.write_text(text)


def _append(path: Path, line: str) -> None:
    with path.open("a") as log:
        log.write(line + "\n")


def _edit(**changes):
    """A harm that rewrites some fields of a JSON object file."""

    def harm(path: Path) -> None:
        _write(path, json.dumps({**json.loads(path.read_text()), **changes}))

    return harm


# damage -> (file, what to do to it): each leaves a run folder that cannot be used
DAMAGE = {
    "config missing": ("config.json", Path.unlink),
    "config not json": ("config.json", lambda p: _write(p, "{not json")),
    "config a list": ("config.json", lambda p: _write(p, "[]")),
    "config out of range": ("config.json", lambda p: _write(p, '{"lr": 99}')),
    "status empty": ("status.json", lambda p: _write(p, "")),
    "log epoch not a number": (
        "events.jsonl",
        lambda p: _append(p, '{"type": "epoch", "epoch": "x"}'),
    ),
    "weights missing": ("epoch_001.pt", Path.unlink),
    "predictions missing": ("probs_001.pt", Path.unlink),
    "labels missing": ("labels.pt", Path.unlink),
    # nonsense that used to crash the listing (OverflowError, RecursionError) or show a run
    # as "running" forever
    "pid too large": ("status.json", _edit(status="running", pid=10**30)),
    "pid zero": ("status.json", _edit(status="running", pid=0)),
    "pid negative": ("status.json", _edit(status="running", pid=-1)),
    "pid not a number": ("status.json", _edit(status="running", pid="123")),
    "pid a bool": ("status.json", _edit(status="running", pid=True)),
    "running without host": ("status.json", _edit(status="running", host=None)),
    "host not text": ("status.json", _edit(host=["a"])),
    "proc_start not digits": ("status.json", _edit(proc_start="x; rm")),
    "status unknown": ("status.json", _edit(status="pwned")),
    "status not a dict": ("status.json", lambda p: _write(p, "[]")),
    "reason not text": ("status.json", _edit(reason={"a": 1})),
    "final_val_acc NaN": (
        "status.json",
        lambda p: _write(p, '{"status": "finished", "final_val_acc": NaN}'),
    ),
    "config deeply nested": ("config.json", lambda p: _write(p, "[" * 100_000)),
    "config too large": ("config.json", lambda p: _write(p, '{"x": "' + "a" * 100_000 + '"}')),
    "status huge int": ("status.json", lambda p: _write(p, '{"pid": ' + "9" * 5000 + "}")),
    "config a folder": ("config.json", lambda p: (p.unlink(), p.mkdir())),
    "log accuracy NaN": (
        "events.jsonl",
        lambda p: _write(p, p.read_text().replace('"val_acc":', '"val_acc":NaN,"x":')),
    ),
    "log epoch repeated": ("events.jsonl", lambda p: _write(p, p.read_text() * 2)),
    "log not a regular file": ("events.jsonl", lambda p: (p.unlink(), p.mkdir())),
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_broken_run_folder_is_skipped_with_a_warning_and_the_rest_work(
    damage, earlier, tiny_data_dir, runs_dir, capsys
):
    broken, _ = _train(runs_dir, tiny_data_dir)
    runs.set_active(broken, runs_dir)
    name, harm = DAMAGE[damage]
    harm(runs_dir / broken / name)
    found, warnings = scan_runs(runs_dir)
    assert [r.id for r in found] == [earlier]
    assert len(warnings) == 1 and broken in warnings[0] and name in warnings[0]
    assert active_run(runs_dir).id == earlier  # the marked one is broken: fall back
    assert [r.label() for r in found]  # the sidebar's text: no exception
    found[0].load_model()
    assert cli.main(["runs", "--runs-dir", str(runs_dir)]) == 0
    out = capsys.readouterr()
    assert earlier in out.out and broken in out.err and "Traceback" not in out.err


@pytest.mark.parametrize("content", [b"", b"garbage" * 50, "cut"])
def test_corrupt_weights_are_refused_naming_the_file(content, earlier, runs_dir):
    path = runs_dir / earlier / "epoch_001.pt"
    path.write_bytes(path.read_bytes()[:200] if content == "cut" else content)
    with pytest.raises(RunError, match="epoch_001.pt"):
        load_run(runs_dir / earlier).load_model()


@pytest.mark.parametrize("wrong", [torch.zeros(5, 10), torch.zeros(200, 3), {"p": torch.zeros(3)}])
def test_predictions_of_the_wrong_shape_are_refused(wrong, earlier, runs_dir, capsys):
    torch.save(wrong, runs_dir / earlier / "probs_001.pt")
    with pytest.raises(RunError, match="probs_001.pt does not hold 200 x 10 test predictions"):
        load_run(runs_dir / earlier).probs()
    assert cli.main(["evaluate", earlier, "--runs-dir", str(runs_dir)]) == 1
    assert "probs_001.pt" in capsys.readouterr().err


def test_labels_of_the_wrong_kind_are_refused(earlier, runs_dir):
    torch.save({"not": torch.zeros(3)}, runs_dir / earlier / "labels.pt")
    with pytest.raises(RunError, match="labels.pt"):
        load_run(runs_dir / earlier).labels()


def _full_disk_after(monkeypatch: pytest.MonkeyPatch, first_failure: str) -> None:
    """Every atomic write fails with ENOSPC from the one named ``first_failure`` on."""
    real_replace = os.replace
    full = []

    def replace(src, dst, *args, **kwargs):
        if Path(dst).name == first_failure or full:
            full.append(dst)
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(atomic.os, "replace", replace)


def test_full_disk_ends_the_run_failed_and_damages_nothing(
    earlier, tiny_data_dir, runs_dir, monkeypatch
):
    before = _digest(runs_dir / earlier)
    _full_disk_after(monkeypatch, "epoch_002.pt")
    run_id, events = _train(runs_dir, tiny_data_dir, TINY.replace(epochs=3))
    end = events[-1]
    assert end.status == "failed" and end.epochs_done == 1
    assert "No space left on device" in end.reason and "disk full or read-only" in end.reason
    monkeypatch.undo()
    assert _digest(runs_dir / earlier) == before
    assert _leftover_temp_files(runs_dir) == []
    run = load_run(runs_dir / run_id)
    assert run.epochs == [1]
    run.load_model()  # the epoch saved before the disk filled up is intact
    assert active_run(runs_dir).id == earlier


def test_when_only_big_files_fail_the_status_records_the_reason(
    earlier, tiny_data_dir, runs_dir, monkeypatch
):
    real_replace = os.replace

    def replace(src, dst, *args, **kwargs):
        if Path(dst).suffix == ".pt":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(atomic.os, "replace", replace)
    run_id, events = _train(runs_dir, tiny_data_dir)
    assert events[-1].status == "failed"
    run = load_run(runs_dir / run_id)
    assert run.status == "failed" and "No space left on device" in run.info["reason"]
    assert _leftover_temp_files(runs_dir) == []


def test_cli_full_disk_is_a_clear_message(earlier, tiny_data_dir, runs_dir, monkeypatch, capsys):
    _full_disk_after(monkeypatch, "epoch_001.pt")
    argv = ["train", "--data-dir", str(tiny_data_dir), "--runs-dir", str(runs_dir)]
    assert cli.main([*argv, "--epochs", "1"]) == 1
    out = capsys.readouterr()
    text = out.out + out.err
    assert "No space left on device" in text and "Traceback" not in text


def test_read_only_runs_dir_refuses_before_training_and_leaves_no_folder(
    earlier, tiny_data_dir, runs_dir, monkeypatch, capsys
):
    def read_only(*_args, **_kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    monkeypatch.setattr(atomic.os, "replace", read_only)
    with pytest.raises(RunError, match="Read-only file system"):
        start_run(TINY, runs_dir, None, tiny_data_dir)
    argv = ["train", "--data-dir", str(tiny_data_dir), "--runs-dir", str(runs_dir)]
    assert cli.main(argv) == 1
    assert "Read-only file system" in capsys.readouterr().err
    monkeypatch.undo()
    assert sorted(p.name for p in runs_dir.iterdir()) == sorted([earlier, runs.ACTIVE_FILE])
    assert scan_runs(runs_dir) == ([load_run(runs_dir / earlier)], [])


@pytest.mark.parametrize("fault", [OSError(errno.ENOSPC, "full"), KeyboardInterrupt()])
def test_an_interrupted_atomic_write_leaves_the_old_file_and_no_partial_one(
    fault, tmp_path, monkeypatch
):
    target = tmp_path / "status.json"
    atomic.atomic_write_json(target, {"status": "finished"})

    def broken_fsync(_fd):
        raise fault

    monkeypatch.setattr(atomic.os, "fsync", broken_fsync)
    with pytest.raises(type(fault)):
        atomic.atomic_write_json(target, {"status": "running", "pad": "x" * 100_000})
    assert json.loads(target.read_text()) == {"status": "finished"}
    assert [p.name for p in tmp_path.iterdir()] == ["status.json"]


def test_two_processes_training_into_one_runs_dir_never_collide(tiny_data_dir, runs_dir):
    cmd = _python("train", "--epochs", "2", "--data-dir", str(tiny_data_dir),
                  "--runs-dir", str(runs_dir), "--json")  # fmt: skip
    procs = [subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, text=True) for _ in "ab"]
    outputs = [proc.communicate(timeout=300)[0] for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0]
    ids = [json.loads(out.splitlines()[-1])["run_id"] for out in outputs]
    assert len(set(ids)) == 2
    found, warnings = scan_runs(runs_dir)
    assert warnings == [] and sorted(r.id for r in found) == sorted(ids)
    for run in found:
        assert run.status == "finished" and run.epochs == [1, 2]
        assert json.loads((run.path / "status.json").read_text())["pid"] in [p.pid for p in procs]
        run.load_model()
    assert active_run(runs_dir).id in ids


def test_same_second_same_name_still_gets_its_own_folder(runs_dir, monkeypatch):
    tokens = iter(["beef", "beef", "f00d"])
    monkeypatch.setattr(record.secrets, "token_hex", lambda _n: next(tokens))
    monkeypatch.setattr(record.time, "strftime", lambda _fmt: "20260101-000000")
    first = runs.RunRecorder.create(TINY, runs_dir)
    second = runs.RunRecorder.create(TINY.replace(lr=0.05), runs_dir)
    assert first.path != second.path and second.run_id.endswith("f00d")
    assert json.loads((first.path / "config.json").read_text())["lr"] == 0.1
