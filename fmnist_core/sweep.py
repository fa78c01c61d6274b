"""Hyperparameter sweeps on Ray Tune: every trial is a normal run, tagged with the sweep's id.

    space = parse_params(["lr=loguniform:1e-3:0.3", "batch_size=choice:64,128,256"], base)
    result = run_sweep(base, space, trials=8, scheduler="asha")   # needs Ray (requirements-ray)

Each trial trains one config drawn from the space into the runs folder (the same recorder as
``train``), with a "sweep" line in its record (sweep id, trial, the drawn values), and reports
each epoch's validation accuracy to Tune; a scheduler (ASHA) may then stop it early: the run
ends "stopped", reason ``STOPPED_EARLY``. Ray is imported only by ``run_sweep``; the rest
(parsing, one trial) runs without it. A local Ray uses this machine's CPUs (one trial per CPU
by default); ``address`` joins a Ray cluster, whose nodes must all see the runs folder and the
data (a shared file system) and have this package installed.
"""

from __future__ import annotations

import os
import secrets
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fmnist_core.config import CHOICES, FRACTIONAL, RANGES, SWITCHES, ConfigError, TrainConfig
from fmnist_core.events import EpochEnd, Event, RunEnd, append_event
from fmnist_core.record import RunRecorder
from fmnist_core.runfiles import runs_dir as resolve_runs_dir

KINDS = ("loguniform", "uniform", "randint", "choice")
SYNTAX = (
    "--param NAME=KIND:ARGS with KIND one of loguniform:LOW:HIGH, uniform:LOW:HIGH, "
    "randint:LOW:HIGH (whole numbers, both included) or choice:A,B,C"
)
SCHEDULERS = ("none", "asha")
STOPPED_EARLY = "stopped early by the sweep's scheduler (ASHA): its accuracy trailed"
SWEEP_ENDED = "stopped: the sweep ended before this trial (interrupted?)"  # no scheduler
INSTALL_RAY = (
    "sweeps need Ray Tune, which is not installed: pip install -r requirements-ray.txt "
    "(or: pip install 'ray[tune]')"
)
METRIC = "val_acc"


class SweepError(ValueError):
    """A sweep cannot run as asked; the message says what to change."""


@dataclass(frozen=True)
class Param:
    """One swept field: how its values are drawn."""

    name: str
    kind: str  # one of KINDS
    values: tuple[Any, ...]  # (low, high) for the ranges, the options for choice

    def tune_domain(self, tune: Any) -> Any:
        if self.kind == "loguniform":
            return tune.loguniform(*self.values)
        if self.kind == "uniform":
            return tune.uniform(*self.values)
        if self.kind == "randint":
            return tune.randint(self.values[0], self.values[1] + 1)  # Tune's high is excluded
        return tune.choice(list(self.values))


def _number(name: str, text: str) -> float | int:
    try:
        value = float(text)
    except ValueError:
        raise SweepError(f"--param {name}: {text!r} is not a number") from None
    if name not in FRACTIONAL:
        if value != int(value):
            raise SweepError(f"--param {name}: {name} is a whole number, not {text}")
        return int(value)
    return value


def _option(name: str, text: str) -> Any:
    if name in SWITCHES:
        if text.lower() not in ("true", "false"):
            raise SweepError(f"--param {name}: choose from true,false, not {text!r}")
        return text.lower() == "true"
    if name in CHOICES and isinstance(CHOICES[name][0], str):
        return text
    return _number(name, text)


def parse_param(text: str, base: TrainConfig) -> Param:
    """``lr=loguniform:1e-3:0.3`` -> Param; SweepError naming the problem and the syntax."""
    name, sep, spec = text.partition("=")
    kind, _, args = spec.partition(":")
    name, kind = name.strip(), kind.strip()
    if not sep or kind not in KINDS or not args:
        raise SweepError(f"cannot read --param {text!r}; use {SYNTAX}")
    sweepable = sorted({*RANGES, *CHOICES, *SWITCHES} - {"device", "seed"})
    if name not in sweepable:
        raise SweepError(f"--param {name}: not a field that can be swept; choose from "
                         f"{', '.join(sweepable)}")  # fmt: skip
    if kind == "choice":
        values = tuple(_option(name, v.strip()) for v in args.split(",") if v.strip())
        if not values:
            raise SweepError(f"--param {name}: choice needs at least one value")
    else:
        if name not in RANGES:
            raise SweepError(f"--param {name}: {kind} needs a numeric field; use choice:A,B")
        if kind == "uniform" and name not in FRACTIONAL:
            raise SweepError(f"--param {name}: a whole number; use randint:LOW:HIGH or choice")
        parts = args.split(":")
        if len(parts) != 2:
            raise SweepError(f"--param {name}: {kind} takes LOW:HIGH, got {args!r}")
        low, high = (_number(name, p) for p in parts)
        if not low < high:
            raise SweepError(f"--param {name}: LOW ({low}) must be below HIGH ({high})")
        if kind == "loguniform" and low <= 0:
            raise SweepError(f"--param {name}: loguniform needs LOW > 0, got {low}")
        values = (low, high)
    for value in values:  # each end of a range, each option: a valid config (its range named)
        try:
            base.replace(**{name: value})
        except ConfigError as exc:
            raise SweepError(f"--param {name}: {exc}") from None
    return Param(name, kind, values)


