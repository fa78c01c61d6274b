"""Managing saved runs: name, annotate, delete, prune, measure, summarise, export and import.

    rename(run_id, "lr 0.05")                    # a "rename" line in the run's events.jsonl
    add_note(run_id, "doubled the batch size")   # a "note" line
    delete(run_id)                               # refuses a running run; force for the active
    prune(keep=10, dry_run=True)                 # the run ids it would delete
    summary(run)                                 # one dict per run (CLI --json, Runs page)
    export_zip(run_id, "r.zip"); import_zip("r.zip")   # see archive.py

No Streamlit here: the CLI and the Runs page both call these. Errors are ``RunError`` with a
message for the user; nothing is half-deleted (a folder is renamed away, then removed).
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import secrets
import shutil
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from fmnist_core.archive import export_zip, import_zip
from fmnist_core.events import append_event
from fmnist_core.runfiles import HISTORY_KEYS, RunError
from fmnist_core.runs import (
    ACTIVE_FILE,
    NAME_MAX,
    NOTE_MAX,
    Run,
    _idle_s,
    find_run,
    load_run,
    read_json,
    runs_dir,
    scan_runs,
)

__all__ = ["add_note", "delete", "disk_usage", "export_zip", "import_zip", "metrics_csv",
           "prune", "rename", "summary"]  # fmt: skip
BROKEN_QUIET_S = 60  # a broken folder changed more recently may be a run still being created


def _one_line(text: str, what: str, limit: int, allow_newlines: bool = False) -> str:
    if not isinstance(text, str):
        raise RunError(f"the {what} must be text")
    text = text.strip() if allow_newlines else " ".join(text.split())
    if not text:
        raise RunError(f"the {what} is empty")
    if len(text) > limit:
        raise RunError(f"the {what} is {len(text):,} characters; at most {limit:,} are kept")
    if not all(c.isprintable() or (allow_newlines and c in "\n\t") for c in text):
        raise RunError(f"the {what} holds control characters")
    return text


def _annotate(run_id: str, directory: str | Path | None, event: dict[str, Any]) -> Run:
    run = find_run(run_id, directory)
    try:
        append_event(run.path, {**event, "t": time.time()})
    except OSError as exc:
        raise RunError(f"cannot write to run {run.id}: {exc.strerror or exc}") from exc
    return load_run(run.path)


def rename(run_id: str, name: str, directory: str | Path | None = None) -> Run:
    """Give the run a display name (at most 100 characters, one line); the id stays."""
    return _annotate(
        run_id, directory, {"type": "rename", "name": _one_line(name, "name", NAME_MAX)}
    )


def add_note(run_id: str, text: str, directory: str | Path | None = None) -> Run:
    """Add a note (at most 2,000 characters) to the run."""
    note = _one_line(text, "note", NOTE_MAX, allow_newlines=True)
    return _annotate(run_id, directory, {"type": "note", "text": note})


def active_id(directory: str | Path | None = None) -> str | None:
    """The run id marked active in active.json (None when unset or unreadable)."""
    try:
        value = read_json(runs_dir(directory) / ACTIVE_FILE)["run_id"]
    except (RunError, KeyError, TypeError, OSError):
        return None
    return value if isinstance(value, str) else None


def _remove_folder(folder: Path) -> None:
    """Rename the folder away (a dot name: listings skip it at once), then remove it."""
    trash = folder.with_name(f".deleting-{folder.name[:80]}-{secrets.token_hex(3)}")
    try:
        folder.rename(trash)
    except OSError as exc:
        raise RunError(f"cannot delete {folder}: {exc.strerror or exc}") from exc
    shutil.rmtree(trash, ignore_errors=True)


def delete(run_id: str, directory: str | Path | None = None, force: bool = False) -> bool:
    """Delete a run's folder; returns whether it was the active model (active.json is then
    removed, so the newest finished run becomes active). A running run is refused; the
    active one needs ``force`` (the page asks for a confirmation that names it)."""
    root = runs_dir(directory)
    try:
        run: Run | None = find_run(run_id, root)
    except RunError:  # a broken folder can be deleted too, once nobody is writing it
        run, folder = None, root / run_id
        if "/" in run_id or run_id.startswith(".") or not folder.is_dir():
            raise
        if _idle_s(folder) < BROKEN_QUIET_S:
            raise RunError(f"run {run_id} is being written (changed in the last minute)") from None
    if run is not None:
        if run.status == "running":
            raise RunError(f"run {run.id} is still training; stop it before deleting it")
        folder = run.path
    was_active = active_id(root) == run_id
    if was_active and not force:
        raise RunError(f"run {run_id} is the active model; confirm (--force) to delete it")
    _remove_folder(folder)
    if was_active:
        with contextlib.suppress(OSError):
            (root / ACTIVE_FILE).unlink()
    return was_active


def _age_key(run: Run) -> tuple[float, str]:
    """Newest last: the start time (ids made in the same second sort by their random part)."""
    return run.info.get("started") or 0.0, run.id


def prune(keep: int, directory: str | Path | None = None, dry_run: bool = False) -> list[str]:
    """Delete all but the ``keep`` newest ended runs; never the active run nor a running one.

    Returns the ids deleted (with ``dry_run``: that would be). Broken folders are left alone.
    """
    if not isinstance(keep, int) or keep < 0:
        raise RunError("--keep must be 0 or more")
    runs, _ = scan_runs(directory)
    ended = sorted((r for r in runs if r.status != "running"), key=_age_key, reverse=True)
    active = active_id(directory)
    doomed = [r.id for r in ended[keep:] if r.id != active]
    if not dry_run:
        for run_id in doomed:
            delete(run_id, directory)
    return doomed


def disk_usage(directory: str | Path | None = None) -> dict[str, int]:
    """Bytes used by each run folder (its files), by run id."""
    root = runs_dir(directory)
    usage: dict[str, int] = {}
    with contextlib.suppress(OSError):
        for child in root.iterdir():
            if child.name.startswith(".") or not child.is_dir():
                continue
            total = 0
            with contextlib.suppress(OSError):
                for entry in os.scandir(child):
                    with contextlib.suppress(OSError):
                        total += entry.stat(follow_symlinks=False).st_size
            usage[child.name] = total
    return usage


def _created(run: Run) -> str | None:
    """When the run started, ISO 8601 local time: status.json, else the id's timestamp."""
    started = run.info.get("started")
    if started is not None:
        return datetime.fromtimestamp(started).isoformat(timespec="seconds")
    with contextlib.suppress(ValueError):
        return datetime.strptime(run.id[:15], "%Y%m%d-%H%M%S").isoformat(timespec="seconds")
    return None


