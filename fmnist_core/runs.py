"""Runs on disk: every training is a folder that rebuilds its model without recomputing.

    rec = RunRecorder.create(cfg)                 # runs/<id>/ with status "running"
    for event in rec.record(train(cfg)): ...      # saves history, weights, predictions
    runs = list_runs()                            # newest first, broken folders skipped
    model = runs[0].load_model(epoch=3)           # weights_only=True, always

Layout of ``runs/<id>/``: ``config.json``, ``status.json``, ``history.json`` (one row per
epoch), ``labels.pt`` (test labels), ``epoch_NNN.pt`` (weights) and ``probs_NNN.pt``
(test-set probabilities, float16) per epoch, ``model.pt`` (the final weights). Every write
is atomic. Every file is read with a size cap and checked (runfiles.py): a folder with an
unreadable or nonsensical file is skipped with a warning, the others keep working.

A run still "running" whose process is gone is reported as "interrupted". A run recorded on
another host cannot be checked: it shows as running until its folder has not changed for
``STALE_RUN_S`` (6 hours: longer than any epoch takes), then as interrupted. Listing removes
the ``.*.tmp`` files a writer left: at once where the writer is known to be done or dead,
else only once they are ``TEMP_STALE_S`` old (an atomic write takes well under a second).
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import secrets
import shutil
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from fmnist_core.atomic import atomic_torch_save, atomic_write_json
from fmnist_core.config import ConfigError, TrainConfig
from fmnist_core.data import load_tensors
from fmnist_core.model import build_model
from fmnist_core.runfiles import (
    HISTORY_KEYS,
    HISTORY_LIMIT,
    LABELS_LIMIT,
    PROBS_LIMIT,
    RunError,
    check_history,
    check_info,
    check_labels,
    check_probs,
    check_state_dict,
    load_weights,
    read_json,
    weights_limit,
)
from fmnist_core.safeio import FileRefused, read_regular
from fmnist_core.train import EpochEnd, Event, RunEnd, Started, train

log = logging.getLogger(__name__)
PROJECT_RUNS_DIR = Path(__file__).resolve().parent.parent / "runs"
ACTIVE_FILE = "active.json"
STALE_RUN_S = 6 * 3600  # another host's "running" run unchanged this long is interrupted
TEMP_STALE_S = 30 * 60  # a temp file this old has no live writer (writes take < 1 s)
EVENTS_FILE = "events.jsonl"  # a run's event log; renames and notes are lines in it
EVENTS_LIMIT = 64 * 1024 * 1024  # 30 epochs of batch events are a few MB
NAME_MAX, NOTE_MAX = 100, 2000  # characters of a run name / a note


def runs_dir(path: str | Path | None = None) -> Path:
    """The runs directory: the argument, else ``FMNIST_RUNS_DIR``, else ``./runs``."""
    return Path(path or os.environ.get("FMNIST_RUNS_DIR") or PROJECT_RUNS_DIR).expanduser()


def _process_start(pid: int) -> str | None:
    """The kernel's start time of ``pid`` (guards against PID reuse), None if unknown."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _alive(pid: int, proc_start: str | None) -> bool:
    """Whether the local process ``pid`` (checked by check_info) is still the run's."""
    try:
        os.kill(pid, 0)
    except PermissionError:
        pass  # it exists, owned by another user: the start time decides
    except OSError:
        return False
    return proc_start is None or _process_start(pid) in (None, proc_start)


def _idle_s(folder: Path) -> float:
    """Seconds since the run folder last changed (an atomic write renames into it)."""
    try:
        newest = max((folder / name).stat().st_mtime for name in (".", "status.json"))
    except OSError:
        return float("inf")
    return time.time() - newest


