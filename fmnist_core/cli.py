"""Command line: ``python -m fmnist_core train|runs|evaluate|export|import|explain|sweep``.

Usage::

    python -m fmnist_core train --preset seed --json
    torchrun --standalone --nproc-per-node 2 -m fmnist_core train --preset quick   # DDP
    python -m fmnist_core runs [--json]
    python -m fmnist_core runs rename|note|delete|prune ...   (see cli_runs.py)
    python -m fmnist_core evaluate RUN_ID [--epoch N]
    python -m fmnist_core export RUN_ID DEST [--epoch N]      # DEST.zip: the whole run
    python -m fmnist_core import FILE.zip
    python -m fmnist_core explain RUN_ID --test-index N [--epoch E] [--out DIR]  # PNGs
    python -m fmnist_core sweep --preset quick --param lr=loguniform:1e-3:0.3 --trials 8

No command ends in a traceback: errors are one line on stderr, with the exit status in
``EXIT_STATUS`` (also shown by ``--help``).
"""

from __future__ import annotations

import argparse
import errno
import sys
from pathlib import Path
from typing import Any

from fmnist_core import cli_explain, cli_runs, cli_sweep
from fmnist_core import config as C
from fmnist_core.atomic import atomic_write_bytes, atomic_write_json
from fmnist_core.cli_train import discard, run_training
from fmnist_core.evaluate import accuracy, confusion_matrix, per_class_metrics
from fmnist_core.runs import Run, RunError, find_run, runs_dir, scan_runs

EXIT_STATUS = """exit status:
  0    done; for train: the run finished, or was stopped with Ctrl-C (its epochs are kept).
       A finished run that could not be made the active model (active.json not written)
       still exits 0: the run is saved; a warning goes to stderr and into the JSON summary.
  1    an error (one line on stderr), or the run failed
  2    bad arguments (with the allowed values)
  130  Ctrl-C before training started: nothing is saved, no run folder is left
  141  the output was closed (e.g. `| head -1`): a training still going stops, and its run is
       saved as "stopped" with reason "output closed"
"""

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


def _folder(text: str) -> str:
    """``--runs-dir ""`` is a mistake (an unset variable?), not a request for the default."""
    if not text.strip():
        raise argparse.ArgumentTypeError("must name a folder (leave the flag out for the default)")
    return text


