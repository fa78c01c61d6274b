"""fmnist_core.manage and archive: names, notes, delete, prune, summaries, zip round trips,
and archives that must be refused (zip-slip, oversized, damaged, foreign pickles)."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pytest
import torch

from fmnist_core import archive, manage
from fmnist_core.runfiles import RunError
from fmnist_core.runs import find_run, list_runs, set_active
from tests.fake_runs import make_run


def annotations(folder: Path) -> list[dict]:
    """The rename and note lines of a run's events.jsonl (the training's lines left out)."""
    lines = [json.loads(x) for x in (folder / "events.jsonl").read_text().splitlines()]
    return [x for x in lines if x["type"] in ("rename", "note")]


def test_rename_and_notes_are_lines_in_events_jsonl(runs_dir):
    run_id = make_run(runs_dir)
    assert find_run(run_id, runs_dir).name == "seed"  # the preset part of the id
    manage.rename(run_id, "  first   try ", runs_dir)
    manage.add_note(run_id, "lr too high?\nmaybe", runs_dir)
    manage.rename(run_id, "baseline", runs_dir)
    run = find_run(run_id, runs_dir)
    assert (run.name, run.notes) == ("baseline", ["lr too high?\nmaybe"])
    assert [(x["type"], x.get("name") or x.get("text")) for x in annotations(run.path)] == [
        ("rename", "first try"), ("note", "lr too high?\nmaybe"), ("rename", "baseline")
    ]  # fmt: skip


def test_a_torn_last_line_is_ignored_and_not_joined_to_the_next(runs_dir):
    run_id = make_run(runs_dir)
    path = runs_dir / run_id / "events.jsonl"
    path.write_bytes(b'{"type":"rename","name":"ok"}\n{"type":"rename","na')
    assert find_run(run_id, runs_dir).name == "ok"
    manage.rename(run_id, "after", runs_dir)
    assert find_run(run_id, runs_dir).name == "after"


@pytest.mark.parametrize(
    ("name", "needle"), [("", "empty"), ("x" * 101, "at most 100"), ("a\x1bb", "control")]
)
def test_bad_names_are_refused(runs_dir, name, needle):
    run_id = make_run(runs_dir)
    with pytest.raises(RunError, match=needle):
        manage.rename(run_id, name, runs_dir)
    assert annotations(runs_dir / run_id) == []  # nothing was written


def test_summary_has_the_best_epoch_not_the_last(runs_dir):
    run_id = make_run(runs_dir, accs=(0.5, 0.8, 0.7), lr=0.05)
    row = manage.summary(find_run(run_id, runs_dir))
    assert row["best_val_acc"] == 0.8 and row["best_epoch"] == 2
    assert row["final_val_acc"] == 0.7 and row["epochs_done"] == 3
    assert row["config"]["lr"] == 0.05 and row["status"] == "finished"
    assert row["train_s"] == 4.5 and row["created"][:2] == "20"
    json.dumps(row)  # JSON-ready


def test_delete_refuses_running_and_asks_for_the_active(runs_dir):
    old, running = make_run(runs_dir), make_run(runs_dir, status="running")
    with pytest.raises(RunError, match="still training"):
        manage.delete(running, runs_dir)
    set_active(old, runs_dir)
    with pytest.raises(RunError, match="active model"):
        manage.delete(old, runs_dir)
    assert manage.delete(old, runs_dir, force=True) is True
    assert not (runs_dir / "active.json").exists()
    assert [r.id for r in list_runs(runs_dir)] == [running]
    assert [p.name for p in runs_dir.iterdir()] == [running]  # nothing left behind


def test_prune_keeps_the_newest_the_active_and_running(runs_dir):
    ids = [make_run(runs_dir, seed=i) for i in range(4)]  # oldest first
    running = make_run(runs_dir, status="running")
    set_active(ids[0], runs_dir)
    assert manage.prune(1, runs_dir, dry_run=True) == [ids[2], ids[1]]
    assert len(list_runs(runs_dir)) == 5  # dry run: nothing deleted
    assert manage.prune(1, runs_dir) == [ids[2], ids[1]]
    assert {r.id for r in list_runs(runs_dir)} == {running, ids[3], ids[0]}


def test_disk_usage_and_csv(runs_dir):
    run_id = make_run(runs_dir, name="=cmd")
    manage.rename(run_id, "=HYPERLINK(1)", runs_dir)
    usage = manage.disk_usage(runs_dir)
    assert usage[run_id] == sum(p.stat().st_size for p in (runs_dir / run_id).iterdir())
    rows = manage.metrics_csv(list_runs(runs_dir)).splitlines()
    assert rows[0].startswith("run_id,name,status,epoch,cost") and len(rows) == 3
    assert ",'=HYPERLINK(1),finished,1," in rows[1]  # not a formula in a spreadsheet


def _logits(run_id: str, runs_dir: Path) -> list[torch.Tensor]:
    run = find_run(run_id, runs_dir)
    x = torch.linspace(0, 1, 4 * 16 * 16).reshape(4, 1, 16, 16)
    with torch.no_grad():
        return [run.load_model(e)(x) for e in run.epochs]


def test_export_delete_import_round_trip(runs_dir, tmp_path):
    run_id = make_run(runs_dir, accs=(0.4, 0.9), lr=0.02)
    manage.rename(run_id, "keep me", runs_dir)
    before, history = _logits(run_id, runs_dir), find_run(run_id, runs_dir).history
    zip_path = manage.export_zip(run_id, tmp_path / "r.zip", runs_dir)
    manage.delete(run_id, runs_dir)
    assert manage.import_zip(zip_path, runs_dir) == run_id
    run = find_run(run_id, runs_dir)
    assert run.history == history and run.name == "keep me" and run.status == "finished"
    assert all(torch.equal(a, b) for a, b in zip(before, _logits(run_id, runs_dir), strict=True))
    assert torch.equal(run.probs(), find_run(run_id, runs_dir).probs())
    # Imported again: the id is taken, so it gets a new one; the first copy is untouched.
    second = manage.import_zip(zip_path, runs_dir)
    assert second != run_id and second.rsplit("-", 1)[0] == run_id.rsplit("-", 1)[0]
    assert len(list_runs(runs_dir)) == 2 and not list(runs_dir.glob(".import-*"))


def test_an_interrupted_run_stays_interrupted(runs_dir, tmp_path):
    run_id = make_run(runs_dir, status="running")
    status = runs_dir / run_id / "status.json"
    status.write_text(json.dumps({**json.loads(status.read_text()), "pid": 2**31 - 1}))
    manage.export_zip(run_id, tmp_path / "r.zip", runs_dir)
    imported = manage.import_zip(tmp_path / "r.zip", tmp_path / "other")
    assert find_run(imported, tmp_path / "other").status == "interrupted"


def _zip(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, blob in entries.items():
            zf.writestr(name, blob)
    return buffer.getvalue()


def _entries(runs_dir: Path, tmp_path: Path) -> dict[str, bytes]:
    run_id = make_run(runs_dir)
    with zipfile.ZipFile(manage.export_zip(run_id, tmp_path / "ok.zip", runs_dir)) as zf:
        return {info.filename: zf.read(info) for info in zf.infolist()}


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        (lambda e, r: {**e, "../evil.json": b"{}"}, "not a run file"),
        (lambda e, r: {**e, f"{r}/../../x.pt": b"x"}, "not a run file"),
        (lambda e, r: {"/abs/config.json": e[f"{r}/config.json"]}, "not a run file"),
        (lambda e, r: {**e, f"{r}/notes.txt": b"hi"}, "not a run file"),
        (lambda e, r: {**e, f"{r}/history.json": b" " * (2 << 20)}, "more than"),
        (
            lambda e, r: {k.replace(r, "other", 1) if "probs" in k else k: v for k, v in e.items()},
            "one run folder",
        ),  # fmt: skip
        (lambda e, r: {k: v for k, v in e.items() if "probs_002" not in k}, "missing"),
        (lambda e, r: {**e, f"{r}/epoch_001.pt": b"\x80\x04cos\nsystem\n."}, "refused to load"),
        (
            lambda e, r: {**e, f"{r}/status.json": b'{"status": "running", "pid": 1, "host": "h"}'},
            "still training",
        ),  # fmt: skip
    ],
)
def test_hostile_archives_are_refused_and_leave_nothing(runs_dir, tmp_path, change, needle):
    entries = _entries(runs_dir, tmp_path)
    run_id = next(iter(entries)).split("/")[0]
    bad = tmp_path / "bad.zip"
    bad.write_bytes(_zip(change(entries, run_id)))
    target = tmp_path / "target"
    with pytest.raises(RunError, match=needle):
        manage.import_zip(bad, target)
    assert not target.exists() or list(target.iterdir()) == []
    assert not (tmp_path / "evil.json").exists() and not (tmp_path / "x.pt").exists()


def test_damaged_and_oversized_archives_are_refused(runs_dir, tmp_path, monkeypatch):
    good = manage.export_zip(make_run(runs_dir), tmp_path / "ok.zip", runs_dir).read_bytes()
    middle = len(good) // 2
    flipped = good[:middle] + bytes([good[middle] ^ 0xFF]) + good[middle + 1 :]
    for blob in (good[:middle], flipped, b"not a zip", b""):
        (tmp_path / "bad.zip").write_bytes(blob)
        with pytest.raises(RunError, match="not a readable run archive"):
            manage.import_zip(tmp_path / "bad.zip", tmp_path / "target")
    monkeypatch.setattr(archive, "IMPORT_LIMIT", 1000)
    with pytest.raises(RunError, match="unpacks to"):
        manage.import_zip(io.BytesIO(good), tmp_path / "target")
    monkeypatch.setattr(archive, "MAX_ENTRIES", 3)
    with pytest.raises(RunError, match="entries"):
        manage.import_zip(io.BytesIO(good), tmp_path / "target")
    assert not (tmp_path / "target").exists() or list((tmp_path / "target").iterdir()) == []


def test_a_zip_bomb_entry_is_refused_before_it_is_unpacked(runs_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(archive, "PT_LIMIT", 1 << 20)  # the real cap is 256 MB: same check
    entries = _entries(runs_dir, tmp_path)
    run_id = next(iter(entries)).split("/")[0]
    entries[f"{run_id}/model.pt"] = b"\0" * (4 << 20)  # deflates to ~4 KB
    (tmp_path / "bomb.zip").write_bytes(_zip(entries))
    with pytest.raises(RunError, match="more than"):
        manage.import_zip(tmp_path / "bomb.zip", tmp_path / "target")
