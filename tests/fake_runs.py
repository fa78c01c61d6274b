"""Runs written through the real RunRecorder from made-up events: no training needed.

    run_id = make_run(runs_dir, lr=0.05, accs=(0.5, 0.8, 0.7))   # 3 epochs, best = 2

Each epoch's weights are a seeded model's (so two runs differ), the predictions put
``acc`` of the tiny test set (200 images, labels = index % 10) on the right class.
"""

from __future__ import annotations

from pathlib import Path

import torch

from fmnist_core import TrainConfig, build_model
from fmnist_core.runs import RunRecorder
from fmnist_core.train import BatchProgress, EpochEnd, RunEnd, Started

N_TEST = 200
LABELS = torch.arange(N_TEST) % 10


def _probs(acc: float) -> torch.Tensor:
    """The first ``acc`` share of the images right (0.9), the rest on the next class."""
    right = int(round(acc * N_TEST))
    pred = LABELS.clone()
    pred[right:] = (pred[right:] + 1) % 10
    probs = torch.full((N_TEST, 10), 0.1 / 9)
    probs[torch.arange(N_TEST), pred] = 0.9
    return probs


def make_run(
    runs_dir: Path,
    accs: tuple[float, ...] = (0.6, 0.8),
    status: str = "finished",
    name: str = "seed",
    seed: int = 0,
    **config: object,
) -> str:
    """A run with one epoch per accuracy in ``accs``, ended with ``status``; its id."""
    cfg = TrainConfig(epochs=max(len(accs), 1), name=name, seed=seed, **config)  # type: ignore[arg-type]
    rec = RunRecorder.create(cfg, runs_dir)
    torch.manual_seed(seed)
    events: list = [Started("cpu", 600, N_TEST, 6, 1000, "tiny")]
    for epoch, acc in enumerate(accs, 1):
        state = {k: v.clone() for k, v in build_model(cfg).state_dict().items()}
        loss = 1.0 / epoch
        events += [BatchProgress(epoch, b, 6, loss + (6 - b) / 10, 100.0, 0.0, 0.1)
                   for b in range(1, 7)]  # fmt: skip
        events.append(EpochEnd(epoch, len(accs), 6 * loss, loss, loss * 1.1, acc, 1.5,
                               1.5 * epoch, _probs(acc), state))  # fmt: skip
    if status != "running":
        events.append(RunEnd(status, "" if status == "finished" else "test", len(accs),
                             accs[-1] if accs else None, 1.5 * len(accs)))  # fmt: skip
    list(rec.record(iter(events), LABELS))
    return rec.run_id