@dataclass
class Run:
    """A run folder read from disk."""

    path: Path
    config: TrainConfig
    info: dict[str, Any]  # status.json
    history: list[dict[str, float]] = field(default_factory=list)

    @property
    def id(self) -> str:
        return self.path.name

    @property
    def host(self) -> str | None:
        return self.info.get("host")

    @property
    def local(self) -> bool:
        return self.host in (None, socket.gethostname())

    @property
    def status(self) -> str:
        status = self.info["status"]
        if status != "running":
            return status
        if self.local:
            alive = _alive(self.info["pid"], self.info.get("proc_start"))
        else:  # cannot be checked from here: trust it until it has been quiet for long
            alive = _idle_s(self.path) < STALE_RUN_S
        return "running" if alive else "interrupted"

    @property
    def status_text(self) -> str:
        """The status, saying where another host's run ran ("running on HOST?")."""
        status = self.status
        if self.local or status not in ("running", "interrupted"):
            return status
        return f"running on {self.host}?" if status == "running" else f"{status} (on {self.host})"

    @property
    def epochs(self) -> list[int]:
        return [int(row["epoch"]) for row in self.history]

    @property
    def final_val_acc(self) -> float | None:
        return self.history[-1]["val_acc"] if self.history else None

    @functools.cached_property
    def _notes_and_names(self) -> tuple[list[str], list[str]]:
        return read_annotations(self.path)

    @property
    def name(self) -> str:
        """The last rename (events.jsonl), else the preset part of the run id, else ""."""
        names = self._notes_and_names[1]
        if names:
            return names[-1]
        parts = self.id.split("-")
        return "-".join(parts[2:-1]) if len(parts) >= 4 else ""

    @property
    def notes(self) -> list[str]:
        """The notes added to the run (events.jsonl), oldest first."""
        return self._notes_and_names[0]

    def label(self) -> str:
        acc = f"{self.final_val_acc:.1%}" if self.final_val_acc is not None else "-"
        return f"{self.id} ({self.status_text}, {len(self.history)} ep, {acc})"

    def _epoch(self, epoch: int | None) -> int:
        if not self.history:
            raise RunError(f"run {self.id} has no completed epoch")
        epoch = self.epochs[-1] if epoch is None else epoch
        if epoch not in self.epochs:
            raise RunError(f"run {self.id} has no epoch {epoch}; it has {self.epochs}")
        return epoch

    def load_model(self, epoch: int | None = None) -> nn.Module:
        """The model after ``epoch`` (default: the last), in eval mode, on the CPU."""
        path = self.path / f"epoch_{self._epoch(epoch):03d}.pt"
        model = build_model(self.config)
        state = check_state_dict(path, load_weights(path, weights_limit(model)))
        try:
            model.load_state_dict(state)
        except RuntimeError as exc:  # wrong shapes or keys
            raise RunError(f"{path} does not match the run's model: {exc}") from exc
        return model.eval()

    def probs(self, epoch: int | None = None) -> torch.Tensor:
        """Test-set probabilities (N, 10) float32 after ``epoch`` (default: the last)."""
        path = self.path / f"probs_{self._epoch(epoch):03d}.pt"
        n = len(self.labels())  # one row per test image
        return check_probs(path, load_weights(path, PROBS_LIMIT), n)

    def labels(self) -> torch.Tensor:
        """The test labels (N,) int64, each 0-9."""
        path = self.path / "labels.pt"
        return check_labels(path, load_weights(path, LABELS_LIMIT))


def read_annotations(folder: Path) -> tuple[list[str], list[str]]:
    """(notes, names) from the ``note``/``rename`` lines of ``folder/events.jsonl``.

    A missing, unreadable or oversized log gives none; a torn or foreign line is skipped.
    """
    try:
        blob = read_regular(folder / EVENTS_FILE, EVENTS_LIMIT)
    except (OSError, FileRefused):
        return [], []
    notes: list[str] = []
    names: list[str] = []
    fields = {"rename": ("name", names, NAME_MAX), "note": ("text", notes, NOTE_MAX)}
    for line in blob.splitlines():
        if b'"rename"' not in line and b'"note"' not in line:
            continue  # most lines are training events: skip them unparsed
        try:
            event = json.loads(line)
        except (ValueError, RecursionError):  # a torn last line, or junk
            continue
        kind = event.get("type") if isinstance(event, dict) else None
        key, found, limit = fields.get(kind if isinstance(kind, str) else "", ("", [], 0))
        if key and isinstance(event.get(key), str):
            found.append(event[key][:limit])
    return notes, names


def load_run(path: str | Path) -> Run:
    """Read one run folder; raises RunError naming the broken file."""
    path = Path(path)
    try:
        config = TrainConfig.from_dict(read_json(path / "config.json"))
    except (ConfigError, TypeError, AttributeError) as exc:  # AttributeError: not a dict
        raise RunError(f"{path / 'config.json'} is invalid: {exc}") from exc
    info = check_info(path / "status.json", read_json(path / "status.json"))
    history_path = path / "history.json"
    history = check_history(history_path, read_json(history_path, HISTORY_LIMIT), config.epochs)
    run = Run(path, config, info, history)
    for epoch in run.epochs:
        for name in (f"epoch_{epoch:03d}.pt", f"probs_{epoch:03d}.pt"):
            if not (path / name).is_file():
                raise RunError(f"{path / name} is missing")
    if run.history and not (path / "labels.pt").is_file():
        raise RunError(f"{path / 'labels.pt'} is missing")
    return run


def scan_runs(directory: str | Path | None = None) -> tuple[list[Run], list[str]]:
    """(runs newest first, one warning per broken folder that was skipped)."""
    root = runs_dir(directory)
    try:
        children = sorted(root.iterdir(), reverse=True) if root.is_dir() else []
    except OSError as exc:
        return [], [f"cannot read the runs folder {root}: {exc.strerror or exc}"]
    _remove_temp_files(root, f".{ACTIVE_FILE}.*.tmp", TEMP_STALE_S)
    runs, warnings = [], []
    for child in children:
        if not child.is_dir() or child.name.startswith("."):
            continue
        try:
            run = load_run(child)
        except RunError as exc:
            warnings.append(f"skipped run {child.name}: {exc}")
            log.warning("skipped run %s: %s", child.name, exc)
            continue
        # A run that is over (or whose process died) writes nothing more: its temp files
        # are leftovers. A running one's may be in use, unless they are long stale.
        done = run.status != "running"
        _remove_temp_files(run.path, ".*.tmp", 0 if done else TEMP_STALE_S)
        runs.append(run)
    return runs, warnings


