import json
import os

import pytest
import torch

from fmnist_core import atomic, record, runs
from fmnist_core.config import TrainConfig
from fmnist_core.data import load_tensors
from fmnist_core.train import EpochEnd, RunEnd

TINY = TrainConfig(epochs=2, batch_size=100, name="tiny")


def finish(cfg, runs_dir, data_dir):
    rec, events = runs.start_run(cfg, runs_dir, data_dir=data_dir)
    return rec, list(events)


@pytest.mark.learns
def test_run_folder_rebuilds_identical_logits(tiny_data_dir, runs_dir):
    rec, events = finish(TINY, runs_dir, tiny_data_dir)
    run = runs.find_run(rec.run_id, runs_dir)
    assert run.status == "finished" and run.epochs == [1, 2] and run.config == TINY
    assert run.info["final_val_acc"] == events[-1].final_val_acc
    last = [e for e in events if isinstance(e, EpochEnd)][-1]
    x = load_tensors(16, tiny_data_dir).test_x
    reference = runs.build_model(TINY)
    reference.load_state_dict(last.state)
    reference.eval()
    with torch.inference_mode():
        assert torch.equal(run.load_model()(x), reference(x))
        assert not torch.equal(run.load_model(epoch=1)(x), reference(x))
    assert torch.allclose(run.probs(), last.probs, atol=1e-3)  # stored as float16
    assert torch.equal(run.labels(), load_tensors(16, tiny_data_dir).test_y)
    assert [row["epoch"] for row in run.history] == [1, 2]


def test_stopped_run_keeps_completed_epochs(tiny_data_dir, runs_dir):
    import threading

    stop = threading.Event()
    rec, events = runs.start_run(TINY.replace(epochs=3), runs_dir, stop, tiny_data_dir)
    for event in events:
        if isinstance(event, EpochEnd) and event.epoch == 1:
            stop.set()
    run = runs.find_run(rec.run_id, runs_dir)
    assert run.status == "stopped" and run.epochs == [1]
    run.load_model()


def test_running_run_of_a_dead_process_is_interrupted(tiny_data_dir, runs_dir):
    rec, _ = finish(TINY.replace(epochs=1), runs_dir, tiny_data_dir)
    status = json.loads((rec.path / "status.json").read_text())
    status.update(status="running", pid=2**22 + 17)  # no such process
    (rec.path / "status.json").write_text(json.dumps(status))
    assert runs.find_run(rec.run_id, runs_dir).status == "interrupted"
    status["pid"] = os.getpid()
    (rec.path / "status.json").write_text(json.dumps(status))
    assert runs.find_run(rec.run_id, runs_dir).status == "running"


def test_broken_folder_is_skipped_with_a_warning(tiny_data_dir, runs_dir):
    good, _ = finish(TINY.replace(epochs=1), runs_dir, tiny_data_dir)
    bad, _ = finish(TINY.replace(epochs=1), runs_dir, tiny_data_dir)
    with (bad.path / "events.jsonl").open("a") as log:
        log.write('{"type": "epoch", "epoch": "x"}\n')  # valid JSON, nonsense row
    (runs_dir / "stray-folder").mkdir()
    found, warnings = runs.scan_runs(runs_dir)
    assert [r.id for r in found] == [good.run_id]
    assert len(warnings) == 2 and any("events.jsonl has a malformed" in w for w in warnings)


def test_missing_weights_skip_the_run(tiny_data_dir, runs_dir):
    rec, _ = finish(TINY.replace(epochs=1), runs_dir, tiny_data_dir)
    (rec.path / "epoch_001.pt").unlink()
    runs_found, warnings = runs.scan_runs(runs_dir)
    assert runs_found == [] and "epoch_001.pt is missing" in warnings[0]


def test_active_run_is_marked_or_newest_finished(tiny_data_dir, runs_dir):
    assert runs.active_run(runs_dir) is None
    first, _ = finish(TINY.replace(epochs=1), runs_dir, tiny_data_dir)
    second, _ = finish(TINY.replace(epochs=1), runs_dir, tiny_data_dir)
    assert runs.active_run(runs_dir).id == max(first.run_id, second.run_id)
    runs.set_active(first.run_id, runs_dir)
    assert runs.active_run(runs_dir).id == first.run_id


def test_interrupted_atomic_write_leaves_no_partial_file(tmp_path, monkeypatch):
    target = tmp_path / "history.json"
    atomic.atomic_write_json(target, [1, 2, 3])

    def crash(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(atomic.os, "replace", crash)
    with pytest.raises(OSError):
        atomic.atomic_write_json(target, [4])
    assert json.loads(target.read_text()) == [1, 2, 3]
    assert [p.name for p in tmp_path.iterdir()] == ["history.json"]


def test_failed_write_ends_the_run_as_failed(tiny_data_dir, runs_dir, monkeypatch):
    rec, events = runs.start_run(TINY, runs_dir, data_dir=tiny_data_dir)
    real_save = record.atomic_torch_save

    def full_disk(path, obj):
        if "epoch_002" in str(path):
            raise OSError(28, "No space left on device")
        real_save(path, obj)

    monkeypatch.setattr(record, "atomic_torch_save", full_disk)
    final = list(events)[-1]
    assert isinstance(final, RunEnd) and final.status == "failed"
    assert "No space left on device" in final.reason and rec.run_id in final.reason
    run = runs.find_run(rec.run_id, runs_dir)
    assert run.status == "failed" and run.epochs == [1]
