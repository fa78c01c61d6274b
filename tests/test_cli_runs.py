"""CLI run management: runs --json, rename, note, delete, prune, export FILE.zip, import."""

from __future__ import annotations

import json

import pytest

from fmnist_core import cli
from fmnist_core.runs import list_runs, set_active
from tests.fake_runs import make_run
from tests.test_cli import run_cli


def main(capsys, *args: str) -> tuple[int, str, str]:
    code = cli.main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_train_then_json_export_delete_import_evaluate(tiny_env, runs_dir, tmp_path):
    """The issue's acceptance: the same run comes back with the same matrix."""
    run_cli("train", "--epochs", "2", "--train-subset", "300", "--json")
    (row,) = [json.loads(line) for line in run_cli("runs", "--json").stdout.splitlines()]
    assert {"run_id", "name", "status", "created", "epochs_done", "final_val_acc",
            "best_val_acc", "best_epoch", "train_s", "config"} <= set(row)  # fmt: skip
    assert row["status"] == "finished" and row["epochs_done"] == 2 and row["best_epoch"] in (1, 2)
    run_id, zip_path = row["run_id"], str(tmp_path / "r.zip")
    report = run_cli("evaluate", run_id).stdout
    run_cli("export", run_id, zip_path)
    assert f"deleted run {run_id}" in run_cli("runs", "delete", run_id).stdout
    assert run_cli("runs", "--json").stdout == ""
    assert f"imported run {run_id}" in run_cli("import", zip_path).stdout
    (again,) = [json.loads(line) for line in run_cli("runs", "--json").stdout.splitlines()]
    assert again["final_val_acc"] == row["final_val_acc"] and again["run_id"] == run_id
    assert run_cli("evaluate", run_id).stdout == report


def test_rename_note_and_the_plain_listing(runs_dir, capsys):
    run_id = make_run(runs_dir)
    assert main(capsys, "runs", "rename", run_id, "lr sweep", "--runs-dir", str(runs_dir))[0] == 0
    assert main(capsys, "runs", "--runs-dir", str(runs_dir), "note", run_id, "good")[0] == 0
    code, out, _ = main(capsys, "runs", "--runs-dir", str(runs_dir))
    assert code == 0 and run_id in out and out.splitlines()[1].endswith("lr sweep")
    assert "disk used:" in out and "KB in 1 run folder(s)" in out
    (row,) = [json.loads(x) for x in main(capsys, "runs", "--json", "--runs-dir",
                                          str(runs_dir))[1].splitlines()]  # fmt: skip
    assert (row["name"], row["notes"]) == ("lr sweep", ["good"])


def test_errors_are_one_line_with_exit_statuses(runs_dir, capsys, tmp_path):
    run_id = make_run(runs_dir)
    set_active(run_id, runs_dir)
    d = ("--runs-dir", str(runs_dir))
    code, out, _ = main(capsys, "runs", "delete", run_id, *d)  # the active model: it says so
    assert code == 0 and "it was the active model" in out and not (runs_dir / run_id).exists()
    run_id = make_run(runs_dir, status="running")  # a run still training is never deleted
    code, _, err = main(capsys, "runs", "delete", run_id, *d)
    assert code == 1 and "still training" in err and (runs_dir / run_id).is_dir()
    code, _, err = main(capsys, "runs", "rename", "nope", "x", *d)
    assert code == 1 and err.startswith("error: no run 'nope'")
    (tmp_path / "junk.zip").write_bytes(b"junk")
    code, _, err = main(capsys, "import", str(tmp_path / "junk.zip"), *d)
    assert code == 1 and "not a readable run archive" in err and len(err.splitlines()) == 1
    code, _, err = main(capsys, "export", run_id, str(tmp_path / "a.zip"), "--epoch", "1", *d)
    assert code == 2 and "every epoch" in err
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["runs", "prune", "--keep", "-1", *d])
    assert exit_info.value.code == 2
    assert [r.id for r in list_runs(runs_dir)] == [run_id]


def test_prune_dry_run_prints_then_prune_deletes(runs_dir, capsys):
    ids = [make_run(runs_dir, seed=i) for i in range(3)]
    set_active(ids[0], runs_dir)
    d = ("--runs-dir", str(runs_dir))
    code, out, _ = main(capsys, "runs", "prune", "--keep", "1", "--dry-run", *d)
    assert code == 0 and out.splitlines()[0] == f"would delete {ids[1]}"
    assert len(list_runs(runs_dir)) == 3
    code, out, _ = main(capsys, "runs", "prune", "--keep", "1", *d)
    assert out.splitlines()[0] == f"deleted {ids[1]}"
    assert {r.id for r in list_runs(runs_dir)} == {ids[0], ids[2]}


def test_export_to_a_folder_still_writes_one_epoch(runs_dir, tmp_path, capsys):
    run_id = make_run(runs_dir, accs=(0.5, 0.7))
    code, out, _ = main(capsys, "export", run_id, str(tmp_path / "one"), "--epoch", "1",
                        "--runs-dir", str(runs_dir))  # fmt: skip
    assert code == 0 and "epoch 1" in out
    assert sorted(p.name for p in (tmp_path / "one").iterdir())[0] == "config.json"
    assert not (tmp_path / "one" / "epoch_002.pt").exists()
