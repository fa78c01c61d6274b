"""The ``train`` command of the CLI: a training's events printed as text or JSON lines.

It loads the data before a run folder exists (a Ctrl-C or a refusal meanwhile leaves
nothing), turns Ctrl-C into a clean stop that keeps the completed epochs, and survives a
closed output (``train --json | head -1``): the run then ends "stopped", reason "output
closed", with exit status 141. See ``cli.EXIT_STATUS``.

Under torchrun (``WORLD_SIZE`` > 1) every process trains its share (distributed.py); rank 0
alone records the run and prints, the others print only errors. A Ctrl-C or SIGINT to any of
them stops them all before the same batch.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NoReturn, TextIO

from fmnist_core import distributed
from fmnist_core.atomic import atomic_write_bytes
from fmnist_core.config import TrainConfig
from fmnist_core.control import SignalControl
from fmnist_core.data import DataError, Tensors, load_tensors
from fmnist_core.distributed import Dist, DistError
from fmnist_core.events import BatchProgress, EpochEnd, Event, RunEnd, epoch_row
from fmnist_core.gate import Gate
from fmnist_core.owner import ORPHANED, Owner
from fmnist_core.record import RunRecorder
from fmnist_core.runs import ACTIVE_FILE, RunError, set_active
from fmnist_core.train import EpochTarget, train

USER_STOP = "stopped by the user"
OUTPUT_CLOSED = "output closed"
CLEAR_LINE = "\r" + " " * 90 + "\r"  # wipes the progress bar off the terminal's line


def _bar(event: BatchProgress) -> str:
    done = event.batch / event.batches
    fill = int(30 * done)
    return (
        f"\repoch {event.epoch} [{'#' * fill}{'.' * (30 - fill)}] {event.batch}/{event.batches} "
        f"loss {event.loss:.3f}  {event.images_per_s:,.0f} img/s  ETA {event.eta_s:4.0f}s "
    )


def discard(stream: TextIO) -> None:
    """Point a closed ``stream`` at /dev/null, so its unwritten buffer cannot fail (and print
    "Exception ignored") again when Python exits."""
    with contextlib.suppress(OSError, ValueError):  # not a real file (e.g. pytest's capture)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stream.fileno())
        os.close(devnull)


class _Stop(threading.Event):
    """The training's stop flag, with why it was set (the first reason wins)."""

    reason = ""

    def stop(self, reason: str) -> None:
        if not self.is_set():
            self.reason = reason
            self.set()


class _Output:
    """stdout/stderr for a training: when the reader goes away (``| head -1``) the first failed
    write stops the training, whose run then ends "stopped" with reason "output closed"; later
    writes to that stream are dropped."""

    def __init__(self, stop: _Stop) -> None:
        self.stop = stop
        self.broken: list[TextIO] = []

    def write(self, text: str, stream: TextIO | None = None) -> None:
        stream = stream or sys.stdout
        if stream in self.broken:
            return
        try:
            stream.write(text)
            stream.flush()
        except OSError:  # EPIPE: the reader is gone; EIO: the terminal is gone
            self.broken.append(stream)
            discard(stream)
            self.stop.stop(OUTPUT_CLOSED)


def _with_reason(
    events: Iterator[Event], stop: _Stop, owner: Owner | None = None
) -> Iterator[Event]:
    """Puts the stop flag's reason (Ctrl-C, "output closed", the owner gone) on a "stopped"
    run's end. Under torchrun another rank may have seen the owner go first: asked again."""
    with contextlib.closing(events):  # type: ignore[type-var]
        for event in events:
            if isinstance(event, RunEnd) and event.status == "stopped":
                if not stop.reason and owner is not None and owner.gone():
                    stop.stop(ORPHANED)
                if stop.reason:
                    event = dataclasses.replace(event, reason=stop.reason)
            yield event


