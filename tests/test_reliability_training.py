"""Reliability of training: divergence and NaNs end a run as failed (never the active model),
Stop during the very first batch leaves a clean stopped run, and out-of-range values through
the CLI are refused with their allowed range before anything is written."""

from __future__ import annotations

import importlib
import json
import math
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import torch

from fmnist_core import cli, runs
from fmnist_core.config import TrainConfig
from fmnist_core.data import Tensors, load_tensors
from fmnist_core.runs import active_run, load_run, scan_runs, start_run
from fmnist_core.train import BatchProgress, EpochEnd, RunEnd, train
from tests.conftest import REPO

train_mod = importlib.import_module("fmnist_core.train")

TINY = TrainConfig(epochs=1, batch_size=100, lr=0.1, name="tiny")
BOOM = TrainConfig(epochs=2, lr=1.0, optimizer="adam", batch_size=16, name="boom")


def _finish(cfg: TrainConfig, runs_dir: Path, data_dir: Path, stop=None) -> tuple[str, list]:
    rec, events = start_run(cfg, runs_dir, stop, data_dir)
    return rec.run_id, list(events)


@pytest.fixture
def earlier(tiny_data_dir: Path, runs_dir: Path) -> str:
    """A finished run made before the fault, marked active."""
    run_id, events = _finish(TINY, runs_dir, tiny_data_dir)
    assert events[-1].status == "finished"
    runs.set_active(run_id, runs_dir)
    return run_id


@pytest.mark.learns
def test_diverging_run_fails_with_reason_and_is_never_active(earlier, tiny_data_dir, runs_dir):
    run_id, events = _finish(BOOM, runs_dir, tiny_data_dir)
    end = events[-1]
    assert end.status == "failed" and "diverged at epoch" in end.reason
    run = load_run(runs_dir / run_id)
    assert run.status == "failed" and "lower the learning rate" in run.info["reason"]
    assert active_run(runs_dir).id == earlier
    (runs_dir / runs.ACTIVE_FILE).unlink()  # no explicit choice: still not the failed one
    assert active_run(runs_dir).id == earlier


@pytest.mark.learns
def test_cli_diverging_run_exits_nonzero_and_keeps_the_active_model(
    earlier, tiny_data_dir, runs_dir, capsys
):
    argv = ["train", "--optimizer", "adam", "--lr", "1", "--batch-size", "16", "--json"]
    code = cli.main([*argv, "--data-dir", str(tiny_data_dir), "--runs-dir", str(runs_dir)])
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert code == 1
    assert lines[-1]["status"] == "failed" and "lower the learning rate" in lines[-1]["reason"]
    assert json.loads((runs_dir / runs.ACTIVE_FILE).read_text())["run_id"] == earlier


@pytest.mark.learns
def test_nan_in_the_data_fails_the_run(tiny_data_dir):
    t = load_tensors(16, tiny_data_dir)
    poisoned = t.train_x.clone()
    poisoned[:] = float("nan")
    bad = Tensors(poisoned, t.train_y, t.test_x, t.test_y, t.source, t.image_size)
    events = list(train(TINY, bad))
    assert not [e for e in events if isinstance(e, EpochEnd)]
    assert events[-1].status == "failed" and "diverged at epoch 1, batch 1" in events[-1].reason


@pytest.mark.learns
def test_nan_weights_after_the_last_step_never_finish(tiny_data_dir, runs_dir, monkeypatch):
    """A finite loss whose update overflows the weights (the very last step): not 'finished'."""
    original = torch.optim.SGD.step
    calls = []

    def overflowing_step(self, *args, **kwargs):
        result = original(self, *args, **kwargs)
        calls.append(1)
        if len(calls) == 6:  # the last of 6 batches
            with torch.no_grad():
                for group in self.param_groups:
                    for p in group["params"]:
                        p.fill_(float("inf"))
        return result

    monkeypatch.setattr(torch.optim.SGD, "step", overflowing_step)
    run_id, events = _finish(TINY, runs_dir, tiny_data_dir)
    assert len(calls) == 6
    assert events[-1].status == "failed" and "lower the learning rate" in events[-1].reason
    assert all(math.isfinite(e.val_loss) for e in events if isinstance(e, EpochEnd))
    assert active_run(runs_dir) is None
    assert load_run(runs_dir / run_id).status == "failed"


@pytest.mark.learns
def test_stop_during_the_very_first_batch(tiny_data_dir, runs_dir, monkeypatch):
    stop = threading.Event()
    build = train_mod.build_model

    def build_and_stop_in_forward(cfg):
        model = build(cfg)
        model.register_forward_pre_hook(lambda *_: stop.set())  # Stop pressed mid-batch
        return model

    monkeypatch.setattr(train_mod, "build_model", build_and_stop_in_forward)
    run_id, events = _finish(TINY.replace(epochs=3), runs_dir, tiny_data_dir, stop)
    batches = [e for e in events if isinstance(e, BatchProgress)]
    assert [(b.epoch, b.batch) for b in batches] == [(1, 1)]
    assert events[-1] == RunEnd("stopped", "stopped by the user", 0, None, events[-1].train_s)
    found, warnings = scan_runs(runs_dir)
    assert warnings == [] and [r.id for r in found] == [run_id]
    assert found[0].status == "stopped" and found[0].history == []
    assert active_run(runs_dir) is None
    with pytest.raises(runs.RunError, match="no completed epoch"):
        found[0].load_model()


def test_stop_before_the_first_batch(tiny_data_dir):
    stop = threading.Event()
    stop.set()
    events = list(train(TINY, load_tensors(16, tiny_data_dir), stop))
    assert not [e for e in events if isinstance(e, BatchProgress)]
    assert events[-1].status == "stopped"


OUT_OF_RANGE = [
    (["--lr", "5"], "lr must be between 0.0001 and 1"),
    (["--lr", "nan"], "lr must be between 0.0001 and 1"),
    (["--epochs", "0"], "epochs must be between 1 and 30"),
    (["--batch-size", "4096"], "batch_size must be between 16 and 1024"),
    (["--momentum", "1.5"], "momentum must be between 0 and 0.99"),
    (["--train-subset", "50"], "train_subset must be between 100 and 60000 or 0 for all"),
    (["--conv1", "-3"], "conv1 must be between 1 and 128"),
    (["--optimizer", "rmsprop"], "choose from 'sgd', 'momentum', 'adam', 'adamw'"),
    (["--image-size", "20"], "choose from 16, 28"),
]


@pytest.mark.parametrize(("flags", "allowed"), OUT_OF_RANGE)
def test_cli_refuses_out_of_range_values_with_the_allowed_range(
    flags, allowed, runs_dir, tiny_data_dir, capsys
):
    argv = ["train", *flags, "--data-dir", str(tiny_data_dir), "--runs-dir", str(runs_dir)]
    with pytest.raises(SystemExit) as exit_:
        cli.main(argv)
    err = capsys.readouterr().err
    assert exit_.value.code == 2
    assert allowed in err and "Traceback" not in err
    assert list(runs_dir.iterdir()) == []  # refused before any run folder exists


def test_cli_out_of_range_in_a_real_process(runs_dir, tiny_data_dir):
    cmd = [sys.executable, "-m", "fmnist_core", "train", "--lr", "2", "--runs-dir", str(runs_dir)]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "lr must be between 0.0001 and 1" in proc.stderr and "got 2.0" in proc.stderr
    assert "Traceback" not in proc.stderr and list(runs_dir.iterdir()) == []
