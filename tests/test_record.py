"""The run's record: events.jsonl replayed into the same state the live training reported."""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path

import pytest
import torch

from fmnist_core import record, runs
from fmnist_core.config import TrainConfig
from fmnist_core.events import (
    EPOCH_ROW_KEYS,
    BatchProgress,
    EpochEnd,
    RunEnd,
    Started,
    append_event,
    epoch_row,
)
from fmnist_core.record import LossTrace, Replay, RunRecorder, follow
from fmnist_core.session import start_run
from fmnist_core.train import EpochTarget
from tests.conftest import REPO

TINY = TrainConfig(epochs=2, batch_size=100, name="tiny")


def _scripted(epochs: int = 2, batches: int = 5):
    """Events of a fake training (no torch work): every batch loss known in advance."""
    yield Started("cpu", batches * 100, 10, batches, 123, "scripted")
    for e in range(1, epochs + 1):
        for b in range(1, batches + 1):
            yield BatchProgress(e, b, batches, 1.0 / (10 * e + b), 1000.0, 1.0, 0.01 * b)
        probs = torch.full((10, 10), 0.1)
        state = {"w": torch.zeros(2)}
        yield EpochEnd(e, epochs, 1.5, 0.3, 0.4, 0.5 + e / 10, 0.2, 0.2 * e, probs, state, 0.6)
    yield RunEnd("finished", "", epochs, 0.5 + epochs / 10, 0.4)


def _record(runs_dir: Path, interval: float, **kw) -> tuple[RunRecorder, list]:
    rec = RunRecorder.create(TINY, runs_dir)
    rec.batch_interval_s = interval
    events = list(rec.record(_scripted(**kw), torch.zeros(10, dtype=torch.long)))
    return rec, events


@pytest.mark.learns
def test_replaying_a_recorded_training_gives_the_live_history_and_losses(tiny_data_dir, runs_dir):
    rec, events = start_run(TINY, runs_dir, data_dir=tiny_data_dir)
    live = list(events)
    state = Replay(rec.path).read()
    assert list(state.rows) == [epoch_row(e) for e in live if isinstance(e, EpochEnd)]
    assert [tuple(row) for row in state.rows] == [EPOCH_ROW_KEYS] * 2
    trace = LossTrace()
    for e in live:
        if isinstance(e, BatchProgress):
            trace.add(e.epoch - 1 + e.batch / e.batches, e.loss)
    assert [x for x, _ in state.losses] == pytest.approx([x for x, _ in trace.points])
    assert [y for _, y in state.losses] == pytest.approx([y for _, y in trace.points], abs=1e-5)
    end = live[-1]
    assert (state.status, state.final_val_acc, state.epoch, state.batch) == (
        "finished", end.final_val_acc, 2, 6,
    )  # fmt: skip
    assert runs.load_run(rec.path).history == list(state.rows)


def test_batch_lines_are_coalesced_but_keep_every_loss(runs_dir):
    rec, _ = _record(runs_dir, interval=3600, epochs=2, batches=5)
    lines = [json.loads(x) for x in (rec.path / "events.jsonl").read_text().splitlines()]
    batch_lines = [x for x in lines if x["type"] == "batch"]
    # the first batch at once, then the rest of the epoch at its last batch
    assert [(x["epoch"], x["batch"], len(x["losses"])) for x in batch_lines] == [
        (1, 1, 1), (1, 5, 4), (2, 5, 5),
    ]  # fmt: skip
    state = Replay(rec.path).read()
    expected = [(e - 1 + b / 5, round(1.0 / (10 * e + b), 5)) for e in (1, 2) for b in range(1, 6)]
    assert [v for point in state.losses for v in point] == pytest.approx(
        [v for point in expected for v in point]
    )
    assert [t for t in (x["type"] for x in lines) if t != "batch"] == [
        "started", "epoch", "epoch", "end",
    ]  # fmt: skip


