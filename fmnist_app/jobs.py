"""The process-wide training job: one training at a time per server, in a child process or a
background thread.

    jobs = job_manager()                 # one JobManager per process (st.cache_resource)
    jobs.start(cfg)                      # JobError with a readable message if it cannot start
    jobs.start(cfg, processes=2)         # or: a torchrun process group (DDP), followed the same way
    snap = jobs.snapshot()               # a copy of the state, safe to display in any session
    jobs.stop()                          # the core honours it before the next batch
    jobs.pause(); jobs.resume()          # the training waits between batches meanwhile
    jobs.extend()                        # one more epoch (while it runs or is paused)

The thread consumes ``fmnist_core.session.start_run`` events (which record the run) and never
calls Streamlit (a plain thread's ``st.*`` calls go nowhere: it has no script context). Pages
poll ``snapshot()``, which replays the run's record (an incremental reader of its
events.jsonl, the same state every page and process derives): the job itself only knows
whether it is starting, going or over. A finished run becomes the active model; stopped and
failed runs never do.

With ``processes`` >= 2 the job is a torchrun process group (fmnist_core.launch) instead of a
thread: a thread of this server waits for rank 0 to name its run, then for the group to end;
the page follows the run through its record exactly as for a thread. Stop sends SIGINT to the
group; a group that ends without an "end" in its record (a rank died, torchrun failed) is
reported as failed with the last lines it printed. Pause is a single process's only.

``mode="process"`` (the app's default, ``job_manager()``; ``FMNIST_TRAIN_MODE=thread`` for the
thread) runs a single-process training the same way, as one ``python -m fmnist_core train``
child: the server's own threads (page polls, websockets, Tornado) then never hold the GIL the
training loop waits for at each of its thousands of small torch calls. Pause, resume and one
more epoch reach it by signals (fmnist_core.control). ``mode="thread"`` (the class's default:
tests, AppTest) trains in a background thread of this process.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import streamlit as st
from streamlit import config as st_config

from fmnist_core.config import TrainConfig
from fmnist_core.data import DataError
from fmnist_core.events import Event, RunEnd
from fmnist_core.gate import Gate
from fmnist_core.launch import launch
from fmnist_core.manage import rename
from fmnist_core.record import MAX_LOSS_POINTS, LossTrace, Replay, end_abandoned
from fmnist_core.runs import RunError, runs_dir, set_active
from fmnist_core.session import start_run
from fmnist_core.train import EpochTarget, why_not_extend

__all__ = [
    "MAX_LOSS_POINTS",
    "JobError",
    "JobManager",
    "JobSnapshot",
    "LossTrace",
    "job_caption",
    "job_manager",
]
log = logging.getLogger(__name__)
ACTIVE = ("starting", "running")  # statuses of a job that is still going
MODE_ENV, MODES = "FMNIST_TRAIN_MODE", ("process", "thread")  # job_manager()'s single trainings
M_ARENA_MAX, ARENAS = -8, 2  # glibc's mallopt() option and the arenas it allows (see below)


class JobError(RuntimeError):
    """A training cannot start; the message says why and what to do."""


@dataclass(frozen=True)
class JobSnapshot:
    """What a page shows about the current (or last) training; a copy, never shared state."""

    status: str = "idle"  # idle | starting | running | finished | stopped | failed
    config: TrainConfig | None = None  # as started (the settings' summary keeps its label)
    epochs: int = 0  # the run's total of epochs: the config's, raised by "one more epoch"
    run_id: str | None = None
    started: float | None = None  # time.time() when it started
    device: str = ""
    n_train: int = 0
    epoch: int = 0  # current epoch, 1-based; 0 before the first batch
    batch: int = 0
    batches: int = 0  # batches per epoch
    images_per_s: float = 0.0
    eta_s: float = 0.0
    elapsed_s: float = 0.0
    history: tuple[dict[str, float], ...] = ()  # one events.epoch_row per finished epoch
    losses: tuple[tuple[float, float], ...] = ()  # (fractional epoch, batch loss), downsampled
    final_val_acc: float | None = None
    train_s: float | None = None
    reason: str = ""  # why it stopped or failed
    stopping: bool = False  # Stop was pressed; the run ends before its next batch
    paused: bool = False  # Pause was pressed; the training waits between batches
    best_images_per_s: float = 0.0  # the run's own best speed so far (a busy machine: far below)
    previous: tuple[dict[str, float], ...] = ()  # the epoch rows of this server's previous run
    active: bool = False  # the run was made the active model
    processes: int = 1  # 1: a thread of this server; 2+: a torchrun process group

    def __post_init__(self) -> None:
        if not self.epochs and self.config is not None:  # not raised: the config's
            object.__setattr__(self, "epochs", self.config.epochs)

    @property
    def running(self) -> bool:
        return self.status in ACTIVE

    @property
    def progress(self) -> float:
        """Share of all training batches done, 0..1."""
        if not self.config or not self.batches:
            return 0.0
        done = (self.epoch - 1) * self.batches + self.batch if self.epoch else 0
        return min(1.0, done / (self.epochs * self.batches))

    @property
    def extend_refusal(self) -> str:
        """Why "one more epoch" cannot be given now; "" when it can."""
        if not self.running or self.stopping:
            return "only a running training can get more epochs"
        if self.processes > 1:
            return "torchrun processes train the number of epochs they were started with"
        return why_not_extend(self.config, self.epochs) if self.config else "no training"


Starter = Callable[..., tuple[object, Iterator[Event]]]
Launcher = Callable[..., Any]  # (cfg, processes, runs_dir) -> a launch.ProcessJob-like object
FOLLOW_POLL_S = 0.1  # how often the follower looks for rank 0's run id


class JobManager:
    """Owns at most one training thread; every state change happens under ``_lock``."""

    def __init__(
        self,
        runs_dir: str | Path | None = None,
        starter: Starter = start_run,
        gate: Gate | None = None,
        launcher: Launcher = launch,
        mode: str = "thread",
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
        self.mode = mode  # "process": even a single training runs in a child process
        self._runs_dir = runs_dir  # None: FMNIST_RUNS_DIR or ./runs, read when a run starts
        self._starter = starter
        self.launcher = launcher  # starts a child process or torchrun group (tests: a fake)
        self._process: Any = None  # the torchrun group of the current job, if it is one
        self._gate = gate  # tests only: holds a run where a test asks (fmnist_core.gate)
        self._lock = threading.Lock()
        self._state = JobSnapshot()  # the job's own fields; the run's come from its record
        self._replay: Replay | None = None  # reads the run's events.jsonl incrementally
        self._stop = threading.Event()
        self._go = threading.Event()  # cleared while paused: the consumer pulls no event
        self._go.set()
        self._thread: threading.Thread | None = None
        self._target: EpochTarget | None = None  # the running training's total of epochs

    def snapshot(self) -> JobSnapshot:
        with self._lock:
            job, replay = self._state, self._replay
        if replay is None:  # starting, or a starter that records nowhere (tests)
            return job
        run = replay.read()
        with self._lock:  # the best speed seen by any poll: the yardstick of "machine busy"
            best = max(self._state.best_images_per_s, run.images_per_s)
            self._state = replace(self._state, best_images_per_s=best)
        status = job.status
        epochs = max(job.epochs, run.epochs)  # the job knows a raise before the log says it
        if status in ACTIVE:  # the job says whether it is over (after activation), the log how far
            status = "running" if run.started is not None else "starting"
        return replace(
            job, status=status, epochs=epochs, device=run.device, n_train=run.n_train,
            epoch=run.epoch, batch=run.batch, batches=run.batches, images_per_s=run.images_per_s,
            eta_s=run.eta_s, elapsed_s=run.elapsed_s, history=run.rows, losses=run.losses,
            final_val_acc=run.final_val_acc, train_s=run.train_s, reason=job.reason or run.reason,
            best_images_per_s=best,
        )  # fmt: skip

    def start(self, cfg: TrainConfig, name: str = "", processes: int = 1) -> str | None:
        """Start training ``cfg`` in the background; returns the run id (a torchrun job's:
        None, until its rank 0 has made the run; the snapshot then has it).

        ``processes`` >= 2: a torchrun process group of that many processes (DDP).

        ``name`` (optional) is recorded as the run's display name (a "rename" event, as the
        Runs page writes it); a name that cannot be written is logged, the run goes on.

        Raises JobError when a training is already running or the run cannot be created
        (no dataset, runs folder not writable); no thread is started then.
        """
        with self._lock:
            if self._state.running:
                raise JobError(self._busy_message())
            previous = self._state
            rows = self._replay.read().rows if self._replay is not None else ()
            self._state = JobSnapshot(
                status="starting",
                config=cfg,
                epochs=cfg.epochs,
                started=time.time(),
                previous=rows or previous.previous,
                processes=max(1, processes),
            )
            self._replay = None
            self._process = None
            self._target = EpochTarget(cfg.epochs)
            self._stop = threading.Event()
            self._go = threading.Event()
            self._go.set()
        if processes >= 2 or self.mode == "process":
            return self._start_group(cfg, name, max(1, processes), previous)
        try:
            rec, events = self._starter(cfg, self._runs_dir, self._stop, epochs=self._target)
            if self._gate:
                if hasattr(rec, "batch_interval_s"):  # a held run shows the batch it is held at
                    rec.batch_interval_s = 0
                events = self._gate.wrap(events, self._stop)
        except Exception as exc:  # noqa: BLE001 - e.g. out of memory: never stay "starting"
            if not isinstance(exc, DataError | RunError):
                log.exception("cannot start training")
            with self._lock:
                self._state = previous
            raise JobError(f"Cannot start training: {exc}") from None
        if name.strip() and getattr(rec, "path", None) is not None:
            self._name(rec.run_id, name)
        with self._lock:
            self._state = replace(self._state, run_id=rec.run_id)
            path = getattr(rec, "path", None)
            self._replay = Replay(path) if path is not None else None
            self._thread = threading.Thread(
                target=self._consume, args=(rec.run_id, events), name="fmnist-train", daemon=True
            )
            self._thread.start()
        return rec.run_id

    def _start_group(
        self, cfg: TrainConfig, name: str, processes: int, previous: JobSnapshot
    ) -> None:
        try:
            group = self.launcher(cfg, processes, self._runs_dir)
        except Exception as exc:  # noqa: BLE001 - no data, no torchrun: say so, never hang
            if not isinstance(exc, DataError | ValueError | OSError):
                log.exception("cannot start the torchrun processes")
            with self._lock:
                self._state = previous
            what = "the training process"
            if processes > 1:
                what = f"the {processes} torchrun processes"
            raise JobError(f"Cannot start {what}: {exc}") from None
        with self._lock:
            self._process = group
            self._thread = threading.Thread(target=self._follow, args=(group, name),
                                            name="fmnist-follow", daemon=True)  # fmt: skip
            self._thread.start()
        return None

    def _follow(self, group: Any, name: str) -> None:
        """Wait for rank 0's run id, follow that run's record, then wait for the group."""
        run_id = None
        while run_id is None and group.poll() is None:
            run_id = group.run_id()
            if run_id is None:
                time.sleep(FOLLOW_POLL_S)  # another process's file: nothing to wait on
        run_id = run_id or group.run_id()  # it may have appeared as the group ended
        if run_id is not None:
            replay = Replay(Path(runs_dir(self._runs_dir)) / run_id)
            with self._lock:
                self._state = replace(self._state, run_id=run_id)
                self._replay = replay
            if name.strip():
                self._name(run_id, name)
        code = group.wait()
        self._group_ended(run_id, code, group.output_tail())
        group.cleanup()

    def _group_ended(self, run_id: str | None, code: int, tail: str) -> None:
        """The job's end from the run's record; a group that died before it ended: failed."""
        with self._lock:
            replay = self._replay
        run = replay.read() if replay is not None else None
        if run is not None and run.status != "running":
            if run.status == "finished":
                self._activate(run_id)
            status, reason = run.status, ""
        else:
            status = "failed"
            where = f"run {run_id}" if run_id else "the run"
            procs = "torchrun processes" if self._state.processes > 1 else "training process"
            reason = (
                f"the {procs} ended (exit status {code}) before {where} ended - a "
                f"process died or could not start: {tail or 'no output'}"
            )
            log.error(reason)
            if run is not None:  # its writer is gone: the record says why it ended
                try:
                    end_abandoned(replay.path.parent, reason)
                except (OSError, RunError) as exc:
                    log.error("could not mark run %s failed: %s", run_id, exc)
        with self._lock:
            self._state = replace(self._state, status=status, reason=reason, stopping=False)

    def _name(self, run_id: str, name: str) -> None:
        try:
            rename(run_id, name, self._runs_dir)
        except RunError as exc:
            log.error("could not name run %s: %s", run_id, exc)

    def stop(self) -> bool:
        """Ask the running training to stop before its next batch; False when none runs."""
        with self._lock:
            if not self._state.running:
                return False
            if self._process is not None:
                self._process.stop()  # SIGINT to the group: every rank stops, rank 0 records
            self._stop.set()
            self._go.set()  # a paused training moves on to honour the stop
            self._state = replace(self._state, stopping=True, paused=False)
            return True

    def pause(self) -> bool:
        """Hold the running training between batches until ``resume``; False when none runs.

        The consumer simply does not pull the next event (the training is a generator), as
        the test gate does; Stop still works while paused."""
        with self._lock:
            if not self._state.running or self._state.stopping or self._state.processes > 1:
                return False
            if self._process is not None:
                self._process.pause()
            self._go.clear()
            self._state = replace(self._state, paused=True)
            return True

    def resume(self) -> bool:
        """Let a paused training go on; False when none is paused."""
        with self._lock:
            if not self._state.paused:
                return False
            if self._process is not None:
                self._process.resume()
            self._go.set()
            self._state = replace(self._state, paused=False)
            return True

    def extend(self) -> bool:
        """One more epoch for the running (or paused) training; False when none runs, it is
        stopping, or it cannot (``JobSnapshot.extend_refusal``; or its last epoch is over).

        The loop re-reads the target before every batch and records the new total."""
        if self.mode == "process":
            return self._extend_process()
        with self._lock:
            if self._state.extend_refusal or self._target is None:
                return False
            total = self._target.extend()
            if total is None:
                return False
            self._state = replace(self._state, epochs=total)
            return True

    def _extend_process(self) -> bool:
        """ "One more epoch" for a child process: a signal, taken before the loop pulls its next
        event (its record then says the new total). Only if it lands after the loop's final
        decision (a few ms between the last epoch's end and the run's) is it not taken: the
        run then ends with the epochs it has, as its record says."""
        snap = self.snapshot()
        with self._lock:
            process = self._process
            if snap.extend_refusal or process is None or process.processes != 1:
                return False
            if snap.status != "running":  # no record yet: its signal handlers may not be set
                return False
            process.extend()
            self._state = replace(self._state, epochs=snap.epochs + 1)
            return True

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the training thread to end (tests, shutdown); True when no thread runs."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        return thread is None or not thread.is_alive()

    def _busy_message(self) -> str:
        s = self._state
        when = time.strftime("%H:%M:%S", time.localtime(s.started)) if s.started else "?"
        return (
            f"A training is already running (run {s.run_id or '...'}, started {when}). "
            "One training at a time: it uses every CPU core. Stop it or wait for it to end."
        )

    def _consume(self, run_id: str, events: Iterator[Event]) -> None:
        end: RunEnd | None = None
        go = self._go  # this run's (start() makes a new one for the next)
        try:
            for event in events:
                go.wait()  # paused: wait here, between two batches (stop() sets it too)
                if isinstance(event, RunEnd):
                    end = event
                    if event.status == "finished":
                        self._activate(run_id)
        except Exception as exc:  # noqa: BLE001 - shown as a failed run, logged in full
            log.exception("training thread crashed")
            end = RunEnd("failed", f"training crashed: {exc}", 0, None, 0.0)
        if end is None:  # a generator that ended without RunEnd still ends the job
            end = RunEnd("failed", "training ended early", 0, None, 0.0)
        with self._lock:  # the same status as the record's; reason: only the job's own failure
            reason = "" if end.status in ("finished", "stopped") else end.reason
            self._state = replace(
                self._state, status=end.status, reason=reason, stopping=False, paused=False
            )
        release_free_memory()  # freed tensors back to the system (see below)

    def _activate(self, run_id: str) -> None:
        try:
            set_active(run_id, self._runs_dir)
        except OSError as exc:
            log.error("could not mark run %s active: %s", run_id, exc)
            return
        with self._lock:
            self._state = replace(self._state, active=True)


def _glibc() -> ctypes.CDLL | None:
    """The C library when it is glibc (it has ``malloc_trim``), else None (musl, macOS, ...)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc if hasattr(libc, "malloc_trim") and hasattr(libc, "mallopt") else None
    except OSError:
        return None


