"""Runs on disk (storage only: starting a training is session.py's job).

    runs = list_runs()                            # newest first, broken folders skipped (cached)
    model = runs[0].load_model(epoch=3)           # weights_only=True, always

Layout of ``runs/<id>/`` (record.py writes it): ``config.json``, ``status.json`` (pid, host:
liveness), ``events.jsonl`` (the log every state is replayed from: epoch rows, losses, name,
notes), ``labels.pt`` (test labels), ``epoch_NNN.pt`` (weights) and ``probs_NNN.pt``
(test-set probabilities, float16) per epoch, ``model.pt`` (the final weights). Runs written
before the log have ``history.json`` (one row per epoch) instead. Every file is written
atomically but the log, which is appended to line by line.
Every file is read with a size cap and checked (runfiles.py): a folder with an
unreadable or nonsensical file is skipped with a warning, the others keep working.

A run still "running" whose process is gone is reported as "interrupted". A run recorded on
another host cannot be checked: it shows as running until its folder has not changed for
``STALE_RUN_S`` (6 hours: longer than any epoch takes), then as interrupted. Listing removes
the ``.*.tmp`` files a writer left: at once where the writer is known to be done or dead,
else only once they are ``TEMP_STALE_S`` old (an atomic write takes well under a second).
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import socket
import stat
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from fmnist_core.atomic import atomic_write_json
from fmnist_core.config import ConfigError, TrainConfig
from fmnist_core.events import EVENTS_FILE
from fmnist_core.model import build_model
from fmnist_core.record import Replay, RunRecorder, RunState
from fmnist_core.runfiles import (
    HISTORY_LIMIT,
    LABELS_LIMIT,
    PROBS_LIMIT,
    PROJECT_RUNS_DIR,
    RunError,
    check_history,
    check_info,
    check_labels,
    check_probs,
    check_state_dict,
    load_weights,
    process_alive,
    read_json,
    runs_dir,
    weights_limit,
)

__all__ = ["PROJECT_RUNS_DIR", "Run", "RunError", "RunRecorder", "RunState", "runs_dir"]
log = logging.getLogger(__name__)
ACTIVE_FILE = "active.json"
STALE_RUN_S = 6 * 3600  # another host's "running" run unchanged this long is interrupted
TEMP_STALE_S = 30 * 60  # a temp file this old has no live writer (writes take < 1 s)
NAME_MAX, NOTE_MAX = 100, 2000  # characters of a run name / a note (manage.py checks them)


def __getattr__(name: str) -> Any:
    """``runs.start_run`` moved to session.py (storage does not import the training loop);
    the old name still resolves, importing the loop only when used."""
    if name == "start_run":
        return importlib.import_module("fmnist_core.session").start_run
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _idle_s(folder: Path) -> float:
    """Seconds since the run folder last changed (an atomic write renames into it)."""
    try:
        newest = max(
            (folder / name).stat().st_mtime
            for name in (".", "status.json", EVENTS_FILE)
            if name != EVENTS_FILE or (folder / name).exists()
        )
    except OSError:
        return float("inf")
    return time.time() - newest


@dataclass
class Run:
    """A run folder read from disk."""

    path: Path
    config: TrainConfig
    info: dict[str, Any]  # status.json, with what the log says (device, status at its end)
    history: list[dict[str, float]] = field(default_factory=list)  # events.epoch_row shape
    name: str = ""  # the last rename, else the preset part of the id ("" for an old run)
    notes: list[str] = field(default_factory=list)  # every note, oldest first

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
            alive = process_alive(self.info["pid"], self.info.get("proc_start"))
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

    @property
    def best_epoch(self) -> int | None:
        """The epoch of the best validation accuracy (the first of equals)."""
        if not self.history:
            return None
        return int(max(self.history, key=lambda row: (row["val_acc"], -row["epoch"]))["epoch"])

    def label(self) -> str:
        acc = f"{self.final_val_acc:.1%}" if self.final_val_acc is not None else "-"
        return f"{self.id} ({self.status_text}, {len(self.history)} ep, {acc})"

    def checked_epoch(self, epoch: int | None) -> int:
        """``epoch`` (default: the last) if the run has it, else RunError saying which it has."""
        if not self.history:
            raise RunError(f"run {self.id} has no completed epoch")
        epoch = self.epochs[-1] if epoch is None else epoch
        if epoch not in self.epochs:
            raise RunError(f"run {self.id} has no epoch {epoch}; it has {self.epochs}")
        return epoch

    def load_model(self, epoch: int | None = None) -> nn.Module:
        """The model after ``epoch`` (default: the last), in eval mode, on the CPU."""
        path = self.path / f"epoch_{self.checked_epoch(epoch):03d}.pt"
        model = build_model(self.config)
        state = check_state_dict(path, load_weights(path, weights_limit(model)))
        try:
            model.load_state_dict(state)
        except RuntimeError as exc:  # wrong shapes or keys
            raise RunError(f"{path} does not match the run's model: {exc}") from exc
        return model.eval()

    def probs(self, epoch: int | None = None) -> torch.Tensor:
        """Test-set probabilities (N, 10) float32 after ``epoch`` (default: the last)."""
        path = self.path / f"probs_{self.checked_epoch(epoch):03d}.pt"
        n = len(self.labels())  # one row per test image
        return check_probs(path, load_weights(path, PROBS_LIMIT), n)

    def labels(self) -> torch.Tensor:
        """The test labels (N,) int64, each 0-9."""
        path = self.path / "labels.pt"
        return check_labels(path, load_weights(path, LABELS_LIMIT))


def _preset_part(run_id: str) -> str:
    """The preset in a run id ``YYYYMMDD-HHMMSS-<preset>-<hex>``: a never-renamed run's name."""
    parts = run_id.split("-")
    return "-".join(parts[2:-1]) if len(parts) >= 4 else ""


