"""The CLI's run management: ``runs --json``, ``runs rename|note|delete|prune``, ``import``
and ``export RUN_ID FILE.zip`` (cli.py builds the parser and dispatches here).

    python -m fmnist_core runs --json                 # one summary object per line
    python -m fmnist_core runs rename RUN_ID "lr 0.05"
    python -m fmnist_core runs prune --keep 10 --dry-run
    python -m fmnist_core export RUN_ID r.zip && python -m fmnist_core import r.zip
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from fmnist_core import manage
from fmnist_core.runs import Run, RunError


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid count {text!r}: give a number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def add_runs_actions(runs_parser: argparse.ArgumentParser, folder: Any) -> None:
    """``runs`` alone lists; ``runs ACTION ...`` changes one run or prunes."""
    runs_parser.add_argument("--json", action="store_true",
                             help="one JSON object per run and line (run_id, name, status, "
                             "created, epochs_done, final_val_acc, best_val_acc, best_epoch, "
                             "train_s, config, device, notes)")  # fmt: skip
    actions = runs_parser.add_subparsers(dest="action", metavar="ACTION")
    rename = actions.add_parser("rename", help="give a run a display name (the id stays)")
    rename.add_argument("run_id")
    rename.add_argument("name", help="at most 100 characters, one line")
    note = actions.add_parser("note", help="add a note to a run")
    note.add_argument("run_id")
    note.add_argument("text", help="at most 2,000 characters")
    delete = actions.add_parser(
        "delete", help="delete a run (never one still training; if it is the active model, the "
        "newest finished run takes over)",
    )  # fmt: skip
    delete.add_argument("run_id")
    prune = actions.add_parser("prune", help="delete all but the newest runs (never the "
                               "active run or one still training)")  # fmt: skip
    prune.add_argument("--keep", type=_count, required=True, help="how many ended runs to keep")
    prune.add_argument("--dry-run", action="store_true", help="only print what would go")
    for parser in (rename, note, delete, prune):  # also accepted after the action
        parser.add_argument("--runs-dir", type=folder, default=argparse.SUPPRESS)


def _size(n: float) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:,.0f} {unit}" if unit == "bytes" else f"{n:,.1f} {unit}"
        n /= 1024
    return ""  # unreachable


def print_runs(runs: list[Run], runs_dir: Any, as_json: bool) -> None:
    if as_json:
        for run in runs:
            print(json.dumps(manage.summary(run)))
        return
    usage = manage.disk_usage(runs_dir)
    print(f"{'run':<36} {'status':<12} {'epochs':>6} {'test acc':>8} {'best':>8} {'size':>9}  name")
    for run in runs:
        row = manage.summary(run)
        acc = f"{row['final_val_acc']:.2%}" if row["final_val_acc"] is not None else "-"
        best = f"{row['best_val_acc']:.2%}" if row["best_val_acc"] is not None else "-"
        size = _size(usage.get(run.id, 0))
        print(f"{run.id:<36} {row['status']:<12} {row['epochs_done']:>6} {acc:>8} {best:>8} "
              f"{size:>9}  {' '.join(row['name'].split())}")  # fmt: skip
    print(f"disk used: {_size(sum(usage.values()))} in {len(usage)} run folder(s)")


def run_action(args: argparse.Namespace) -> int:
    """rename, note, delete or prune; errors are one line on stderr and exit 1."""
    try:
        if args.action == "rename":
            run = manage.rename(args.run_id, args.name, args.runs_dir)
            print(f"run {run.id} is now named {run.name!r}")
        elif args.action == "note":
            run = manage.add_note(args.run_id, args.text, args.runs_dir)
            print(f"run {run.id} has {len(run.notes)} note(s)")
        elif args.action == "delete":
            # Naming the run on the command line is the confirmation (the page asks for one).
            was_active = manage.delete(args.run_id, args.runs_dir, force=True)
            extra = " (it was the active model; the newest finished run is now)" * was_active
            print(f"deleted run {args.run_id}{extra}")
        else:
            return _prune(args)
    except RunError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def _prune(args: argparse.Namespace) -> int:
    doomed = manage.prune(args.keep, args.runs_dir, dry_run=args.dry_run)
    verb = "would delete" if args.dry_run else "deleted"
    for run_id in doomed:
        print(f"{verb} {run_id}")
    print(f"{len(doomed)} run(s) {verb}; the active run and runs still training are kept")
    return 0


def export_zip(args: argparse.Namespace) -> int:
    if args.epoch is not None:
        print("error: a .zip export holds every epoch; leave out --epoch", file=sys.stderr)
        return 2
    try:
        path = manage.export_zip(args.run_id, args.dest, args.runs_dir)
    except RunError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"exported run {args.run_id} (every epoch) to {path}")
    return 0


def import_zip(args: argparse.Namespace) -> int:
    try:
        run_id = manage.import_zip(args.file, args.runs_dir)
    except RunError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"imported run {run_id}")
    return 0
