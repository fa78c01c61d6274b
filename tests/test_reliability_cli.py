"""Reliability of the command line: hostile names and paths, a closed pipe, Ctrl-C at any
moment, a read-only data folder, a failed write after a finished run. Never a traceback:
one line on stderr and the documented exit status (``cli.EXIT_STATUS``).

Ctrl-C and the closed pipe run ``python -m fmnist_core`` in a real process through a small
launcher (``HOOKS`` below) that pauses it at an exact point (torch's import, the first data
file read, the first batch of epoch 2) until the test acts: no sleeps, no timing.
"""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from fmnist_core import cli, data, runs
from fmnist_core.config import TrainConfig
from fmnist_core.model import NotebookCNN
from fmnist_core.runs import RunRecorder, load_run
from fmnist_core.train import EpochEnd, RunEnd
from tests.conftest import REPO

SMALL = ["--train-subset", "100", "--batch-size", "100", "--lr", "0.1"]
LONG_NAME = "x" * 300  # over the 255 bytes a file name may have
PAUSED = "HOOK: paused"
# Runs ``python -m fmnist_core ARGS`` with one pause point, chosen by FMNIST_TEST_PAUSE:
# "import" (torch is being imported), "data" (the first IDX file is read) or "step:N" (before
# training step N). At the point it prints PAUSED on stderr and waits for a line on stdin.
HOOKS = """
import importlib, os, runpy, sys

sys.path.insert(0, os.getcwd())  # the repository, as for `python -m` run from there
def pause():
    print("HOOK: paused", file=sys.stderr, flush=True)
    sys.stdin.readline()

where = os.environ["FMNIST_TEST_PAUSE"]
if where == "import":
    class PauseOnTorch:
        def find_spec(self, name, path=None, target=None):
            if name == "torch":
                sys.meta_path.remove(self)
                pause()
            return None
    sys.meta_path.insert(0, PauseOnTorch())
elif where == "data":
    data = importlib.import_module("fmnist_core.data")
    read_idx = data.read_idx
    def paused_read_idx(*args, **kwargs):
        pause()
        return read_idx(*args, **kwargs)
    data.read_idx = paused_read_idx
else:
    train = importlib.import_module("fmnist_core.train")
    step, at, calls = train._step, int(where.split(":")[1]), []
    def paused_step(*args):
        calls.append(1)
        if len(calls) == at:
            pause()
        return step(*args)
    train._step = paused_step
runpy.run_module("fmnist_core", run_name="__main__", alter_sys=True)
"""


def _launch(tmp_path: Path, pause: str, *args: str, **popen) -> subprocess.Popen:
    launcher = tmp_path / "launch_paused.py"
    launcher.write_text(HOOKS)
    env = os.environ | {"FMNIST_TEST_PAUSE": pause, "FMNIST_OFFLINE": "1"}
    popen.setdefault("stdout", subprocess.PIPE)
    return subprocess.Popen(
        [sys.executable, str(launcher), *args], cwd=REPO, env=env,
        stdin=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen,
    )  # fmt: skip


def _wait_paused(proc: subprocess.Popen) -> list[str]:
    """stderr lines up to the pause marker (a blocking read: the process is then paused)."""
    lines = []
    for line in proc.stderr:
        if line.strip() == PAUSED:
            return lines
        lines.append(line)
    proc.wait(timeout=60)
    pytest.fail(f"the process ended (status {proc.returncode}) before its pause: {lines}")


def _finish(proc: subprocess.Popen) -> str:
    """The rest of stderr once the process has ended (resumed if it is still paused)."""
    try:
        if not proc.stdin.closed:
            proc.stdin.close()
        rest = proc.stderr.read()
        proc.wait(timeout=120)
    finally:
        proc.kill()
    return rest


# --- Ctrl-C -----------------------------------------------------------------------------


@pytest.mark.parametrize("pause", ["import", "data"])
def test_ctrl_c_before_training_exits_130_with_one_line_and_no_run(
    pause, tmp_path, tiny_data_dir, runs_dir
):
    proc = _launch(tmp_path, pause, "train", *SMALL, "--data-dir", str(tiny_data_dir),
                   "--runs-dir", str(runs_dir), stdout=subprocess.DEVNULL)  # fmt: skip
    before = _wait_paused(proc)
    proc.send_signal(signal.SIGINT)
    err = "".join(before) + _finish(proc)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and err.strip() == "interrupted by Ctrl-C; nothing was saved"
    assert list(runs_dir.iterdir()) == []  # no empty "stopped" run left behind


def test_ctrl_c_while_the_run_folder_is_made_leaves_no_run(tiny_env, runs_dir, monkeypatch, capsys):
    create = RunRecorder.create

    def interrupted_create(*args, **kwargs):
        signal.raise_signal(signal.SIGINT)  # Ctrl-C lands while the folder is being made
        return create(*args, **kwargs)

    monkeypatch.setattr(RunRecorder, "create", interrupted_create)
    assert cli.main(["train", *SMALL, "--epochs", "1"]) == 130
    assert "no run was saved" in capsys.readouterr().err
    assert list(runs_dir.iterdir()) == []