def load_run(path: str | Path) -> Run:
    """Read one run folder; raises RunError naming the broken file.

    The epoch rows, name and notes come from replaying ``events.jsonl``; a run written before
    that log existed has ``history.json`` instead.
    """
    path = Path(path)
    try:
        config = TrainConfig.from_dict(read_json(path / "config.json"))
    except (ConfigError, TypeError, AttributeError) as exc:  # AttributeError: not a dict
        raise RunError(f"{path / 'config.json'} is invalid: {exc}") from exc
    info = check_info(path / "status.json", read_json(path / "status.json"))
    has_log = os.path.lexists(path / EVENTS_FILE)
    state = Replay(path, losses=False).read() if has_log else RunState()
    if state.problem:
        raise RunError(state.problem)
    if state.started is None and (not has_log or os.path.lexists(path / "history.json")):
        history_path = path / "history.json"  # a run older than the log (maybe renamed since)
        history = check_history(history_path, read_json(history_path, HISTORY_LIMIT), config.epochs)
    else:
        history = check_history(path / EVENTS_FILE, list(state.rows), config.epochs)
        info = _with_log(info, state)
    run = Run(path, config, info, history, state.name or _preset_part(path.name), list(state.notes))
    for epoch in run.epochs:
        for name in (f"epoch_{epoch:03d}.pt", f"probs_{epoch:03d}.pt"):
            if not (path / name).is_file():
                raise RunError(f"{path / name} is missing")
    if run.history and not (path / "labels.pt").is_file():
        raise RunError(f"{path / 'labels.pt'} is missing")
    return run


def _with_log(info: dict[str, Any], state: RunState) -> dict[str, Any]:
    """status.json completed by what the log says of the training. The status stays
    status.json's: it is what liveness is checked against (pid, host), written at the end
    right after the log's "end" line, and the one a failure to write the log still reaches."""
    return {**info, "device": state.device, "data_source": state.data_source,
            "n_train": state.n_train, "parameters": state.parameters,
            "world_size": state.world_size, "backend": state.backend,
            "sweep_id": state.sweep_id, "sweep_params": dict(state.sweep_params)}  # fmt: skip


