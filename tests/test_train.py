import importlib
import threading

import pytest
import torch

from fmnist_core.config import TrainConfig
from fmnist_core.data import load_tensors
from fmnist_core.evaluate import evaluate_tensors
from fmnist_core.model import build_model
from fmnist_core.train import (
    BatchProgress,
    EpochEnd,
    EpochTarget,
    Extended,
    RunEnd,
    Started,
    augment,
    train,
)

TINY = TrainConfig(epochs=2, batch_size=100, lr=0.1, name="tiny")


@pytest.fixture
def tensors(tiny_data_dir):
    return load_tensors(16, tiny_data_dir)


@pytest.mark.learns
def test_event_sequence(tensors):
    events = list(train(TINY, tensors))
    assert isinstance(events[0], Started) and events[0].batches_per_epoch == 6
    kinds = [type(e).__name__ for e in events[1:]]
    assert kinds == (["BatchProgress"] * 6 + ["EpochEnd"]) * 2 + ["RunEnd"]
    batches = [e for e in events if isinstance(e, BatchProgress)]
    assert [(b.epoch, b.batch) for b in batches[:2]] == [(1, 1), (1, 2)]
    assert batches[-1].eta_s == 0 and all(b.images_per_s > 0 for b in batches)
    ends = [e for e in events if isinstance(e, EpochEnd)]
    assert ends[0].cost == pytest.approx(sum(b.loss for b in batches[:6]))
    assert ends[0].train_loss == pytest.approx(ends[0].cost / 6)
    assert ends[-1].probs.shape == (200, 10)
    assert torch.allclose(ends[-1].probs.sum(1), torch.ones(200), atol=1e-5)
    final = events[-1]
    assert final == RunEnd("finished", "", 2, ends[-1].val_acc, final.train_s)
    assert final.final_val_acc > 0.5  # the tiny dataset is easy: it must learn


def test_same_seed_same_numbers(tensors):
    def costs(cfg):
        return [(e.cost, e.val_acc) for e in train(cfg, tensors) if isinstance(e, EpochEnd)]

    assert costs(TINY) == costs(TINY)
    assert costs(TINY) != costs(TINY.replace(seed=1))


def test_stop_within_one_batch(tensors):
    stop = threading.Event()
    seen = []
    for event in train(TINY, tensors, stop=stop):
        seen.append(event)
        if isinstance(event, BatchProgress) and event.batch == 3:
            stop.set()
    assert isinstance(seen[-2], BatchProgress) and seen[-2].batch == 3
    assert seen[-1].status == "stopped" and seen[-1].epochs_done == 0


@pytest.mark.learns
def test_absurd_learning_rate_diverges(tensors):
    cfg = TrainConfig(epochs=3, lr=1.0, optimizer="adam", batch_size=16, name="boom")
    final = list(train(cfg, tensors))[-1]
    assert final.status == "failed"
    assert "diverged at epoch" in final.reason and "lower the learning rate" in final.reason


def test_errors_become_a_failed_event(tiny_data_dir):
    cfg = TrainConfig(device="cuda") if not torch.cuda.is_available() else None
    if cfg is None:
        pytest.skip("a CUDA machine can use device='cuda'")
    final = list(train(cfg, load_tensors(16, tiny_data_dir)))[-1]
    assert final.status == "failed" and "no CUDA GPU" in final.reason


def test_subset_and_28px(tiny_data_dir):
    cfg = TINY.replace(epochs=1, image_size=28, train_subset=200, batch_size=50)
    events = list(train(cfg, load_tensors(28, tiny_data_dir)))
    assert events[0].n_train == 200 and events[0].batches_per_epoch == 4
    assert events[-1].status == "finished"


def test_augment_shifts_and_flips_only():
    x = torch.zeros(64, 1, 28, 28)
    x[:, :, 10:14, 10:14] = 1
    out = augment(x, torch.Generator().manual_seed(0))
    assert out.shape == x.shape
    assert torch.all(out.sum((1, 2, 3)) == 16)  # content moved, never cut (2px margin)
    assert not torch.equal(out, x)


def test_tta_run_reports_the_flip_averaged_predictions(tensors):
    """With cfg.tta the epoch's probabilities (and accuracy) are the flip-TTA ones."""
    cfg = TINY.replace(epochs=1, tta=True)
    end = next(e for e in train(cfg, tensors) if isinstance(e, EpochEnd))
    model = build_model(cfg)
    model.load_state_dict(end.state)
    _, acc, probs = evaluate_tensors(model, tensors.test_x, tensors.test_y, tta=True)
    plain = evaluate_tensors(model, tensors.test_x, tensors.test_y)[2]
    assert torch.allclose(end.probs, probs, atol=1e-5) and end.val_acc == acc
    assert not torch.allclose(end.probs, plain, atol=1e-5)


def test_a_target_raised_while_held_after_the_last_epoch_trains_one_more(tensors):
    target = EpochTarget(TINY.epochs)
    events = []
    for event in train(TINY, tensors, epochs=target):  # not resuming it holds the loop
        events.append(event)
        if isinstance(event, EpochEnd) and event.epoch == TINY.epochs:
            assert target.extend() == TINY.epochs + 1
    kinds = [type(e).__name__ for e in events[1:]]
    one = ["BatchProgress"] * 6 + ["EpochEnd"]
    assert kinds == one * 2 + ["Extended"] + one + ["RunEnd"]  # reported before its batches
    assert events[2 * 7 + 1] == Extended(3)
    ends = [e for e in events if isinstance(e, EpochEnd)]
    assert [(e.epoch, e.epochs) for e in ends] == [(1, 2), (2, 2), (3, 3)]
    assert events[-1].status == "finished" and events[-1].epochs_done == 3
    assert target.extend() is None  # the loop is over: refused, never silently lost
    # The same numbers as a 3-epoch run from the start: same seed, same order of draws.
    three = [e for e in train(TINY.replace(epochs=3), tensors) if isinstance(e, EpochEnd)]
    assert [(e.cost, e.val_acc) for e in three] == [(e.cost, e.val_acc) for e in ends]


def test_onecycle_and_the_epoch_limit_refuse_more_epochs(tensors):
    target = EpochTarget(1)
    events = list(train(TINY.replace(epochs=1, schedule="onecycle"), tensors, epochs=target))
    assert events[-1].status == "finished" and target.extend() is None
    assert EpochTarget(29, limit=30).extend(1) == 30 and EpochTarget(30, limit=30).extend() is None


def test_running_train_accuracy_counts_the_batches_predictions(tensors, monkeypatch):
    train_module = importlib.import_module("fmnist_core.train")  # the module, not its train()
    step = train_module._step
    counts = []

    def counting(run, take):  # the step's own count of right answers, per batch
        loss, right = step(run, take)
        assert 0 <= right <= len(take)
        counts.append(right)
        return loss, right

    monkeypatch.setattr(train_module, "_step", counting)
    ends = [e for e in train(TINY, tensors) if isinstance(e, EpochEnd)]
    assert ends[0].train_acc == pytest.approx(sum(counts[:6]) / 600)
    assert ends[1].train_acc == pytest.approx(sum(counts[6:]) / 600)


@pytest.mark.learns
def test_running_train_accuracy_grows_on_a_learnable_set(tensors):
    ends = [e for e in train(TINY, tensors) if isinstance(e, EpochEnd)]
    assert 0.1 < ends[0].train_acc < ends[1].train_acc and ends[1].train_acc > 0.5