_GLIBC = _glibc()


def limit_malloc_arenas() -> None:
    """At most ``ARENAS`` glibc malloc arenas in this process (unless MALLOC_ARENA_MAX is set).

    The server has many short-lived threads that allocate: one per script run and fragment
    poll, each training's thread and, with 2+ torch threads, its OpenMP workers. glibc gives
    contending threads their own arenas (up to 8 per core), and a training's freed tensors
    stay as holes spread over them: with torch's default threads the server grew ~10 MB per
    quick training (benchmarks/server_memory.py; with MALLOC_ARENA_MAX=2 it stayed flat).
    Fewer arenas can mean more lock contention in malloc, but here only the training thread
    and its workers allocate much at a time.
    """
    if _GLIBC is not None and not os.environ.get("MALLOC_ARENA_MAX"):
        _GLIBC.mallopt(M_ARENA_MAX, ARENAS)


def release_free_memory() -> None:
    """Give the memory that a finished training freed back to the system (glibc only).

    ``malloc_trim(0)`` returns the free pages of every arena; a few milliseconds, once per
    training, after it ended (never while one runs).
    """
    if _GLIBC is not None:
        _GLIBC.malloc_trim(0)


@st.cache_resource
def job_manager() -> JobManager:
    """The one JobManager of this server process, shared by every session and page."""
    # Streamlit runs gc.collect(2) after every script run, each fragment poll included. With
    # torch, plotly and pandas loaded that holds the GIL ~0.25 s (more on a busy CPU) and the
    # training thread waits: a watched page trained 2-3x slower than the CLI; without it, at
    # the CLI's speed (measured). Python's own threshold-based collection still runs.
    st_config.set_option("runner.postScriptGC", False)
    limit_malloc_arenas()
    mode = os.environ.get(MODE_ENV) or "process"
    return JobManager(gate=Gate.from_env(), mode=mode)


def job_caption(snap: JobSnapshot) -> str | None:
    """One line for the sidebar while a training runs, else None.

    The sidebar is drawn once per page load, so it says no progress that would go stale.
    """
    if not snap.running:
        return None
    when = time.strftime("%H:%M", time.localtime(snap.started)) if snap.started else "just now"
    return f"**Training now:** run {snap.run_id or '...'}, started {when} (live on Train)"
