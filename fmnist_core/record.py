"""A run's record: the recorder appends a training's events to ``events.jsonl`` (and writes
its per-epoch files); replaying that log gives the run's state, for any reader, any process.

    rec = RunRecorder.create(cfg, runs_dir)       # runs/<id>/ with status.json "running"
    for event in rec.record(train(cfg), test_y): ...
    state = follow(rec.path)                      # RunState: status, rows, losses, progress
    state = follow(rec.path)                      # later: reads only the lines added since

Batch events are coalesced: a "batch" line at most every ``BATCH_INTERVAL_S`` and at every
epoch's last batch, carrying every batch loss since the previous line, so a long run's log
stays small and the batch-loss trace is still complete. The weights, test predictions and
labels stay ``.pt`` files, written atomically. ``status.json`` keeps what liveness needs (pid,
host, process start), written at the start and the end.

A reader ignores a torn last line (no newline yet) until it is completed, skips a garbled
complete line (a short write on a full disk), and ignores line types it does not know.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import secrets
import shutil
import socket
import stat
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from fmnist_core.atomic import atomic_torch_save, atomic_write_json
from fmnist_core.config import TrainConfig
from fmnist_core.events import (
    EVENTS_FILE,
    OPTIONAL_ROW_KEYS,
    REQUIRED_ROW_KEYS,
    BatchProgress,
    EpochEnd,
    Event,
    Extended,
    RunEnd,
    Started,
    append_event,
    batch_line,
    end_line,
    epoch_line,
    epoch_row,
    extended_line,
    started_line,
)
from fmnist_core.runfiles import STATUSES, RunError, process_start, read_json, runs_dir

log = logging.getLogger(__name__)
BATCH_INTERVAL_S = 0.1  # at most ~10 batch lines a second
MAX_LOSS_POINTS = 400  # a replayed batch-loss trace never holds more points than this
EVENTS_LIMIT = 64 * 1024 * 1024  # ~30x a 30-epoch run of batch size 16 (~2 MB)
LINE_LIMIT = 1024 * 1024  # a longer line is nonsense: skipped
CHUNK = 1 << 20
BATCH_PREFIX = b'{"type":"batch"'  # how append_event writes a batch line (fast skip)
FOLLOWED_MAX = 64  # follow() keeps this many readers


@dataclass
class LossTrace:
    """Batch losses averaged in buckets of ``stride`` batches; the stride doubles when full.

    Keeps at most ``limit`` points however long the run, evenly spread over it.
    """

    limit: int = MAX_LOSS_POINTS
    stride: int = 1
    points: list[tuple[float, float]] = field(default_factory=list)
    _sum: float = 0.0
    _count: int = 0

    def __post_init__(self) -> None:
        self.limit = max(2, self.limit - self.limit % 2)  # even: merging pairs loses nothing

    def add(self, x: float, loss: float) -> None:
        self._sum += loss
        self._count += 1
        if self._count < self.stride:
            return
        self.points.append((x, self._sum / self._count))
        self._sum, self._count = 0.0, 0
        if len(self.points) >= self.limit:  # merge neighbours: half the points, twice the stride
            pairs = zip(self.points[::2], self.points[1::2], strict=False)
            self.points = [(b[0], (a[1] + b[1]) / 2) for a, b in pairs]
            self.stride *= 2


@dataclass(frozen=True)
class RunState:
    """A run as its log tells it (a copy: safe to hand to any thread)."""

    status: str = "running"  # the log's: "running" until an "end" line (liveness: runs.py)
    reason: str = ""
    started: float | None = None  # time.time() of the "started" line; None before it
    ended: float | None = None
    device: str = ""
    n_train: int = 0
    n_test: int = 0
    parameters: int = 0
    data_source: str = ""
    world_size: int = 1  # processes that trained it (torchrun); 1 = one process
    backend: str = ""  # their torch.distributed backend; "" for one process
    epoch: int = 0  # progress: the last reported batch (1-based); 0 before the first
    batch: int = 0
    batches: int = 0  # batches per epoch
    images_per_s: float = 0.0
    eta_s: float = 0.0
    elapsed_s: float = 0.0
    epochs: int = 0  # the total raised by "epochs" lines ("one more epoch"); 0: the config's
    rows: tuple[dict[str, float], ...] = ()  # one epoch_row per finished epoch
    losses: tuple[tuple[float, float], ...] = ()  # (fractional epoch, batch loss), downsampled
    final_val_acc: float | None = None
    train_s: float | None = None
    name: str = ""  # set by a "rename" line
    notes: tuple[str, ...] = ()  # the "note" lines' texts, oldest first
    sweep_id: str = ""  # the sweep this run is a trial of ("sweep" line); "" for none
    sweep_params: tuple[tuple[str, Any], ...] = ()  # the values the sweep drew for it
    skipped: int = 0  # garbled complete lines (a short write on a full disk)
    problem: str = ""  # why the log is nonsense (the run is then broken); "" when sane


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**31


def _text(value: Any, limit: int = 4096) -> bool:
    return isinstance(value, str) and len(value) <= limit


def _scalar(value: Any) -> bool:
    return _number(value) or isinstance(value, bool) or _text(value, 100)


class Replay:
    """Reads a run's ``events.jsonl`` incrementally: each ``read()`` reads only the bytes added
    since the last one. ``losses=False`` (a listing) skips parsing the batch losses."""

    def __init__(self, run_path: str | Path, losses: bool = True) -> None:
        self.path = Path(run_path) / EVENTS_FILE
        self.losses = losses
        self.bytes_read = 0  # for tests: what was read, in all
        self._lock = threading.Lock()
        self._reset(None)

    def _reset(self, inode: int | None) -> None:
        self.offset, self._inode, self._tail, self._oversized = 0, inode, b"", False
        self._fields: dict[str, Any] = {}
        self._rows: list[dict[str, float]] = []
        self._trace = LossTrace()
        self._last_batch: bytes | None = None

    def read(self) -> RunState:
        """The state after every complete line on disk now. A missing log is an empty state."""
        with self._lock:
            try:
                self._read_new()
            except FileNotFoundError:
                pass
            except OSError as exc:
                self._fields["problem"] = f"{self.path} is unreadable: {exc.strerror or exc}"
            rows, losses = tuple(self._rows), tuple(self._trace.points)
            return RunState(**self._fields, rows=rows, losses=losses)

    def _read_new(self) -> None:
        fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        with os.fdopen(fd, "rb") as f:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                self._fields["problem"] = f"{self.path} is not a regular file"
                return
            if info.st_ino != self._inode or info.st_size < self.offset:  # replaced: start over
                self._reset(info.st_ino)
            if info.st_size > EVENTS_LIMIT:
                self._fields["problem"] = f"{self.path} is over {EVENTS_LIMIT:,} bytes"
                return
            f.seek(self.offset)
            while chunk := f.read(min(CHUNK, EVENTS_LIMIT + 1 - self.offset)):
                self.offset += len(chunk)
                self.bytes_read += len(chunk)
                self._feed(chunk)
        if self._last_batch is not None:  # listing mode: only the last batch line's progress
            self._parse(self._last_batch)
            self._last_batch = None

    def _feed(self, chunk: bytes) -> None:
        lines = (self._tail + chunk).split(b"\n")
        self._tail = lines.pop()  # the torn (not yet completed) last line, if any
        if len(self._tail) > LINE_LIMIT:  # nonsense: drop it, and its rest when it ends
            self._tail, self._oversized = b"", True
        for line in lines:
            if self._oversized or len(line) > LINE_LIMIT:
                self._oversized = False
                self._skip()
            elif not self.losses and line.startswith(BATCH_PREFIX):
                self._last_batch = line
            elif line.strip():
                self._parse(line)

    def _skip(self) -> None:
        self._fields["skipped"] = self._fields.get("skipped", 0) + 1

    def _parse(self, line: bytes) -> None:
        try:
            obj = json.loads(line)
        except (ValueError, RecursionError):  # a torn write in the middle of the log
            self._skip()
            return
        if not isinstance(obj, dict) or self._fields.get("problem"):
            return
        kind = obj.get("type")
        apply = _APPLY.get(kind) if isinstance(kind, str) else None
        if apply is not None:
            apply(self, obj)

    def _started(self, obj: dict[str, Any]) -> None:
        f = self._fields
        f["started"] = obj["time"] if _number(obj.get("time")) else None
        for key, ok in (("device", _text), ("data_source", _text), ("n_train", _count),
                        ("n_test", _count), ("parameters", _count), ("world_size", _count),
                        ("backend", _text)):  # fmt: skip
            if ok(obj.get(key)):
                f[key] = obj[key]
        if _count(obj.get("batches")):
            f["batches"] = obj["batches"]

    def _batch(self, obj: dict[str, Any]) -> None:
        e, b, n, losses = (obj.get(k) for k in ("epoch", "batch", "batches", "losses"))
        if not (all(_count(v) for v in (e, b, n)) and 0 < b <= n and isinstance(losses, list)):
            self._skip()
            return
        first = b - len(losses) + 1
        for i, loss in enumerate(losses):
            if _number(loss):
                self._trace.add(e - 1 + (first + i) / n, loss)
        self._fields.update(epoch=e, batch=b, batches=n)
        for key in ("images_per_s", "eta_s", "elapsed_s"):
            if _number(obj.get(key)):
                self._fields[key] = float(obj[key])

    def _epoch(self, obj: dict[str, Any]) -> None:
        optional_ok = all(obj.get(k) is None or _number(obj[k]) for k in OPTIONAL_ROW_KEYS)
        if not (optional_ok and all(_number(obj.get(k)) for k in REQUIRED_ROW_KEYS)):
            self._fields["problem"] = f"{self.path} has a malformed epoch line"
            return
        row = epoch_row(obj)
        self._rows.append(row)
        self._fields["elapsed_s"] = row["elapsed_s"]

    def _epochs(self, obj: dict[str, Any]) -> None:
        if _count(obj.get("epochs")) and obj["epochs"] > 0:
            self._fields["epochs"] = max(self._fields.get("epochs", 0), obj["epochs"])
        else:
            self._skip()

    def _end(self, obj: dict[str, Any]) -> None:
        status, reason = obj.get("status"), obj.get("reason", "")
        if status not in STATUSES or status == "running" or not _text(reason):
            self._fields["problem"] = f"{self.path} has an impossible end {str(status)[:40]!r}"
            return
        self._fields.update(status=status, reason=reason)
        for key in ("final_val_acc", "train_s"):
            self._fields[key] = float(obj[key]) if _number(obj.get(key)) else None
        self._fields["ended"] = obj["time"] if _number(obj.get("time")) else None

    def _rename(self, obj: dict[str, Any]) -> None:
        if _text(obj.get("name"), 200):
            self._fields["name"] = obj["name"]

    def _sweep(self, obj: dict[str, Any]) -> None:
        params = obj.get("params")
        if not _text(obj.get("sweep_id"), 200) or not isinstance(params, dict):
            self._skip()
            return
        drawn = tuple((k, v) for k, v in params.items() if _text(k, 100) and _scalar(v))
        self._fields.update(sweep_id=obj["sweep_id"], sweep_params=drawn)

    def _note(self, obj: dict[str, Any]) -> None:
        if _text(obj.get("text"), 10_000):
            self._fields["notes"] = (*self._fields.get("notes", ()), obj["text"])


_APPLY = {
    "started": Replay._started,
    "batch": Replay._batch,
    "epoch": Replay._epoch,
    "epochs": Replay._epochs,
    "end": Replay._end,
    "rename": Replay._rename,
    "note": Replay._note,
    "sweep": Replay._sweep,
}
_followed: dict[str, Replay] = {}
_followed_lock = threading.Lock()


def follow(run_path: str | Path) -> RunState:
    """The run's state now, from its log; repeated calls read only what was appended since.
    Works for a run written by any process (a second CLI, a job on another machine)."""
    key = str(Path(run_path).resolve())
    with _followed_lock:
        replay = _followed.pop(key, None) or Replay(key)
        _followed[key] = replay  # most recent last: the oldest reader goes first
        while len(_followed) > FOLLOWED_MAX:
            _followed.pop(next(iter(_followed)))
    return replay.read()


class RunRecorder:
    """Creates a run folder and records a training's events into it as they come."""

    def __init__(self, path: Path, config: TrainConfig) -> None:
        self.path = path
        self.config = config
        self.history: list[dict[str, float]] = []  # the epoch rows recorded so far
        self.info: dict[str, Any] = {}  # status.json
        self.batch_interval_s = BATCH_INTERVAL_S  # 0: a line per batch (a test holding a run)
        self._losses: list[float] = []  # batch losses not yet written
        self._last: BatchProgress | None = None
        self._last_write = -math.inf

    @property
    def run_id(self) -> str:
        return self.path.name

    @classmethod
    def create(cls, config: TrainConfig, directory: str | Path | None = None) -> RunRecorder:
        root = runs_dir(directory)
        folder = None
        try:
            root.mkdir(parents=True, exist_ok=True)
            while True:  # mkdir is atomic: two processes never get the same folder
                run_id = f"{time.strftime('%Y%m%d-%H%M%S')}-{config.name}-{secrets.token_hex(2)}"
                try:
                    (root / run_id).mkdir()
                    folder = root / run_id
                    break
                except FileExistsError:
                    continue
            rec = cls(folder, config)
            atomic_write_json(folder / "config.json", config.to_dict())
            # An (empty) log marks a run of this layout: its rows come from the log, never
            # from a history.json.
            os.close(os.open(folder / EVENTS_FILE, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o666))
            pid = os.getpid()
            rec._write_status(status="running", reason="", pid=pid, host=socket.gethostname(),
                              proc_start=process_start(pid), started=time.time())  # fmt: skip
        except OSError as exc:
            if folder is not None:  # no half-made run folder left behind
                shutil.rmtree(folder, ignore_errors=True)
            raise RunError(f"cannot create a run in {root}: {exc.strerror or exc}") from exc
        return rec

    def _write_status(self, **changes: Any) -> None:
        self.info.update(changes)
        atomic_write_json(self.path / "status.json", self.info)

    def _flush_batches(self) -> None:
        if self._losses and self._last is not None:
            append_event(self.path, batch_line(self._last, self._losses))
            self._losses = []
            self._last_write = time.monotonic()

    def _batch(self, event: BatchProgress) -> None:
        self._losses.append(event.loss)
        self._last = event
        due = time.monotonic() - self._last_write >= self.batch_interval_s
        if due or event.batch == event.batches:  # a line never spans two epochs
            self._flush_batches()

    def _save(self, event: Event) -> None:
        if isinstance(event, BatchProgress):
            self._batch(event)
            return
        self._flush_batches()
        if isinstance(event, Started):
            append_event(self.path, started_line(event))
        elif isinstance(event, EpochEnd):
            if not self.history:
                atomic_torch_save(self.path / "labels.pt", self._labels.to(torch.uint8))
            atomic_torch_save(self.path / f"epoch_{event.epoch:03d}.pt", event.state)
            atomic_torch_save(self.path / f"probs_{event.epoch:03d}.pt", event.probs.half())
            atomic_torch_save(self.path / "model.pt", event.state)
            append_event(self.path, epoch_line(event))  # after its files: a row has its files
            self.history.append(epoch_row(event))
        elif isinstance(event, Extended):
            # The config first: a log line with more epochs than config.json never exists, so
            # the run loads whatever happens between the two writes; config.json then
            # describes the run as a whole (same seed, same numbers as training that many).
            self.config = self.config.replace(epochs=event.epochs)
            atomic_write_json(self.path / "config.json", self.config.to_dict())
            append_event(self.path, extended_line(event))
        elif isinstance(event, RunEnd):
            append_event(self.path, end_line(event))
            self._write_status(
                status=event.status, reason=event.reason, ended=time.time(),
                final_val_acc=event.final_val_acc, train_s=event.train_s,
            )  # fmt: skip

    def record(self, events: Iterator[Event], test_labels: Any) -> Iterator[Event]:
        """Pass ``events`` through, saving each; a failed write ends the run as failed."""
        self._labels = test_labels
        for event in events:
            try:
                self._save(event)
            except OSError as exc:
                yield self._failed(events, exc)
                return
            yield event

    def _failed(self, events: Iterator[Event], exc: OSError) -> RunEnd:
        close = getattr(events, "close", None)
        if close:
            close()
        why = exc.strerror or exc
        reason = f"could not save run {self.run_id}: {why} (disk full or read-only?)"
        log.error(reason)
        done = len(self.history)
        end = RunEnd("failed", reason, done, self.history[-1]["val_acc"] if done else None, 0.0)
        for write in (lambda: append_event(self.path, end_line(end)),
                      lambda: self._write_status(status="failed", reason=reason)):  # fmt: skip
            with contextlib.suppress(OSError):  # the disk may refuse this too
                write()
        return end


def end_abandoned(run_path: str | Path, reason: str) -> None:
    """End, as "failed" with ``reason``, a run whose writer died before its "end" line (a
    torchrun group whose rank 0 was killed): its record and status.json then say why, instead
    of the run being listed as interrupted. Only for a writer known to be gone."""
    path = Path(run_path)
    state = Replay(path, losses=False).read()
    if state.status != "running":
        return  # it did end: its own end stays
    acc = state.rows[-1]["val_acc"] if state.rows else None
    end = RunEnd("failed", reason, len(state.rows), acc, state.elapsed_s)
    append_event(path, end_line(end))
    info = read_json(path / "status.json")
    info = info if isinstance(info, dict) else {}
    info.update(status="failed", reason=reason, ended=time.time(), final_val_acc=acc)
    atomic_write_json(path / "status.json", info)