def summary(run: Run) -> dict[str, Any]:
    """The run in one flat dict (JSON-ready): accuracies, best epoch, time and config."""
    rows = run.history
    best = max(rows, key=lambda row: row["val_acc"]) if rows else None  # first of equals
    train_s = run.info.get("train_s")
    if train_s is None and rows:
        train_s = rows[-1]["elapsed_s"]
    return {
        "run_id": run.id, "name": run.name, "status": run.status, "created": _created(run),
        "epochs_done": len(rows), "final_val_acc": run.final_val_acc,
        "best_val_acc": best["val_acc"] if best else None,
        "best_epoch": int(best["epoch"]) if best else None,
        "train_s": train_s, "config": run.config.to_dict(),
        "device": run.info.get("device"), "world_size": run.info.get("world_size", 1),
        "backend": run.info.get("backend", ""), "sweep_id": run.info.get("sweep_id", ""),
        "notes": run.notes,
    }  # fmt: skip


def _cell(text: str) -> str:
    """A name a spreadsheet would run as a formula (=, +, -, @) is quoted with an apostrophe."""
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text


def metrics_csv(runs: list[Run]) -> str:
    """Every epoch of every run, one CSV row each, with the run's name and config."""
    fields = list(runs[0].config.to_dict()) if runs else []
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["run_id", "name", "status", *HISTORY_KEYS, *fields])
    for run in runs:
        config = run.config.to_dict()
        for row in run.history:
            values = [row.get(k) for k in HISTORY_KEYS] + [config.get(f) for f in fields]
            writer.writerow([run.id, _cell(run.name), run.status, *values])
    return out.getvalue()
