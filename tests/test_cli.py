import json
import subprocess
import sys

import pytest

from fmnist_core import cli
from fmnist_core.events import EPOCH_ROW_KEYS
from fmnist_core.runs import find_run
from tests.conftest import REPO


def run_cli(*args, env_extra=None, check=True):
    import os

    env = os.environ | (env_extra or {})
    proc = subprocess.run(
        [sys.executable, "-m", "fmnist_core", *args],
        capture_output=True, text=True, cwd=REPO, env=env, timeout=1800,
    )  # fmt: skip
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def test_train_json_then_runs_and_evaluate(tiny_env, runs_dir):
    out = run_cli("train", "--epochs", "2", "--lr", "0.1", "--json").stdout.splitlines()
    rows = [json.loads(line) for line in out]
    assert len(rows) == 3
    assert [tuple(r) for r in rows[:2]] == [EPOCH_ROW_KEYS] * 2  # the one row shape
    last = rows[-1]
    assert set(last) == {"run_id", "status", "final_val_acc", "train_s"}
    assert last["status"] == "finished" and last["final_val_acc"] == rows[1]["val_acc"]
    assert find_run(last["run_id"], runs_dir).history == rows[:2]  # what the record holds
    listing = run_cli("runs").stdout
    assert last["run_id"] in listing and "finished" in listing
    report = run_cli("evaluate", last["run_id"]).stdout
    assert f"accuracy {last['final_val_acc']:.2%}" in report
    assert "Ankle boot" in report and "precision" in report


def test_human_output_has_progress_and_epoch_lines(tiny_env):
    proc = run_cli("train", "--epochs", "1", "--train-subset", "300")
    assert "epoch 1/1" in proc.stdout and "finished: run" in proc.stdout
    assert "img/s" in proc.stderr  # the progress bar


@pytest.mark.parametrize(
    ("flags", "needle"),
    [
        (["--lr", "7"], "lr must be between 0.0001 and 1"),
        (["--batch-size", "2"], "batch_size must be between 16 and 1024"),
        (["--image-size", "20"], "invalid choice"),
        (["--epochs", "many"], "invalid int value"),
    ],
)
def test_bad_flags_exit_nonzero_with_the_range(flags, needle, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["train", *flags])
    assert exit_info.value.code == 2
    assert needle in capsys.readouterr().err


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        ([], {"name": "strong", "amp": True, "augment": True}),
        (["--no-amp"], {"name": "strong+", "amp": False, "augment": True}),
        (["--no-augment", "--epochs", "3"], {"name": "strong+", "augment": False, "epochs": 3}),
    ],
)
def test_switch_flags_override_the_preset(flags, expected):
    args = cli.build_parser().parse_args(["train", "--preset", "strong", *flags])
    cfg = cli.config_from_args(args)
    assert {k: getattr(cfg, k) for k in expected} == expected


def test_missing_data_is_one_clear_message(tmp_path, runs_dir):
    proc = run_cli(
        "train", "--data-dir", str(tmp_path / "nothing"), "--runs-dir", str(runs_dir),
        env_extra={"FMNIST_OFFLINE": "1"}, check=False,
    )  # fmt: skip
    assert proc.returncode == 1
    assert "Fashion-MNIST was not found" in proc.stderr and "Traceback" not in proc.stderr
    assert list(runs_dir.iterdir()) == []


def test_help_everywhere():
    for args in ([], ["train"], ["runs"], ["evaluate"]):
        assert "usage" in run_cli(*args, "--help").stdout


def test_help_documents_the_exit_statuses(capsys):
    for args in ([], ["train"], ["export"]):
        with pytest.raises(SystemExit):
            cli.main([*args, "--help"])
        text = capsys.readouterr().out
        assert "exit status:" in text and "130" in text and "141" in text
