"""Sweeps: the --param syntax, one trial's run (Ray-free), and one real 4-trial Ray Tune sweep.

Ray takes ~10-30 s to start here, so one test starts it; the rest runs without Ray.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from fmnist_core import cli, sweep
from fmnist_core.config import preset
from fmnist_core.record import Replay
from fmnist_core.runs import find_run
from tests.conftest import REPO

BASE = preset("quick").replace(train_subset=600, epochs=2, batch_size=60, device="cpu")


@pytest.mark.parametrize(
    ("text", "kind", "values"),
    [
        ("lr=loguniform:1e-3:0.3", "loguniform", (1e-3, 0.3)),
        ("momentum=uniform:0.5:0.9", "uniform", (0.5, 0.9)),
        ("conv1=randint:8:32", "randint", (8, 32)),
        ("batch_size=choice:64,128,256", "choice", (64, 128, 256)),
        ("optimizer=choice:sgd,adam", "choice", ("sgd", "adam")),
        ("augment=choice:true,false", "choice", (True, False)),
    ],
)
def test_params_parse_to_typed_values(text, kind, values):
    param = sweep.parse_param(text, BASE)
    assert (param.kind, param.values) == (kind, values)
    assert [type(v) for v in param.values] == [type(v) for v in values]


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("lr", "use --param NAME=KIND:ARGS"),
        ("lr=gauss:1:2", "use --param NAME=KIND:ARGS"),
        ("lr=loguniform:0.3", "takes LOW:HIGH"),
        ("lr=loguniform:0.3:0.001", "must be below HIGH"),
        ("lr=uniform:0.1:5", "lr must be between 0.0001 and 1"),
        ("batch_size=uniform:16:64", "use randint:LOW:HIGH or choice"),
        ("batch_size=choice:64,2", "batch_size must be between 16 and 1024"),
        ("epochs=choice:1.5", "whole number"),
        ("optimizer=choice:sgd,rmsprop", "optimizer must be one of"),
        ("seed=choice:1,2", "not a field that can be swept"),
        ("colour=choice:red", "not a field that can be swept"),
    ],
)
def test_bad_params_say_what_is_allowed(text, needle):
    with pytest.raises(sweep.SweepError, match=needle):
        sweep.parse_param(text, BASE)


def test_a_field_given_twice_is_refused():
    with pytest.raises(sweep.SweepError, match="more than once"):
        sweep.parse_params(["lr=choice:0.1", "lr=choice:0.2"], BASE)


def test_bad_param_on_the_command_line_exits_2(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["sweep", "--param", "lr=loguniform:0:1"])
    assert exit_info.value.code == 2
    assert "loguniform needs LOW > 0" in capsys.readouterr().err


def test_without_ray_sweep_says_how_to_install_it(tiny_env, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    code = cli.main(["sweep", "--preset", "quick", "--param", "lr=loguniform:1e-3:0.3"])
    assert code == 1
    assert "pip install -r requirements-ray.txt" in capsys.readouterr().err


def _settings(runs_dir, data_dir, scheduler="asha", **drawn):
    return {"base": BASE.to_dict(), "swept": list(drawn), "sweep_id": "sweep-test-1",
            "runs_dir": str(runs_dir), "data_dir": str(data_dir), "trial": "t0",
            "scheduler": scheduler, **drawn}  # fmt: skip


def test_a_trial_is_a_tagged_run_reporting_each_epoch(tiny_env, runs_dir):
    trial = sweep.Trial(_settings(runs_dir, tiny_env, lr=0.05))
    first = trial.step()
    assert (first["epoch"], first["done"], first["status"]) == (1, False, "running")
    last = trial.step()
    assert (last["epoch"], last["done"], last["status"]) == (2, True, "finished")
    trial.stop()  # Tune's cleanup after a finished trial changes nothing
    run = find_run(trial.run_id, runs_dir)
    assert run.status == "finished" and run.config.lr == 0.05 and len(run.history) == 2
    assert run.info["sweep_id"] == "sweep-test-1" and run.info["sweep_params"] == {"lr": 0.05}
    assert last["val_acc"] == run.final_val_acc


@pytest.mark.parametrize(
    ("scheduler", "reason"), [("asha", sweep.STOPPED_EARLY), ("none", sweep.SWEEP_ENDED)]
)
def test_a_trial_stopped_by_tune_says_why(tiny_env, runs_dir, scheduler, reason):
    trial = sweep.Trial(_settings(runs_dir, tiny_env, scheduler, batch_size=100))
    assert trial.step()["epoch"] == 1
    trial.stop()  # what Tune's cleanup does when ASHA gives up on the trial (or the sweep ends)
    state = Replay(runs_dir / trial.run_id).read()
    assert (state.status, state.reason) == ("stopped", reason)
    assert len(state.rows) == 1 and state.sweep_id == "sweep-test-1"


def test_four_trial_sweep_on_ray_gives_four_tagged_runs(tiny_env, runs_dir):
    if not os.environ.get("CI"):
        pytest.importorskip("ray", reason="Ray not installed: pip install -r requirements-ray.txt")
    args = ["sweep", "--preset", "quick", "--train-subset", "600", "--epochs", "2",
            "--batch-size", "60", "--device", "cpu", "--param", "lr=loguniform:1e-3:0.3",
            "--param", "batch_size=choice:30,60", "--trials", "4", "--cpus", "2",
            "--scheduler", "asha", "--json"]  # fmt: skip
    proc = subprocess.run([sys.executable, "-m", "fmnist_core", *args], capture_output=True,
                          text=True, cwd=REPO, timeout=900)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [json.loads(line) for line in proc.stdout.splitlines()]  # stdout: JSON only
    trials, summary = lines[:-1], lines[-1]
    assert summary["trials"] == 4 and len(trials) == 4
    listing = subprocess.run([sys.executable, "-m", "fmnist_core", "runs", "--json"],
                             capture_output=True, text=True, cwd=REPO, timeout=300)  # fmt: skip
    runs = [json.loads(line) for line in listing.stdout.splitlines()]
    assert len(runs) == 4
    assert {r["sweep_id"] for r in runs} == {summary["sweep_id"]}
    assert {r["run_id"] for r in runs} == {t["run_id"] for t in trials}
    for t in trials:
        run = find_run(t["run_id"], runs_dir)
        assert t["params"]["batch_size"] in (30, 60) and 1e-3 <= t["params"]["lr"] <= 0.3
        assert (run.config.lr, run.config.batch_size) == (t["params"]["lr"],
                                                          t["params"]["batch_size"])  # fmt: skip
        if run.status == "stopped":  # ASHA gave up on it after an epoch
            assert run.info["reason"] == sweep.STOPPED_EARLY and len(run.history) == 1
        else:
            assert run.status == "finished" and len(run.history) == 2