def test_a_torn_last_line_is_ignored_until_completed(runs_dir):
    rec, _ = _record(runs_dir, interval=0, epochs=1)
    log = rec.path / "events.jsonl"
    replay = Replay(rec.path)
    assert replay.read().name == ""
    line = json.dumps({"type": "rename", "name": "baseline"}) + "\n"
    with log.open("a") as f:
        f.write(line[:10])  # a writer caught mid-line
    assert replay.read().name == "" and replay.read().skipped == 0
    with log.open("a") as f:
        f.write(line[10:])
    assert replay.read().name == "baseline"
    assert runs.load_run(rec.path).name == "baseline"


def test_a_garbled_line_in_the_middle_is_skipped(runs_dir):
    rec, _ = _record(runs_dir, interval=0, epochs=1)
    with (rec.path / "events.jsonl").open("a") as f:
        f.write('{"type": "note", "te\n' + "[" * 50_000 + "\n")  # a short write; deep nesting
    append_event(rec.path, {"type": "note", "text": "still read"})
    state = Replay(rec.path).read()
    assert state.skipped == 2 and state.notes == ("still read",) and not state.problem
    assert runs.load_run(rec.path).notes == ["still read"]


def test_incremental_reads_read_only_the_new_bytes(runs_dir):
    rec, _ = _record(runs_dir, interval=0, epochs=2)
    log = rec.path / "events.jsonl"
    replay = Replay(rec.path)
    first = replay.read()
    assert replay.bytes_read == log.stat().st_size and len(first.rows) == 2
    assert replay.read() == first and replay.bytes_read == log.stat().st_size  # nothing new
    append_event(rec.path, {"type": "note", "text": "lr too high"})
    size = log.stat().st_size
    state = replay.read()
    assert replay.bytes_read == size and state.notes == ("lr too high",)
    assert state.rows == first.rows and state.losses == first.losses


def test_follow_watches_a_run_as_another_process_writes_it(runs_dir):
    rec = RunRecorder.create(TINY, runs_dir)
    rec.batch_interval_s = 0
    events = rec.record(_scripted(epochs=2, batches=3), torch.zeros(10, dtype=torch.long))
    assert follow(rec.path).started is None
    seen = []
    for event in events:
        state = follow(rec.path)  # what a reader sees right after each recorded event
        if isinstance(event, BatchProgress):
            seen.append((state.epoch, state.batch))
        if isinstance(event, EpochEnd):
            assert state.rows[-1]["epoch"] == event.epoch
    assert seen == [(e, b) for e in (1, 2) for b in (1, 2, 3)]
    assert follow(rec.path).status == "finished"


def test_an_old_run_with_history_json_still_loads(runs_dir):
    old = runs_dir / "old-run"
    shutil.copytree(REPO / "assets" / "default_model", old)
    run = runs.load_run(old)
    history = [epoch_row(row) for row in json.loads((old / "history.json").read_text())]
    assert run.history[0]["train_acc"] is None  # recorded before train accuracy was measured
    assert run.history == history and run.epochs == [8] and run.name == "" and run.notes == []
    assert run.status == "finished" and run.probs().shape == (len(run.labels()), 10)
    # a rename of an old run goes to a log of its own; its history still comes from history.json
    append_event(old, {"type": "rename", "name": "shipped"})
    renamed = runs.load_run(old)
    assert renamed.name == "shipped" and renamed.history == history


def test_listing_cache_rereads_only_changed_runs(runs_dir, monkeypatch):
    a, _ = _record(runs_dir, interval=0, epochs=1)
    b, _ = _record(runs_dir, interval=0, epochs=1)
    first, _ = runs.scan_runs(runs_dir)
    loads = []
    real = runs.load_run
    monkeypatch.setattr(runs, "load_run", lambda path: loads.append(path.name) or real(path))
    again, _ = runs.scan_runs(runs_dir)
    assert again == first and loads == []  # nothing changed: nothing read
    append_event(a.path, {"type": "rename", "name": "renamed"})  # grows the log in place
    third, _ = runs.scan_runs(runs_dir)
    assert loads == [a.run_id] and {r.id: r.name for r in third} == {
        a.run_id: "renamed", b.run_id: "tiny",  # never renamed: its preset's name
    }  # fmt: skip
    shutil.rmtree(b.path)
    assert [r.id for r in runs.scan_runs(runs_dir)[0]] == [a.run_id]
    assert runs.find_run(a.run_id, runs_dir).name == "renamed"