# The listing's cache: a run folder is re-read only when one of its stamps changed. Atomic
# writes rename into the folder (its mtime changes); events.jsonl grows in place; the JSON
# files may be edited in place by hand. Liveness (Run.status) is checked on every access.
_STAMPED = (EVENTS_FILE, "status.json", "config.json", "history.json")
CACHE_MAX = 10_000  # run folders remembered, all runs folders together
_cache: dict[Path, list[Any]] = {}  # folder -> [stamp, Run or RunError, temp files cleaned]
_cache_lock = threading.Lock()


def _stamp(folder: Path) -> tuple | None:
    """What changes when the folder's record changes; None when it is not a folder."""
    try:
        info = folder.stat()
    except (OSError, ValueError):
        return None
    if not stat.S_ISDIR(info.st_mode):
        return None
    parts: list[Any] = [info.st_ino, info.st_mtime_ns]
    for name in _STAMPED:
        try:
            f = os.stat(folder / name, follow_symlinks=False)
            parts += (f.st_ino, f.st_mtime_ns, f.st_size)
        except OSError:
            parts.append(None)
    return tuple(parts)


def _cached_load(folder: Path) -> list[Any] | None:
    """The cache entry of ``folder``, (re)loaded if its stamp changed; None: not a folder."""
    stamp = _stamp(folder)
    if stamp is None:
        return None
    with _cache_lock:
        entry = _cache.get(folder)
    if entry is not None and entry[0] == stamp:
        return entry
    try:
        loaded: Run | RunError = load_run(folder)
    except RunError as exc:
        loaded = exc
    entry = [stamp, loaded, False]
    with _cache_lock:
        if len(_cache) >= CACHE_MAX:
            _cache.clear()
        _cache[folder] = entry
    return entry


def clear_cache() -> None:
    with _cache_lock:
        _cache.clear()


def scan_runs(directory: str | Path | None = None) -> tuple[list[Run], list[str]]:
    """(runs newest first, one warning per broken folder that was skipped).

    Cached: only folders whose record changed since the last listing are read again.
    """
    root = runs_dir(directory)
    try:
        children = sorted(root.iterdir(), reverse=True) if root.is_dir() else []
    except OSError as exc:
        return [], [f"cannot read the runs folder {root}: {exc.strerror or exc}"]
    _remove_temp_files(root, f".{ACTIVE_FILE}.*.tmp", TEMP_STALE_S)
    runs, warnings = [], []
    for child in children:
        if child.name.startswith("."):
            continue
        entry = _cached_load(child)
        if entry is None:
            continue
        if isinstance(entry[1], RunError):
            warnings.append(f"skipped run {child.name}: {entry[1]}")
            if not entry[2]:  # warn in the log once, not at every listing
                log.warning("skipped run %s: %s", child.name, entry[1])
                entry[2] = True
            continue
        run = entry[1]
        _clean_temp_files(run, entry)
        runs.append(run)
    _forget_missing(root, set(children))
    return runs, warnings


def _clean_temp_files(run: Run, entry: list[Any]) -> None:
    """A run that is over (or whose process died) writes nothing more: its temp files are
    leftovers, removed at once (and once). A running one's may be in use, unless long stale."""
    if entry[2]:
        return
    done = run.status != "running"
    _remove_temp_files(run.path, ".*.tmp", 0 if done else TEMP_STALE_S)
    entry[2] = done


def _forget_missing(root: Path, present: set[Path]) -> None:
    with _cache_lock:
        for folder in [f for f in _cache if f.parent == root and f not in present]:
            del _cache[folder]


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
    entry = _cached_load(path)
    if entry is None:
        raise RunError(f"no run {run_id!r} in {root}")
    if isinstance(entry[1], RunError):
        raise entry[1]
    return entry[1]


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