def parse_params(texts: list[str], base: TrainConfig) -> list[Param]:
    params = [parse_param(text, base) for text in texts]
    names = [p.name for p in params]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise SweepError(f"--param {', '.join(twice)} given more than once")
    return params


def new_sweep_id() -> str:
    return f"sweep-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}"


class Trial:
    """One trial's run, an epoch at a time (Ray-free; the Ray trainable drives it).

    ``step()`` trains one epoch and returns what Tune gets; ``stop()`` ends a run still going
    as "stopped" with ``STOPPED_EARLY`` (Tune stops a trial its scheduler gave up on)."""

    def __init__(self, settings: dict[str, Any]) -> None:
        from fmnist_core.data import load_tensors  # noqa: PLC0415 - torch only in a trial
        from fmnist_core.train import train  # noqa: PLC0415

        base = TrainConfig.from_dict(settings["base"])
        drawn = {name: settings[name] for name in settings["swept"]}
        self.cfg = base.replace(**drawn)
        tensors = load_tensors(self.cfg.image_size, settings.get("data_dir"))
        self.rec = RunRecorder.create(self.cfg, settings["runs_dir"])
        append_event(self.rec.path, {"type": "sweep", "sweep_id": settings["sweep_id"],
                                     "trial": settings.get("trial", ""),
                                     "params": drawn})  # fmt: skip
        self._stop = threading.Event()
        self._events: Iterator[Event] = self.rec.record(
            _early(train(self.cfg, tensors, self._stop), settings.get("scheduler", "asha")),
            tensors.test_y,
        )
        self.end: RunEnd | None = None
        self.acc = 0.0

    @property
    def run_id(self) -> str:
        return self.rec.run_id

    def step(self) -> dict[str, Any]:
        """Train until the next epoch ends (or the run ends): the metrics for Tune."""
        for event in self._events:
            if isinstance(event, EpochEnd):
                self.acc = event.val_acc
                done = event.epoch == event.epochs
                if done:  # take the RunEnd now: the run is finished before Tune hears of it
                    self._drain()
                return self._result(event.epoch, done)
            if isinstance(event, RunEnd):
                self.end = event
                return self._result(event.epochs_done, True)
        return self._result(0, True)

    def _drain(self) -> None:
        for event in self._events:
            if isinstance(event, RunEnd):
                self.end = event

    def _result(self, epoch: int, done: bool) -> dict[str, Any]:
        status = self.end.status if self.end else "running"
        return {METRIC: self.acc, "epoch": epoch, "run_id": self.run_id, "status": status,
                "done": done}  # fmt: skip

    def stop(self) -> None:
        """End the run if it is still going (before its next batch)."""
        if self.end is None:
            self._stop.set()
            self._drain()


def _early(events: Iterator[Event], scheduler: str) -> Iterator[Event]:
    """A "stopped" end says who stopped it: only Tune does, for its scheduler (ASHA) or
    because the sweep itself ended early (Ctrl-C)."""
    for event in events:
        if isinstance(event, RunEnd) and event.status == "stopped":
            why = STOPPED_EARLY if scheduler == "asha" else SWEEP_ENDED
            event = RunEnd("stopped", why, event.epochs_done, event.final_val_acc,
                           event.train_s)  # fmt: skip
        yield event


@dataclass(frozen=True)
class TrialResult:
    run_id: str
    params: dict[str, Any]
    status: str  # the run's: finished, stopped (early), failed
    val_acc: float | None
    epochs: int


@dataclass(frozen=True)
class SweepResult:
    sweep_id: str
    trials: tuple[TrialResult, ...]

    @property
    def best(self) -> TrialResult | None:
        scored = [t for t in self.trials if t.val_acc is not None]
        return max(scored, key=lambda t: t.val_acc) if scored else None


def import_ray() -> Any:
    """The ``ray`` module, or SweepError saying how to install it."""
    try:
        import ray  # noqa: PLC0415 - optional: only sweeps need it
        from ray import tune  # noqa: F401, PLC0415
    except ImportError:
        raise SweepError(INSTALL_RAY) from None
    return ray