def run_training(
    cfg: TrainConfig,
    data_dir: str | None,
    runs_dir: str | None,
    as_json: bool,
    refuse: Callable[[str], NoReturn],
    run_id_file: str | None = None,
    control_signals: bool = False,
) -> int:
    """Train ``cfg`` into a new run under ``runs_dir``, printing as it goes; the exit status.
    ``refuse`` ends the program for a bad argument (argparse's ``error``: exit status 2).
    ``run_id_file``: where to write the new run's id once its folder exists (a launcher that
    follows the run, e.g. the app's torchrun jobs). ``control_signals``: pause, resume and one
    more epoch by signals (fmnist_core.control; not under torchrun)."""
    try:  # before any run folder exists: a Ctrl-C here exits 130 and leaves nothing
        ctx = distributed.from_env()
        tensors = load_tensors(cfg.image_size, data_dir)
    except (DataError, DistError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    n_images = len(tensors.train_y)
    if cfg.train_subset > n_images:  # the same check as the Train page
        refuse(f"--train-subset {cfg.train_subset:,}: the dataset has only {n_images:,} "
               "training images; choose fewer, or 0 for all")  # fmt: skip
    stop = _Stop()
    previous = signal.signal(signal.SIGINT, lambda *_: stop.stop(USER_STOP))  # keeps epochs
    owner = Owner.from_env()  # started by the app: stop when it is gone (owner.py)
    watching = owner.watch(lambda: stop.stop(ORPHANED)) if owner else None
    try:
        if ctx is not None and not ctx.main:
            return _train_rank(cfg, tensors, stop, ctx)
        control = SignalControl() if control_signals and ctx is None else None
        if control is not None:
            control.install()
        try:
            return _train_run(
                cfg, tensors, stop, runs_dir, as_json, ctx, run_id_file, control, owner
            )
        finally:
            if control is not None:
                control.restore()
    finally:
        signal.signal(signal.SIGINT, previous)
        if watching is not None:
            watching.set()


def _train_rank(cfg: TrainConfig, tensors: Tensors, stop: _Stop, ctx: Dist) -> int:
    """A torchrun rank other than 0: trains its share, records and prints nothing."""
    end = None
    for event in train(cfg, tensors, stop, ctx=ctx):
        if isinstance(event, RunEnd):
            end = event
    if end is None or end.status == "failed":
        why = end.reason if end else "training ended early"
        print(f"error: rank {ctx.rank}: {why}", file=sys.stderr)
        return 1
    return 0


def _train_run(
    cfg: TrainConfig,
    tensors: Tensors,
    stop: _Stop,
    runs_dir: str | None,
    as_json: bool,
    ctx: Dist | None = None,
    run_id_file: str | None = None,
    control: SignalControl | None = None,
    owner: Owner | None = None,
) -> int:
    try:
        rec = RunRecorder.create(cfg, runs_dir)
        if run_id_file:
            atomic_write_bytes(Path(run_id_file), rec.run_id.encode())
    except (RunError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if stop.is_set() and ctx is None:  # Ctrl-C while the folder was made: leave no empty run
        shutil.rmtree(rec.path, ignore_errors=True)
        print("interrupted before training started; no run was saved", file=sys.stderr)
        return 130
    out = _Output(stop)
    target = EpochTarget(cfg.epochs)
    events = _with_reason(train(cfg, tensors, stop, ctx=ctx, epochs=target), stop, owner)
    if control is not None:  # inside the gate: a raise made while held is taken on release
        events = control.wrap(events, stop, target)
    gate = Gate.from_env()  # tests only: hold the run where a test asks
    if gate is not None:
        rec.batch_interval_s = 0  # a held run shows the batch it is held at
        events = gate.wrap(events, stop)
    events = rec.record(events, tensors.test_y)
    if not as_json:
        out.write(f"run {rec.run_id}: {json.dumps(cfg.to_dict())}\n")
    last_draw = 0.0
    for event in events:
        if isinstance(event, BatchProgress) and not as_json:
            if time.monotonic() - last_draw > 0.1 or event.batch == event.batches:
                out.write(_bar(event), sys.stderr)
                last_draw = time.monotonic()
        elif isinstance(event, EpochEnd):
            _show_epoch(event, out, as_json)
        elif isinstance(event, RunEnd):
            return _finish(rec, event, out, runs_dir, as_json)
    return 1


def _show_epoch(event: EpochEnd, out: _Output, as_json: bool) -> None:
    if as_json:  # the same row as the run's record and the app's table
        out.write(json.dumps(epoch_row(event)) + "\n")
        return
    out.write(CLEAR_LINE, sys.stderr)
    # The notebook validates on the 10,000 test images: "test" here as on every page.
    train = f"train acc {event.train_acc:.2%}  " if event.train_acc is not None else ""
    out.write(f"epoch {event.epoch}/{event.epochs}  cost {event.cost:8.2f}  {train}"
              f"test loss {event.val_loss:.4f}  test acc {event.val_acc:.2%}  "
              f"({event.seconds:.1f}s)\n")  # fmt: skip


def _finish(
    rec: RunRecorder, event: RunEnd, out: _Output, runs_dir: str | None, as_json: bool
) -> int:
    """Mark a finished run active, print the summary; returns the exit status."""
    summary: dict[str, Any] = {"run_id": rec.run_id, "status": event.status,
                               "final_val_acc": event.final_val_acc,
                               "train_s": round(event.train_s, 3)}  # fmt: skip
    if event.reason:
        summary["reason"] = event.reason
    if event.status == "finished":
        try:
            set_active(rec.run_id, runs_dir)
        except OSError as exc:  # the run itself is complete and saved: warn, don't fail
            summary["warning"] = (f"run {rec.run_id} is saved but could not be made the active "
                                  f"model: {exc.strerror or exc} ({ACTIVE_FILE})")  # fmt: skip
            out.write(f"warning: {summary['warning']}\n", sys.stderr)
    if as_json:
        out.write(json.dumps(summary) + "\n")
    else:
        acc = f"{event.final_val_acc:.2%}" if event.final_val_acc is not None else "-"
        out.write(f"{event.status}: run {rec.run_id}, test acc {acc}, {event.train_s:.1f}s"
                  + (f" - {event.reason}" if event.reason else "") + "\n")  # fmt: skip
    if event.status == "failed":
        return 1
    if out.broken:
        out.write(CLEAR_LINE, sys.stderr)  # the progress bar may still be on the line
        out.write(f"{OUTPUT_CLOSED}: run {rec.run_id} saved as {event.status} after "
                  f"{event.epochs_done} epoch(s)\n", sys.stderr)  # fmt: skip
        return 141
    return 0
