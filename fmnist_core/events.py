"""A training's events, their JSON form in a run's ``events.jsonl``, and THE epoch row.

    for event in train(cfg): ...                  # Started, BatchProgress..., EpochEnd..., RunEnd
    row = epoch_row(event)                        # {"epoch": 1, "cost": ..., ...} EPOCH_ROW_KEYS
    append_event(run_path, {"type": "note", "text": "lr too high"})   # one whole line, appended

Every consumer of a training (the recorder, the CLI's ``--json``, the app's live view, the
tests) builds an epoch row with ``epoch_row``: one shape, defined here. The log holds one JSON
object per line with a ``type``: "started", "batch" (the batch losses since the previous batch
line, then the progress of the last of them), "epoch" (an epoch row), "epochs" (the run's total of
epochs was raised while it ran: "one more epoch"), "end", and "rename" / "note" written by
whoever manages runs, "sweep" (sweep id, trial, drawn values) written by a sweep's trial right
after the run's folder exists. No torch needed to read it.

An epoch row's ``train_acc`` is the *running* train accuracy: the share of the epoch's
training images that the model classified right in the forward pass of their own batch
(before that batch's update, with augmentation), measured for free during the epoch (under
torchrun, summed over the ranks). It lags the end-of-epoch model a little; a run recorded
before it existed has ``None`` there.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

EVENTS_FILE = "events.jsonl"
EPOCH_ROW_KEYS = (
    "epoch", "cost", "train_loss", "train_acc", "val_loss", "val_acc", "seconds", "elapsed_s"
)  # fmt: skip
OPTIONAL_ROW_KEYS = ("train_acc",)  # None in rows of runs recorded before it was measured
REQUIRED_ROW_KEYS = tuple(k for k in EPOCH_ROW_KEYS if k not in OPTIONAL_ROW_KEYS)
LOSS_DIGITS = 5  # batch losses are stored rounded: a trace to plot, ~8 bytes per batch


@dataclass(frozen=True)
class Started:
    device: str
    n_train: int
    n_test: int
    batches_per_epoch: int
    parameters: int
    data_source: str
    world_size: int = 1  # processes training the model (torchrun); 1 = a single process
    backend: str = ""  # torch.distributed backend ("gloo", "nccl"); "" for one process


@dataclass(frozen=True)
class BatchProgress:
    epoch: int  # 1-based
    batch: int  # 1-based within the epoch
    batches: int  # per epoch
    loss: float
    images_per_s: float
    eta_s: float  # seconds left for the whole run (training batches only)
    elapsed_s: float


@dataclass(frozen=True)
class EpochEnd:
    epoch: int
    epochs: int
    cost: float  # the notebook's cost: sum of this epoch's batch losses
    train_loss: float  # mean batch loss
    val_loss: float
    val_acc: float
    seconds: float  # this epoch, evaluation included
    elapsed_s: float
    # Test-set class probabilities (N, 10) and the weights after this epoch, for the run
    # (torch tensors; typed loosely so that reading a log never needs torch).
    probs: Any = field(repr=False, compare=False)
    state: Any = field(repr=False, compare=False)
    train_acc: float | None = None  # running train accuracy (see the module's docstring)


@dataclass(frozen=True)
class Extended:
    """The run's total of epochs was raised to ``epochs`` while it ran ("one more epoch")."""

    epochs: int


@dataclass(frozen=True)
class RunEnd:
    status: str  # "finished" | "stopped" | "failed"
    reason: str  # empty when finished
    epochs_done: int
    final_val_acc: float | None  # accuracy after the last completed epoch
    train_s: float


Event = Started | BatchProgress | EpochEnd | Extended | RunEnd


def epoch_row(event: EpochEnd | Mapping[str, Any]) -> dict[str, Any]:
    """The one epoch-row shape: ``EPOCH_ROW_KEYS``, the epoch an int, the rest floats; an
    optional key (``OPTIONAL_ROW_KEYS``) missing or not finite is None."""
    get = event.get if isinstance(event, Mapping) else lambda key: getattr(event, key, None)
    row: dict[str, Any] = {}
    for key in EPOCH_ROW_KEYS:
        value = get(key)
        if key in OPTIONAL_ROW_KEYS:
            ok = isinstance(value, int | float) and not isinstance(value, bool)
            row[key] = float(value) if ok and math.isfinite(value) else None
        else:
            row[key] = float(value)
    row["epoch"] = int(row["epoch"])
    return row


def _finite_or_none(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def started_line(event: Started) -> dict[str, Any]:
    return {"type": "started", "time": time.time(), "device": event.device,
            "n_train": event.n_train, "n_test": event.n_test,
            "batches": event.batches_per_epoch, "parameters": event.parameters,
            "data_source": event.data_source, "world_size": event.world_size,
            "backend": event.backend}  # fmt: skip


def batch_line(last: BatchProgress, losses: Sequence[float]) -> dict[str, Any]:
    """``losses``: the batch losses of this epoch since the previous batch line, the last
    one being ``last``'s (a line never spans two epochs)."""
    return {"type": "batch", "epoch": last.epoch, "batch": last.batch, "batches": last.batches,
            "losses": [_finite_or_none(round(x, LOSS_DIGITS)) for x in losses],
            "images_per_s": round(last.images_per_s, 1), "eta_s": round(last.eta_s, 2),
            "elapsed_s": round(last.elapsed_s, 3)}  # fmt: skip


def epoch_line(event: EpochEnd) -> dict[str, Any]:
    return {"type": "epoch", **epoch_row(event)}


def extended_line(event: Extended) -> dict[str, Any]:
    return {"type": "epochs", "epochs": event.epochs}


def end_line(event: RunEnd) -> dict[str, Any]:
    return {"type": "end", "time": time.time(), "status": event.status, "reason": event.reason,
            "epochs_done": event.epochs_done,
            "final_val_acc": _finite_or_none(event.final_val_acc),
            "train_s": _finite_or_none(event.train_s)}  # fmt: skip


def append_event(run_path: str | Path, obj: Mapping[str, Any]) -> None:
    """Append ``obj`` as one line to the run's ``events.jsonl``.

    One ``os.write`` of the whole line on an ``O_APPEND`` descriptor: concurrent writers (the
    recorder and a rename from another process) never interleave within a line. A short write
    (disk full) raises OSError; the reader skips the torn line it leaves, and the next line
    written here starts on a line of its own.
    """
    line = (json.dumps(obj, allow_nan=False, separators=(",", ":")) + "\n").encode()
    path = Path(run_path) / EVENTS_FILE
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o666)
    try:
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":  # a killed writer's torn last line
            line = b"\n" + line  # it stays torn (skipped by readers); this one is whole
        written = os.write(fd, line)
    finally:
        os.close(fd)
    if written != len(line):
        raise OSError(28, f"only {written} of {len(line)} bytes written to {path}")
