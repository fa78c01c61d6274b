"""Command line: ``python -m fmnist_core train|runs|evaluate`` on the same core as the app.

Usage::

    python -m fmnist_core train --preset seed --json
    python -m fmnist_core runs
    python -m fmnist_core evaluate RUN_ID [--epoch N]
    python -m fmnist_core export RUN_ID DEST [--epoch N]
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

from fmnist_core import config as C
from fmnist_core.atomic import atomic_write_bytes, atomic_write_json
from fmnist_core.data import DataError
from fmnist_core.evaluate import accuracy, confusion_matrix, per_class_metrics
from fmnist_core.runs import RunError, find_run, scan_runs, set_active, start_run
from fmnist_core.train import BatchProgress, EpochEnd, RunEnd

# flag -> (config field, type)
TRAIN_FLAGS: dict[str, tuple[str, type]] = {
    "--epochs": ("epochs", int),
    "--lr": ("lr", float),
    "--batch-size": ("batch_size", int),
    "--image-size": ("image_size", int),
    "--conv1": ("conv1", int),
    "--conv2": ("conv2", int),
    "--optimizer": ("optimizer", str),
    "--momentum": ("momentum", float),
    "--weight-decay": ("weight_decay", float),
    "--label-smoothing": ("label_smoothing", float),
    "--seed": ("seed", int),
    "--train-subset": ("train_subset", int),
    "--device": ("device", str),
    "--arch": ("arch", str),
    "--schedule": ("schedule", str),
}


def _help(name: str) -> str:
    return C.describe_range(name).replace("%", "%%")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m fmnist_core", description="Train and inspect Fashion-MNIST CNNs."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    tr = sub.add_parser("train", help="train a model and save it as a run")
    tr.add_argument(
        "--preset",
        default="seed",
        choices=sorted(C.PRESETS),
        help="starting recipe; flags override it (default: seed). "
        + "; ".join(f"{name}: {note}" for name, note in C.PRESET_NOTES.items()).replace("%", "%%"),
    )
    for flag, (name, kind) in TRAIN_FLAGS.items():
        tr.add_argument(flag, dest=name, type=kind, default=None,
                        choices=C.CHOICES.get(name), help=_help(name))  # fmt: skip
    for name, explanation in C.SWITCHES.items():  # --augment/--no-augment, --amp/--no-amp
        tr.add_argument(f"--{name}", action=argparse.BooleanOptionalAction, default=None,
                        help=explanation)  # fmt: skip
    tr.add_argument("--data-dir", help="folder holding Fashion-MNIST (else searched)")
    tr.add_argument("--runs-dir", help="where runs are saved (default: runs/ or FMNIST_RUNS_DIR)")
    tr.add_argument("--json", action="store_true", help="one JSON object per line on stdout")
    ls = sub.add_parser("runs", help="list saved runs")
    ls.add_argument("--runs-dir")
    ev = sub.add_parser("evaluate", help="accuracy and per-class table of a saved run")
    ev.add_argument("run_id")
    ev.add_argument("--epoch", type=int, help="epoch to evaluate (default: the last)")
    ev.add_argument("--runs-dir")
    ex = sub.add_parser("export", help="copy one epoch of a run into a small run folder")
    ex.add_argument("run_id")
    ex.add_argument("dest", help="new folder, e.g. assets/default_model (must not hold a run)")
    ex.add_argument("--epoch", type=int, help="epoch to export (default: the last)")
    ex.add_argument("--runs-dir")
    return parser


def config_from_args(args: argparse.Namespace) -> C.TrainConfig:
    names = [name for name, _ in TRAIN_FLAGS.values()] + list(C.SWITCHES)
    changes: dict[str, Any] = {n: getattr(args, n) for n in names if getattr(args, n) is not None}
    base = C.preset(args.preset)
    return base.replace(name=base.name if not changes else f"{base.name}+", **changes)


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def _bar(event: BatchProgress) -> str:
    done = event.batch / event.batches
    fill = int(30 * done)
    return (
        f"\repoch {event.epoch} [{'#' * fill}{'.' * (30 - fill)}] {event.batch}/{event.batches} "
        f"loss {event.loss:.3f}  {event.images_per_s:,.0f} img/s  ETA {event.eta_s:4.0f}s "
    )


def cmd_train(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    try:
        cfg = config_from_args(args)
    except C.ConfigError as exc:
        parser.error(str(exc))
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())  # Ctrl-C: stop cleanly, keep epochs
    try:
        rec, events = start_run(cfg, args.runs_dir, stop, args.data_dir)
    except (DataError, RunError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if not args.json:
        print(f"run {rec.run_id}: {json.dumps(cfg.to_dict())}")
    last_draw = 0.0
    for event in events:
        if isinstance(event, BatchProgress) and not args.json:
            if time.monotonic() - last_draw > 0.1 or event.batch == event.batches:
                sys.stderr.write(_bar(event))
                sys.stderr.flush()
                last_draw = time.monotonic()
        elif isinstance(event, EpochEnd):
            row = {"epoch": event.epoch, "cost": round(event.cost, 4),
                   "train_loss": round(event.train_loss, 5), "val_loss": round(event.val_loss, 5),
                   "val_acc": round(event.val_acc, 5),
                   "elapsed_s": round(event.elapsed_s, 3)}  # fmt: skip
            if args.json:
                print(json.dumps(row), flush=True)
            else:
                sys.stderr.write("\r" + " " * 90 + "\r")
                print(f"epoch {event.epoch}/{event.epochs}  cost {event.cost:8.2f}  "
                      f"val loss {event.val_loss:.4f}  val acc {event.val_acc:.2%}  "
                      f"({event.seconds:.1f}s)", flush=True)  # fmt: skip
        elif isinstance(event, RunEnd):
            if event.status == "finished":
                set_active(rec.run_id, args.runs_dir)
            summary = {"run_id": rec.run_id, "status": event.status,
                       "final_val_acc": _round(event.final_val_acc, 5),
                       "train_s": round(event.train_s, 3)}  # fmt: skip
            if event.reason:
                summary["reason"] = event.reason
            if args.json:
                print(json.dumps(summary), flush=True)
            else:
                acc = f"{event.final_val_acc:.2%}" if event.final_val_acc is not None else "-"
                print(f"{event.status}: run {rec.run_id}, val acc {acc}, {event.train_s:.1f}s"
                      + (f" - {event.reason}" if event.reason else ""))  # fmt: skip
            return 0 if event.status in ("finished", "stopped") else 1
    return 1


def cmd_runs(args: argparse.Namespace) -> int:
    runs, warnings = scan_runs(args.runs_dir)
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if not runs:
        print("no runs yet - train one with: python -m fmnist_core train")
        return 0
    print(f"{'run':<36} {'status':<12} {'epochs':>6} {'val acc':>8}")
    for run in runs:
        acc = f"{run.final_val_acc:.2%}" if run.final_val_acc is not None else "-"
        print(f"{run.id:<36} {run.status:<12} {len(run.history):>6} {acc:>8}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    try:
        run = find_run(args.run_id, args.runs_dir)
        probs, labels = run.probs(args.epoch), run.labels()
    except RunError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    cm = confusion_matrix(labels, probs.argmax(1))
    epoch = args.epoch or run.epochs[-1]
    print(f"run {run.id}, epoch {epoch}: accuracy {accuracy(cm):.2%} on {int(cm.sum()):,} images")
    print(f"{'class':<12} {'precision':>9} {'recall':>7} {'F1':>6} {'support':>8}")
    for row in per_class_metrics(cm):
        print(f"{row['class']:<12} {row['precision']:>9.3f} {row['recall']:>7.3f} "
              f"{row['f1']:>6.3f} {row['support']:>8}")  # fmt: skip
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    """A run folder with only ``epoch`` (weights, test predictions, its history row)."""
    dest = Path(args.dest)
    try:
        run = find_run(args.run_id, args.runs_dir)
        epoch = args.epoch or (run.epochs or [0])[-1]
        if epoch not in run.epochs:
            raise RunError(f"run {run.id} has no epoch {epoch}; it has {run.epochs}")
        if dest.exists() and any(dest.iterdir()):
            raise RunError(f"{dest} is not empty; export into a new folder")
        dest.mkdir(parents=True, exist_ok=True)
        names = [f"epoch_{epoch:03d}.pt", f"probs_{epoch:03d}.pt", "labels.pt"]
        for name in names:
            atomic_write_bytes(dest / name, (run.path / name).read_bytes())
        row = next(r for r in run.history if int(r["epoch"]) == epoch)
        atomic_write_json(dest / "config.json", run.config.to_dict())
        atomic_write_json(dest / "history.json", [row])
        atomic_write_json(dest / "status.json", {
            "status": "finished", "reason": "", "exported_from": run.id, "epoch": epoch,
            "final_val_acc": row["val_acc"], "train_s": row["elapsed_s"],
            "data_source": run.info.get("data_source"), "parameters": run.info.get("parameters"),
        })  # fmt: skip
    except (RunError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"exported run {run.id}, epoch {epoch} (val acc {row['val_acc']:.2%}) to {dest}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "train":
        return cmd_train(args, parser)
    if args.command == "runs":
        return cmd_runs(args)
    if args.command == "export":
        return cmd_export(args)
    return cmd_evaluate(args)
