"""The ``sweep`` command: hyperparameter sweeps on Ray Tune (fmnist_core/sweep.py).

    python -m fmnist_core sweep --preset quick --param lr=loguniform:1e-3:0.3 \\
        --param batch_size=choice:64,128,256 --trials 8 [--scheduler asha] [--address auto]

Every trial is a run in the runs folder tagged with the sweep's id (``runs --json`` shows
``sweep_id``). Without Ray installed it says how to install it (exit status 1).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Callable
from typing import Any, NoReturn

from fmnist_core import sweep
from fmnist_core.config import ConfigError, TrainConfig
from fmnist_core.data import DataError, locate

DESCRIPTION = "run a hyperparameter sweep on Ray Tune; every trial is a run tagged with its id"


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid count {text!r}: give a number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {value}")
    return value


def _share(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid number {text!r}") from None
    if not 0 <= value <= 8:
        raise argparse.ArgumentTypeError(f"must be between 0 and 8, got {value}")
    return value


def add_parser(parser: argparse.ArgumentParser, add_config_flags: Callable) -> None:
    add_config_flags(parser)  # the base config: a preset and flags, as for train
    parser.add_argument("--param", action="append", default=[], metavar="NAME=KIND:ARGS",
                        help=sweep.SYNTAX.replace("--param NAME=KIND:ARGS with ", "")
                        + "; e.g. lr=loguniform:1e-3:0.3 (repeat for each field)")  # fmt: skip
    parser.add_argument("--trials", type=_positive, default=4, help="configs to try (default 4)")
    parser.add_argument("--scheduler", choices=sweep.SCHEDULERS, default="none",
                        help="asha: stop trials whose accuracy trails early (they end "
                        "'stopped', reason 'stopped early ...')")  # fmt: skip
    parser.add_argument("--address", help="a Ray cluster to run on (ray://HOST:10001 or auto); "
                        "default: a local Ray on this machine")  # fmt: skip
    parser.add_argument("--cpus", type=_positive,
                        help="CPUs of the local Ray (default: all): at most this many trials "
                        "at a time with --cpus-per-trial 1")  # fmt: skip
    parser.add_argument("--cpus-per-trial", type=_positive, default=1,
                        help="CPUs (torch threads) per trial (default 1)")  # fmt: skip
    parser.add_argument("--gpus-per-trial", type=_share, default=0,
                        help="GPUs per trial, e.g. 1 or 0.5 (default 0); use with --device "
                        "auto or cuda")  # fmt: skip
    parser.add_argument("--json", action="store_true",
                        help="one JSON object per trial, then a summary")  # fmt: skip


def cmd_sweep(
    args: argparse.Namespace,
    config_from_args: Callable[[argparse.Namespace], TrainConfig],
    refuse: Callable[[str], NoReturn],
) -> int:
    try:
        base = config_from_args(args)
        params = sweep.parse_params(args.param, base)
    except (ConfigError, sweep.SweepError) as exc:
        refuse(str(exc))
    if not params:
        refuse(f"nothing to sweep: give at least one {sweep.SYNTAX}")
    if args.address is None:  # a cluster's nodes have their own data: not checked from here
        try:
            locate(args.data_dir)
        except DataError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    try:
        sweep.import_ray()
        with contextlib.redirect_stdout(sys.stderr):  # Ray's progress tables: stdout stays ours
            result = sweep.run_sweep(
                base, params, args.trials, scheduler=args.scheduler, address=args.address,
                cpus=args.cpus, cpus_per_trial=args.cpus_per_trial,
                gpus_per_trial=args.gpus_per_trial, runs_dir=args.runs_dir,
                data_dir=args.data_dir,
            )  # fmt: skip
    except sweep.SweepError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except ConnectionError as exc:  # a --address that cannot be reached
        print(f"error: cannot reach the Ray cluster {args.address}: {exc}", file=sys.stderr)
        return 1
    _print(result, args.json)
    return 0 if any(t.status in ("finished", "stopped") for t in result.trials) else 1


def _print(result: sweep.SweepResult, as_json: bool) -> None:
    best = result.best
    if as_json:
        for t in result.trials:
            print(json.dumps({"sweep_id": result.sweep_id, "run_id": t.run_id, "params": t.params,
                              "status": t.status, "final_val_acc": t.val_acc,
                              "epochs_done": t.epochs}))  # fmt: skip
        summary: dict[str, Any] = {"sweep_id": result.sweep_id, "trials": len(result.trials),
                                   "best_run_id": best.run_id if best else None,
                                   "best_val_acc": best.val_acc if best else None}  # fmt: skip
        print(json.dumps(summary))
        return
    print(f"sweep {result.sweep_id}: {len(result.trials)} trial(s)")
    for t in sorted(result.trials, key=lambda t: -(t.val_acc or 0)):
        acc = f"{t.val_acc:.2%}" if t.val_acc is not None else "-"
        values = ", ".join(f"{k}={_fmt(v)}" for k, v in t.params.items())
        print(f"  {t.run_id or '(no run)':<36} {t.status:<9} {t.epochs:>3} ep  {acc:>7}  {values}")
    if best:
        print(f"best: run {best.run_id}, test acc {best.val_acc:.2%}")


def _fmt(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)