def _trainable(tune: Any) -> type:
    """The Ray Tune class API around ``Trial``: ``step`` = one epoch, ``cleanup`` = Tune is
    done with the trial (finished, or stopped by the scheduler)."""

    class FmnistTrial(tune.Trainable):
        def setup(self, config: dict[str, Any]) -> None:
            import torch  # noqa: PLC0415

            torch.set_num_threads(max(1, int(config.get("threads", 1))))
            self.trial = Trial({**config, "trial": self.trial_id})

        def step(self) -> dict[str, Any]:
            return self.trial.step()

        def cleanup(self) -> None:
            self.trial.stop()

        # The run folder is the trial's record (weights per epoch): nothing else to save.
        def save_checkpoint(self, checkpoint_dir: str) -> dict[str, Any]:
            return {"run_id": self.trial.run_id}

        def load_checkpoint(self, checkpoint: Any) -> None:
            raise SweepError("a sweep's trials do not resume from checkpoints")

    return FmnistTrial


def _settings(
    base: TrainConfig,
    params: list[Param],
    runs: str | Path | None,
    data_dir: str | Path | None,
    sweep_id: str,
    cpus_per_trial: int,
) -> dict:
    """What every trial gets besides its drawn values (plain JSON: Tune copies it around)."""
    data = str(Path(data_dir).resolve()) if data_dir else os.environ.get("FMNIST_DATA_DIR")
    return {"base": base.to_dict(), "swept": [p.name for p in params], "sweep_id": sweep_id,
            "runs_dir": str(resolve_runs_dir(runs).resolve()), "data_dir": data,
            "threads": cpus_per_trial}  # fmt: skip


def run_sweep(
    base: TrainConfig,
    params: list[Param],
    trials: int,
    scheduler: str = "none",
    address: str | None = None,
    cpus: int | None = None,
    cpus_per_trial: int = 1,
    gpus_per_trial: float = 0,
    runs_dir: str | Path | None = None,
    data_dir: str | Path | None = None,
) -> SweepResult:
    """Run ``trials`` trials of ``params`` around ``base`` on Ray Tune; every trial a run.

    ``address``: a Ray cluster (``ray://host:10001`` or ``auto``); else a local Ray with
    ``cpus`` CPUs (default: all of this machine's)."""
    if not params:
        raise SweepError(f"nothing to sweep: give at least one {SYNTAX}")
    if not 1 <= trials <= 1000:
        raise SweepError(f"--trials must be between 1 and 1000, got {trials}")
    if scheduler not in SCHEDULERS:
        raise SweepError(f"--scheduler must be one of {', '.join(SCHEDULERS)}")
    ray = import_ray()
    from ray import tune  # noqa: PLC0415
    from ray.tune.schedulers import ASHAScheduler  # noqa: PLC0415
    from ray.tune.search import BasicVariantGenerator  # noqa: PLC0415

    sweep_id = new_sweep_id()
    settings = _settings(base, params, runs_dir, data_dir, sweep_id, cpus_per_trial)
    space = {**settings, "scheduler": scheduler,
             **{p.name: p.tune_domain(tune) for p in params}}  # fmt: skip
    asha = None
    if scheduler == "asha":
        asha = ASHAScheduler(max_t=base.epochs, grace_period=1, reduction_factor=2)
    init = {"address": address} if address else {"num_cpus": cpus}
    ray.init(**init, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        with tempfile.TemporaryDirectory(prefix="fmnist-tune-") as storage:
            tuner = tune.Tuner(
                tune.with_resources(_trainable(tune), {"cpu": cpus_per_trial,
                                                       "gpu": gpus_per_trial}),
                param_space=space,
                tune_config=tune.TuneConfig(
                    metric=METRIC, mode="max", num_samples=trials, scheduler=asha,
                    search_alg=BasicVariantGenerator(random_state=base.seed),
                ),
                run_config=tune.RunConfig(
                    name=sweep_id, storage_path=storage, verbose=0,
                    checkpoint_config=tune.CheckpointConfig(checkpoint_at_end=False),
                ),
            )  # fmt: skip
            grid = tuner.fit()
    finally:
        ray.shutdown()
    return _collect(sweep_id, grid, params)


def _collect(sweep_id: str, grid: Any, params: list[Param]) -> SweepResult:
    """The trials' runs as their records tell (the record, not Tune, says how each ended)."""
    from fmnist_core.runs import RunError, find_run  # noqa: PLC0415

    out = []
    for result in grid:
        metrics = result.metrics or {}
        run_id = metrics.get("run_id")
        drawn = {p.name: (result.config or {}).get(p.name) for p in params}
        if not run_id:  # the trial failed before its run existed
            out.append(TrialResult("", drawn, "failed", None, 0))
            continue
        try:
            run = find_run(run_id, (result.config or {}).get("runs_dir"))
            out.append(TrialResult(run_id, drawn, run.status, run.final_val_acc,
                                   len(run.history)))  # fmt: skip
        except RunError:
            out.append(TrialResult(run_id, drawn, "failed", None, 0))
    return SweepResult(sweep_id, tuple(out))