# --- a closed output --------------------------------------------------------------------


def test_closed_pipe_stops_the_run_cleanly_with_reason_output_closed(
    tmp_path, tiny_data_dir, runs_dir
):
    """``train --json | head -1``: the reader leaves after the first line."""
    proc = _launch(tmp_path, "step:2", "train", *SMALL, "--epochs", "3", "--json",
                   "--data-dir", str(tiny_data_dir), "--runs-dir", str(runs_dir))  # fmt: skip
    _wait_paused(proc)  # before epoch 2's only batch, epoch 1's line is out
    assert json.loads(proc.stdout.readline())["epoch"] == 1
    proc.stdout.close()  # what `head -1` does after its line
    err = _finish(proc)  # resumes it
    assert proc.returncode == 141, err
    assert "Traceback" not in err and "Exception ignored" not in err
    assert "output closed" in err
    (run,) = runs.list_runs(runs_dir)
    assert run.status == "stopped" and run.info["reason"] == "output closed"
    assert run.epochs == [1, 2]  # epoch 2 ended before its line failed; epoch 3 never ran
    assert not (runs_dir / runs.ACTIVE_FILE).exists()


# --- failed writes after a finished run -------------------------------------------------


def test_failed_active_json_write_keeps_the_summary_and_warns(tiny_env, runs_dir, capsys):
    (runs_dir / runs.ACTIVE_FILE).mkdir()  # os.replace onto it fails: IsADirectoryError
    (runs_dir / runs.ACTIVE_FILE / "keep").write_text("")
    code = cli.main(["train", *SMALL, "--epochs", "1", "--json"])
    out, err = capsys.readouterr()
    summary = json.loads(out.splitlines()[-1])
    assert code == 0  # the run is complete and saved (documented in EXIT_STATUS)
    assert summary["status"] == "finished" and "could not be made the active" in summary["warning"]
    assert err.startswith("warning: run ") and "active model" in err
    assert load_run(runs_dir / summary["run_id"]).status == "finished"


# --- names and paths --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["evaluate", LONG_NAME], "no run 'xxx"),
        (["export", LONG_NAME, "DEST"], "no run 'xxx"),
        (["runs", "--runs-dir", f"TMP/{LONG_NAME}"], "File name too long"),
        (["evaluate", "some-run", "--runs-dir", f"TMP/{LONG_NAME}"], "no run 'some-run'"),
        (["runs", "--runs-dir", "TMP/" + "/".join(["y" * 200] * 25)], "(5,"),  # > PATH_MAX
        (["train", *SMALL, "--epochs", "1", "--runs-dir", f"TMP/{LONG_NAME}"], "too long"),
    ],
)
def test_names_too_long_for_the_file_system_are_one_line_errors(
    argv, says, tiny_env, tmp_path, capsys
):
    argv = [a.replace("TMP", str(tmp_path)).replace("DEST", str(tmp_path / "d")) for a in argv]
    assert cli.main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and says in err


@pytest.mark.parametrize(
    "argv",
    [
        ["runs", "--runs-dir", ""],
        ["evaluate", "r", "--runs-dir", ""],
        ["export", "r", "dest", "--runs-dir", " "],
        ["export", "r", ""],
        ["train", "--runs-dir", ""],
        ["train", "--data-dir", ""],
    ],
)
def test_empty_folders_are_refused_not_replaced_by_the_default(argv, tiny_env, capsys):
    small = [*SMALL, "--epochs", "1"] if argv[0] == "train" else []  # tiny if ever accepted
    with pytest.raises(SystemExit) as exit_:
        cli.main([*argv, *small])
    assert exit_.value.code == 2
    assert "must name a folder" in capsys.readouterr().err


def test_train_subset_larger_than_the_dataset_is_refused(tiny_env, runs_dir, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["train", "--train-subset", "1000", "--epochs", "1"])
    assert exit_.value.code == 2
    assert "the dataset has only 600 training images" in capsys.readouterr().err
    assert list(runs_dir.iterdir()) == []


# --- evaluate and export agree ----------------------------------------------------------


def _recorded_run(runs_dir: Path, end: RunEnd | None) -> str:
    """A 2-epoch run folder (a tiny model, random predictions), ended by ``end``."""
    cfg = TrainConfig(epochs=3, conv1=2, conv2=4)
    events = [
        EpochEnd(
            e,
            3,
            1.0,
            1.0,
            1.0,
            0.5,
            1.0,
            float(e),
            torch.rand(200, 10),
            NotebookCNN(2, 4, 16).state_dict(),
        )  # fmt: skip
        for e in (1, 2)
    ]
    rec = RunRecorder.create(cfg, runs_dir)
    list(rec.record(iter([*events, *([end] if end else [])]), torch.arange(200) % 10))
    return rec.run_id