def test_the_recorder_fails_the_run_when_the_log_cannot_be_written(runs_dir, monkeypatch):
    rec = RunRecorder.create(TINY, runs_dir)
    real = record.append_event

    def full_disk(path, obj):
        if obj["type"] == "epoch":
            raise OSError(28, "No space left on device")
        real(path, obj)

    monkeypatch.setattr(record, "append_event", full_disk)
    events = list(rec.record(_scripted(epochs=2), torch.zeros(10, dtype=torch.long)))
    assert events[-1].status == "failed" and "No space left" in events[-1].reason
    assert runs.load_run(rec.path).status == "failed"
    assert Replay(rec.path).read().status == "failed"


def test_a_stop_mid_epoch_writes_the_pending_losses_before_the_end(runs_dir):
    rec = RunRecorder.create(TINY, runs_dir)
    rec.batch_interval_s = 3600
    stop = threading.Event()

    def stopped():
        for event in _scripted(epochs=1, batches=5):
            if isinstance(event, BatchProgress) and event.batch == 4:
                yield RunEnd("stopped", "stopped by the user", 0, None, 0.1)
                return
            yield event

    list(rec.record(stopped(), torch.zeros(10, dtype=torch.long)))
    state = Replay(rec.path).read()
    assert (state.status, state.epoch, state.batch, len(state.losses)) == ("stopped", 1, 3, 3)
    assert not stop.is_set()


def test_one_more_epoch_is_recorded_and_replays_with_the_new_total(tiny_data_dir, runs_dir):
    target = EpochTarget(TINY.epochs)
    rec, events = start_run(TINY, runs_dir, data_dir=tiny_data_dir, epochs=target)
    for event in events:
        if isinstance(event, EpochEnd) and event.epoch == 2:
            assert Replay(rec.path).read().epochs == 0  # not raised yet: the config's
            target.extend()
    lines = [json.loads(x) for x in (rec.path / "events.jsonl").read_text().splitlines()]
    assert {"type": "epochs", "epochs": 3} in lines
    kinds = [x["type"] for x in lines]
    epoch_at = [i for i, k in enumerate(kinds) if k == "epoch"]
    assert epoch_at[1] < kinds.index("epochs") < epoch_at[2]  # between epochs 2 and 3
    state = Replay(rec.path).read()
    assert state.epochs == 3 and [row["epoch"] for row in state.rows] == [1, 2, 3]
    assert state.status == "finished" and (state.epoch, state.batch) == (3, 6)
    assert state.eta_s == 0  # the last batch of the new total: nothing left
    run = runs.load_run(rec.path)
    assert run.config.epochs == 3 and run.epochs == [1, 2, 3]
    assert run.config == TINY.replace(epochs=3)  # the rest of the config untouched


def test_train_accuracy_is_in_the_row_and_an_old_epoch_line_without_it_loads(runs_dir):
    rec, _ = _record(runs_dir, interval=0, epochs=2)
    old = {"type": "epoch", **{k: v for k, v in rec.history[0].items() if k != "train_acc"}}
    state_before = Replay(rec.path).read()
    assert [tuple(row) for row in state_before.rows] == [EPOCH_ROW_KEYS] * 2
    path = runs_dir / "old-log"
    path.mkdir()
    shutil.copy(rec.path / "config.json", path)
    append_event(path, old)
    rows = Replay(path).read().rows
    assert rows[0]["train_acc"] is None and rows[0]["val_acc"] == rec.history[0]["val_acc"]
    append_event(path, {**old, "epoch": 2, "train_acc": "high"})  # present, not a number
    assert "malformed epoch line" in Replay(path).read().problem


def test_a_nonsense_epochs_line_is_skipped(runs_dir):
    rec, _ = _record(runs_dir, interval=0, epochs=1)
    append_event(rec.path, {"type": "epochs", "epochs": -3})
    state = Replay(rec.path).read()
    assert state.epochs == 0 and state.skipped == 1 and not state.problem