def _remove_temp_files(folder: Path, pattern: str, min_age_s: float) -> None:
    """Delete the half-written ``.name.XXXX.tmp`` files (see atomic.py) matching ``pattern``
    that are at least ``min_age_s`` old. Never touches anything else."""
    now = time.time()
    for tmp in folder.glob(pattern):
        with contextlib.suppress(OSError):  # gone already: its writer renamed it
            if min_age_s and now - tmp.lstat().st_mtime < min_age_s:
                continue
            tmp.unlink()
            log.info("removed %s, a temp file left by a writer that is gone", tmp)


def list_runs(directory: str | Path | None = None) -> list[Run]:
    return scan_runs(directory)[0]


def find_run(run_id: str, directory: str | Path | None = None) -> Run:
    root = runs_dir(directory)
    path = root / run_id
    try:
        found = path.is_dir()
    except (OSError, ValueError):  # a name too long for the file system, or a NUL byte
        found = False
    if "/" in run_id or run_id.startswith(".") or not found:
        raise RunError(f"no run {run_id!r} in {root}")
    return load_run(path)


def set_active(run_id: str, directory: str | Path | None = None) -> None:
    atomic_write_json(runs_dir(directory) / ACTIVE_FILE, {"run_id": run_id})


def active_run(directory: str | Path | None = None) -> Run | None:
    """The run other pages use: the one marked active, else the newest finished one."""
    root = runs_dir(directory)
    try:
        return find_run(read_json(root / ACTIVE_FILE)["run_id"], root)
    except (RunError, KeyError, TypeError, AttributeError, OSError):  # OSError: name too long
        pass
    return next((r for r in list_runs(root) if r.status == "finished"), None)


class RunRecorder:
    """Creates a run folder and saves a training's events into it as they come."""

    def __init__(self, path: Path, config: TrainConfig) -> None:
        self.path = path
        self.config = config
        self.history: list[dict[str, float]] = []
        self.info: dict[str, Any] = {}

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
            rec = cls(root / run_id, config)
            atomic_write_json(rec.path / "config.json", config.to_dict())
            atomic_write_json(rec.path / "history.json", [])
            pid = os.getpid()
            rec._write_status(
                status="running", reason="", pid=pid, host=socket.gethostname(),
                proc_start=_process_start(pid), started=time.time(),
            )  # fmt: skip
        except OSError as exc:
            if folder is not None:  # no half-made run folder left behind
                shutil.rmtree(folder, ignore_errors=True)
            raise RunError(f"cannot create a run in {root}: {exc.strerror or exc}") from exc
        return rec

    def _write_status(self, **changes: Any) -> None:
        self.info.update(changes)
        atomic_write_json(self.path / "status.json", self.info)

    def _save(self, event: Event) -> None:
        if isinstance(event, Started):
            self._write_status(device=event.device, data_source=event.data_source,
                               n_train=event.n_train, parameters=event.parameters)  # fmt: skip
        elif isinstance(event, EpochEnd):
            if not self.history:
                atomic_torch_save(self.path / "labels.pt", self._labels.to(torch.uint8))
            atomic_torch_save(self.path / f"epoch_{event.epoch:03d}.pt", event.state)
            atomic_torch_save(self.path / f"probs_{event.epoch:03d}.pt", event.probs.half())
            atomic_torch_save(self.path / "model.pt", event.state)
            self.history.append({k: getattr(event, k) for k in HISTORY_KEYS})
            atomic_write_json(self.path / "history.json", self.history)
        elif isinstance(event, RunEnd):
            self._write_status(
                status=event.status, reason=event.reason, ended=time.time(),
                final_val_acc=event.final_val_acc, train_s=event.train_s,
            )  # fmt: skip

    def record(self, events: Iterator[Event], test_labels: torch.Tensor) -> Iterator[Event]:
        """Pass ``events`` through, saving each; a failed write ends the run as failed."""
        self._labels = test_labels
        for event in events:
            try:
                self._save(event)
            except OSError as exc:
                close = getattr(events, "close", None)
                if close:
                    close()
                why = exc.strerror or exc
                reason = f"could not save run {self.run_id}: {why} (disk full or read-only?)"
                log.error(reason)
                done = len(self.history)
                last_acc = self.history[-1]["val_acc"] if done else None
                with contextlib.suppress(OSError):  # the disk may refuse this too
                    self._write_status(status="failed", reason=reason)
                yield RunEnd("failed", reason, done, last_acc, 0.0)
                return
            yield event


def start_run(
    cfg: TrainConfig,
    directory: str | Path | None = None,
    stop: Any = None,
    data_dir: str | Path | None = None,
) -> tuple[RunRecorder, Iterator[Event]]:
    """Load the data (DataError if missing), create the run folder, return its events.

    The CLI and the app's job thread both consume the returned iterator to the end.
    """
    tensors = load_tensors(cfg.image_size, data_dir)
    rec = RunRecorder.create(cfg, directory)
    return rec, rec.record(train(cfg, tensors, stop), tensors.test_y)