def _epoch(text: str) -> int:
    """Epochs count from 1 for ``evaluate`` and ``export`` alike (0 is refused by both)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid epoch {text!r}: give a number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"epochs are numbered from 1, got {value}")
    return value


def _subparser(sub: Any, name: str, text: str) -> argparse.ArgumentParser:
    return sub.add_parser(name, help=text, description=text, epilog=EXIT_STATUS,
                          formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip


def add_config_flags(parser: argparse.ArgumentParser) -> None:
    """--preset, a flag per config field, --data-dir, --runs-dir (train and sweep)."""
    parser.add_argument(
        "--preset",
        default="seed",
        choices=sorted(C.PRESETS),
        help="starting recipe; flags override it (default: seed). "
        + "; ".join(f"{name}: {note}" for name, note in C.PRESET_NOTES.items()).replace("%", "%%"),
    )
    for flag, (name, kind) in TRAIN_FLAGS.items():
        parser.add_argument(flag, dest=name, type=kind, default=None,
                            choices=C.CHOICES.get(name), help=_help(name))  # fmt: skip
    for name, explanation in C.SWITCHES.items():  # --augment/--no-augment, --amp/--no-amp
        parser.add_argument(f"--{name.replace('_', '-')}", dest=name, default=None,
                            action=argparse.BooleanOptionalAction, help=explanation)  # fmt: skip
    parser.add_argument("--data-dir", type=_folder,
                        help="folder holding Fashion-MNIST (else searched)")  # fmt: skip
    parser.add_argument(
        "--runs-dir", type=_folder, help="where runs are saved (default: runs/ or FMNIST_RUNS_DIR)"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m fmnist_core", description="Train and inspect Fashion-MNIST CNNs.",
        epilog=EXIT_STATUS, formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    sub = parser.add_subparsers(dest="command", required=True)
    tr = _subparser(sub, "train", "train a model and save it as a run")
    add_config_flags(tr)
    tr.add_argument("--json", action="store_true", help="one JSON object per line on stdout")
    tr.add_argument("--run-id-file", type=_folder, metavar="FILE",
                    help="write the new run's id to FILE once its folder exists (for a "
                    "launcher following the run)")  # fmt: skip
    tr.add_argument("--control-signals", action="store_true",
                    help="SIGTSTP pauses before the next batch, SIGCONT resumes, SIGUSR1 adds "
                    "one more epoch (for a launcher: the Train page's buttons)")  # fmt: skip
    ls = _subparser(sub, "runs", "list saved runs (with the disk they use), or manage one")
    ls.add_argument("--runs-dir", type=_folder)
    cli_runs.add_runs_actions(ls, _folder)
    ev = _subparser(sub, "evaluate", "accuracy and per-class table of a saved run")
    ex = _subparser(sub, "export", "copy one epoch of a run into a small run folder, or the "
                    "whole run into a portable FILE.zip")  # fmt: skip
    ev.add_argument("run_id")
    ex.add_argument("run_id")
    ex.add_argument("dest", type=_folder,
                    help="new folder, e.g. assets/default_model (must not hold a run); or a "
                    "file ending in .zip: every epoch, for `import`")  # fmt: skip
    im = _subparser(sub, "import", "add a run from a zip written by `export RUN_ID FILE.zip`")
    im.add_argument("file", help="the .zip (checked: size, file names, weights)")
    im.add_argument("--runs-dir", type=_folder)
    for p, what in ((ev, "evaluate"), (ex, "export")):
        p.add_argument("--epoch", type=_epoch, help=f"epoch to {what}, from 1 (default: the last)")
        p.add_argument("--runs-dir", type=_folder)
    cli_explain.add_parser(sub, _subparser, _folder, _epoch)
    cli_sweep.add_parser(_subparser(sub, "sweep", cli_sweep.DESCRIPTION), add_config_flags)
    return parser


def config_from_args(args: argparse.Namespace) -> C.TrainConfig:
    names = [name for name, _ in TRAIN_FLAGS.values()] + list(C.SWITCHES)
    changes: dict[str, Any] = {n: getattr(args, n) for n in names if getattr(args, n) is not None}
    base = C.preset(args.preset)
    return base.replace(name=base.name if not changes else f"{base.name}+", **changes)


def _error(message: object) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 1


def _describe(exc: OSError) -> str:
    """One readable line for an OSError, a very long path shortened to its two ends."""
    name = str(exc.filename or "")
    if len(name) > 120:
        name = f"{name[:60]}...{name[-40:]} ({len(name):,} characters)"
    hint = "; use a shorter name or folder" if exc.errno == errno.ENAMETOOLONG else ""
    return f"{exc.strerror or exc}: {name}{hint}" if name else f"{exc.strerror or exc}{hint}"


def cmd_runs(args: argparse.Namespace) -> int:
    try:  # a folder that exists but cannot be read is an error here (pages only warn)
        runs_dir(args.runs_dir).stat()
    except FileNotFoundError:
        pass
    except OSError as exc:
        return _error(f"cannot read the runs folder: {_describe(exc)}")
    if args.action:
        return cli_runs.run_action(args)
    runs, warnings = scan_runs(args.runs_dir)
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if not runs and not args.json:
        print("no runs yet - train one with: python -m fmnist_core train")
        return 0
    cli_runs.print_runs(runs, args.runs_dir, args.json)
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    try:
        run = find_run(args.run_id, args.runs_dir)
        epoch = run.checked_epoch(args.epoch)  # evaluate and export alike
        probs, labels = run.probs(epoch), run.labels()
    except RunError as exc:
        return _error(exc)
    cm = confusion_matrix(labels, probs.argmax(1))
    print(f"run {run.id}, epoch {epoch}: accuracy {accuracy(cm):.2%} on {int(cm.sum()):,} images")
    print(f"{'class':<12} {'precision':>9} {'recall':>7} {'F1':>6} {'support':>8}")
    for row in per_class_metrics(cm):
        print(f"{row['class']:<12} {row['precision']:>9.3f} {row['recall']:>7.3f} "
              f"{row['f1']:>6.3f} {row['support']:>8}")  # fmt: skip
    return 0


def _exported_status(run: Run) -> dict[str, str]:
    """The source's status and reason: an export never turns a failed, stopped or
    interrupted run into a finished one."""
    status = run.status
    if status == "running":
        raise RunError(f"run {run.id} is still training; export it once it has ended")
    reason = str(run.info.get("reason") or "")
    if status == "interrupted" and not reason:
        reason = "its training process ended before the run finished"
    return {"status": status, "reason": reason}


def cmd_export(args: argparse.Namespace) -> int:
    """A run folder with only ``epoch`` (weights, test predictions, its history row)."""
    dest = Path(args.dest)
    try:
        run = find_run(args.run_id, args.runs_dir)
        epoch = run.checked_epoch(args.epoch)  # evaluate and export alike
        status = _exported_status(run)
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
            **status, "exported_from": run.id, "epoch": epoch,
            "final_val_acc": row["val_acc"], "train_s": row["elapsed_s"],
            "data_source": run.info.get("data_source"), "parameters": run.info.get("parameters"),
        })  # fmt: skip
    except RunError as exc:
        return _error(exc)
    except OSError as exc:
        return _error(_describe(exc))
    print(f"exported run {run.id}, epoch {epoch} (test acc {row['val_acc']:.2%}, "
          f"{status['status']}) to {dest}")  # fmt: skip
    return 0


def cmd_train(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    try:
        cfg = config_from_args(args)
    except C.ConfigError as exc:
        parser.error(str(exc))
    return run_training(
        cfg,
        args.data_dir,
        args.runs_dir,
        args.json,
        parser.error,
        args.run_id_file,
        args.control_signals,
    )


def _run_command(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    if args.command == "train":
        return cmd_train(args, parser)
    if args.command == "runs":
        return cmd_runs(args)
    if args.command == "export":
        is_zip = args.dest.lower().endswith(".zip")
        return cli_runs.export_zip(args) if is_zip else cmd_export(args)
    if args.command == "import":
        return cli_runs.import_zip(args)
    if args.command == "explain":
        return cli_explain.cmd_explain(args, _error)
    if args.command == "sweep":
        return cli_sweep.cmd_sweep(args, config_from_args, parser.error)
    return cmd_evaluate(args)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code = _run_command(args, parser)
        sys.stdout.flush()  # a closed pipe shows up here, not as "Exception ignored" at exit
        return code
    except KeyboardInterrupt:  # only before a training starts (it then has its own handler)
        print("interrupted by Ctrl-C; nothing was saved", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `runs | head -1`: the reader has what it wanted
        discard(sys.stdout)
        return 141
    except OSError as exc:  # e.g. a --runs-dir too long for the file system
        return _error(_describe(exc))