def test_epoch_0_is_refused_alike_by_evaluate_and_export(runs_dir, tmp_path, capsys):
    run_id = _recorded_run(runs_dir, RunEnd("finished", "", 2, 0.5, 2.0))
    messages = []
    for argv in (["evaluate", run_id], ["export", run_id, str(tmp_path / "out")]):
        with pytest.raises(SystemExit) as exit_:
            cli.main([*argv, "--epoch", "0", "--runs-dir", str(runs_dir)])
        assert exit_.value.code == 2
        messages.append(capsys.readouterr().err.splitlines()[-1].split(": error: ")[1])
    assert messages[0] == messages[1] == "argument --epoch: epochs are numbered from 1, got 0"
    assert not (tmp_path / "out").exists()
    for argv in (["evaluate", run_id], ["export", run_id, str(tmp_path / "out")]):
        assert cli.main([*argv, "--epoch", "3", "--runs-dir", str(runs_dir)]) == 1
        assert "has no epoch 3; it has [1, 2]" in capsys.readouterr().err


def _reaped_pid() -> int:
    """The pid of a process that has ended (and been reaped): a dead training's pid."""
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


@pytest.mark.parametrize(
    ("end", "status", "reason"),
    [
        (RunEnd("stopped", "stopped by the user", 2, 0.5, 2.0), "stopped", "stopped by the user"),
        (RunEnd("failed", "diverged at epoch 3", 2, 0.5, 2.0), "failed", "diverged at epoch 3"),
        (None, "interrupted", "its training process ended before the run finished"),
    ],
)
def test_export_keeps_the_status_and_reason_of_its_source(
    end, status, reason, runs_dir, tmp_path, capsys
):
    run_id = _recorded_run(runs_dir, end)
    if end is None:  # a run whose process died: "running" on disk, its pid gone
        info = json.loads((runs_dir / run_id / "status.json").read_text())
        (runs_dir / run_id / "status.json").write_text(json.dumps(info | {"pid": _reaped_pid()}))
    dest = tmp_path / "exported"
    assert cli.main(["export", run_id, str(dest), "--runs-dir", str(runs_dir)]) == 0
    exported = load_run(dest)
    assert (exported.status, exported.info["reason"]) == (status, reason)
    assert exported.epochs == [2] and status in capsys.readouterr().out


def test_export_refuses_a_run_still_training(runs_dir, tmp_path, capsys):
    run_id = _recorded_run(runs_dir, None)  # "running", and its pid (this test) is alive
    assert cli.main(["export", run_id, str(tmp_path / "out"), "--runs-dir", str(runs_dir)]) == 1
    assert "still training" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


# --- a read-only data folder --------------------------------------------------------------


def _gz_only_folder(tiny_data_dir: Path, folder: Path) -> Path:
    """``folder`` holds the four .gz files; ``folder/FashionMNIST`` is a plain file, so the
    unpack cannot write next to them (as on a read-only share, and it fails for root too)."""
    folder.mkdir()
    for name in data.FILES.values():
        raw = (data.raw_dir(tiny_data_dir) / name).read_bytes()
        (folder / f"{name}.gz").write_bytes(gzip.compress(raw))
    (folder / "FashionMNIST").write_text("not a folder")
    return folder


def test_gz_files_in_an_unwritable_folder_unpack_into_the_user_cache(
    tiny_data_dir, runs_dir, tmp_path, monkeypatch, capsys
):
    source = _gz_only_folder(tiny_data_dir, tmp_path / "share")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    argv = ["train", *SMALL, "--epochs", "1", "--json", "--data-dir", str(source)]
    assert cli.main([*argv, "--runs-dir", str(runs_dir)]) == 0, capsys.readouterr().err
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["status"] == "finished"
    unpacked = sorted(p.name for p in (tmp_path / "cache" / "fmnist").rglob("*-ubyte"))
    assert unpacked == sorted(data.FILES.values())
    assert sorted(p.name for p in source.iterdir()) == sorted(
        [f"{n}.gz" for n in data.FILES.values()] + ["FashionMNIST"]
    )  # nothing written into the source folder


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a read-only (0555) folder")
def test_gz_files_in_a_read_only_folder_unpack_into_the_user_cache(
    tiny_data_dir, tmp_path, monkeypatch
):
    source = _gz_only_folder(tiny_data_dir, tmp_path / "share")
    (source / "FashionMNIST").unlink()
    source.chmod(0o555)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    try:
        found, _ = data.locate(source)
    finally:
        source.chmod(0o755)
    assert found.is_relative_to(tmp_path / "cache" / "fmnist")


def test_nowhere_to_unpack_says_what_to_do(tiny_data_dir, runs_dir, tmp_path, monkeypatch, capsys):
    source = _gz_only_folder(tiny_data_dir, tmp_path / "share")
    (tmp_path / "cache").write_text("a file, not a folder")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    argv = ["train", *SMALL, "--epochs", "1", "--data-dir", str(source)]
    assert cli.main([*argv, "--runs-dir", str(runs_dir)]) == 1
    err = capsys.readouterr().err
    assert "cannot unpack the .gz files" in err and "--data-dir" in err
    assert "XDG_CACHE_HOME" in err and err.count("\n") == 1
    assert list(runs_dir.iterdir()) == []
