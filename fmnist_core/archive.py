"""A run as one portable zip: ``export_zip(run_id, "r.zip")`` and ``import_zip("r.zip")``.

The archive holds one folder ``<run_id>/`` with the run's files: config.json, status.json,
history.json, events.jsonl, labels.pt, model.pt and epoch_NNN.pt / probs_NNN.pt per epoch.

An archive may come from anywhere, so an import checks before it adds anything: at most
``MAX_ENTRIES`` entries declaring at most ``IMPORT_LIMIT`` bytes (each within its file's
cap), only the known file names inside one folder (no absolute path, no ``..``, no link),
then every file is extracted into a hidden folder and loaded as a run would be (JSON fields
checked, weights and predictions through the bounded ``weights_only`` loaders). Only a run
that passes is renamed into the runs folder, under a new id if its id is taken.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import stat
import tempfile
import zipfile
import zlib
from pathlib import Path
from typing import IO, Any

from fmnist_core.atomic import atomic_writer
from fmnist_core.config import RANGES
from fmnist_core.events import EVENTS_FILE
from fmnist_core.model import build_model
from fmnist_core.record import EVENTS_LIMIT
from fmnist_core.runfiles import (
    HISTORY_LIMIT,
    JSON_LIMIT,
    RunError,
    check_state_dict,
    load_weights,
    weights_limit,
)
from fmnist_core.runs import Run, find_run, load_run, runs_dir

MAX_EPOCHS = int(RANGES["epochs"][1])
MAX_ENTRIES = 2 * MAX_EPOCHS + 8  # two files per epoch + the run's own files (+ folders)
PT_LIMIT = 256 * 1024 * 1024  # one .pt entry (the largest model's weights are ~10 MB)
IMPORT_LIMIT = 2 * 1024**3  # all entries together, uncompressed
RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+=-]{0,119}")
FILE_LIMITS = {"config.json": JSON_LIMIT, "status.json": JSON_LIMIT,
               "history.json": HISTORY_LIMIT, EVENTS_FILE: EVENTS_LIMIT}  # fmt: skip
EPOCH_FILE = re.compile(r"(epoch|probs)_\d{3}\.pt|labels\.pt|model\.pt")
ZIP_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError, ValueError,
              NotImplementedError, RuntimeError, OSError)  # fmt: skip


def _limit(name: str) -> int | None:
    """The most bytes the run file ``name`` may hold; None for a name no run has."""
    if name in FILE_LIMITS:
        return FILE_LIMITS[name]
    return PT_LIMIT if EPOCH_FILE.fullmatch(name) else None


def _exported_info(run: Run) -> dict[str, Any]:
    """status.json as the archive carries it: the derived status (never "running"), so an
    interrupted run stays interrupted wherever it is imported."""
    status = run.status
    if status == "running":
        raise RunError(f"run {run.id} is still training; export it once it has ended")
    info = {**run.info, "status": status}
    if status == "interrupted" and not info.get("reason"):
        info["reason"] = "its training process ended before the run finished"
    return info


def export_zip(run_id: str, file: str | Path, directory: str | Path | None = None) -> Path:
    """Write the whole run (every epoch) into the zip ``file`` (atomically); returns it."""
    run = find_run(run_id, directory)
    info = _exported_info(run)
    file = Path(file)
    names = sorted(p.name for p in run.path.iterdir() if _limit(p.name) and p.is_file())
    try:
        with atomic_writer(file) as out, zipfile.ZipFile(out, "w") as zf:
            for name in names:
                if name == "status.json":
                    zf.writestr(f"{run.id}/{name}", json.dumps(info, indent=2),
                                zipfile.ZIP_DEFLATED)  # fmt: skip
                    continue
                # Deflated, .pt files too: a stored .pt is itself a zip, and a cut-off archive
                # then opened as that inner zip instead of failing as damaged.
                zf.write(run.path / name, f"{run.id}/{name}", zipfile.ZIP_DEFLATED)
    except OSError as exc:
        raise RunError(f"cannot write {file}: {exc.strerror or exc}") from exc
    return file


def _open_source(file: str | Path | IO[bytes]) -> IO[bytes]:
    """A file object to read the archive from; a path must be a regular file (a FIFO would
    block the reader forever)."""
    if not isinstance(file, (str, Path)):
        return file
    try:
        fd = os.open(file, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise RunError(f"cannot read {file}: {exc.strerror or exc}") from exc
    handle = os.fdopen(fd, "rb")
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        handle.close()
        raise RunError(f"{file} is not a regular file")
    return handle


def _check_entries(zf: zipfile.ZipFile) -> tuple[str, list[zipfile.ZipInfo]]:
    """(the run id, the file entries) once every entry is a known run file within its caps."""
    entries = zf.infolist()
    if len(entries) > MAX_ENTRIES:
        raise RunError(f"it has {len(entries):,} entries; a run has at most {MAX_ENTRIES}")
    folders, files, seen, total = set(), [], set(), 0
    for info in entries:
        folder, _, name = info.filename.partition("/")
        if info.is_dir() and not name.strip("/"):
            folders.add(folder)
            continue
        mode = info.external_attr >> 16
        limit = _limit(name)
        if limit is None or "\\" in info.filename or stat.S_IFMT(mode) not in (0, stat.S_IFREG):
            raise RunError(f"it holds {info.filename[:80]!r}, which is not a run file")
        if info.file_size > limit:
            raise RunError(f"{name} declares {info.file_size:,} bytes, more than "
                           f"the {limit:,} such a file may hold")  # fmt: skip
        if name in seen:
            raise RunError(f"it holds {name} twice")
        seen.add(name)
        folders.add(folder)
        total += info.file_size
        files.append(info)
    if len(folders) != 1 or not RUN_ID.fullmatch(next(iter(folders))):
        raise RunError("it must hold exactly one run folder (as `export` writes)")
    if total > IMPORT_LIMIT:
        raise RunError(f"it unpacks to {total:,} bytes, more than {IMPORT_LIMIT:,}")
    return folders.pop(), files


def _extract(zf: zipfile.ZipFile, info: zipfile.ZipInfo, dest: Path) -> None:
    """Copy one entry; zipfile stops at the declared size and checks the CRC."""
    with zf.open(info) as src, open(dest, "xb") as out:
        shutil.copyfileobj(src, out, 1 << 20)


def _check_run(run: Run) -> None:
    """Load what the pages will load: every epoch's weights and predictions, the labels."""
    if run.info["status"] == "running":
        raise RunError("the archive holds a run still training (status running)")
    run.labels()
    for epoch in run.epochs:
        run.load_model(epoch)
        run.probs(epoch)
    final = run.path / "model.pt"
    if final.exists():
        model = build_model(run.config)
        state = check_state_dict(final, load_weights(final, weights_limit(model)))
        try:
            model.load_state_dict(state)
        except RuntimeError as exc:
            raise RunError(f"{final} does not match the run's model: {exc}") from exc


def _move_in(folder: Path, root: Path, run_id: str) -> str:
    """Rename ``folder`` to ``root/run_id``, or to a fresh id if that one is taken."""
    stem = re.sub(r"-[0-9a-f]{4}$", "", run_id)
    candidate = run_id
    for _ in range(100):
        if not (root / candidate).exists():
            try:
                os.rename(folder, root / candidate)  # fails on a non-empty folder: no clash
                return candidate
            except OSError:
                pass
        candidate = f"{stem}-{secrets.token_hex(2)}"
    raise RunError(f"cannot find a free run id for {run_id} in {root}")


def import_zip(file: str | Path | IO[bytes], directory: str | Path | None = None) -> str:
    """Check the archive ``file`` and add its run; returns the new run's id."""
    source = str(file) if isinstance(file, (str, Path)) else getattr(file, "name", "the archive")
    root = runs_dir(directory)
    with _open_source(file) as handle:
        try:
            with zipfile.ZipFile(handle) as zf:
                run_id, entries = _check_entries(zf)
                return _unpack(zf, entries, root, run_id)
        except RunError as exc:
            raise RunError(f"refused {source}: {exc}") from exc
        except ZIP_ERRORS as exc:
            raise RunError(f"refused {source}: not a readable run archive (damaged?): "
                           f"{exc}") from exc  # fmt: skip


def _unpack(zf: zipfile.ZipFile, entries: list[zipfile.ZipInfo], root: Path, run_id: str) -> str:
    """Extract into a hidden folder, check it as a run, then move it in under a free id."""
    try:
        root.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=".import-", dir=root))
    except OSError as exc:
        raise RunError(f"cannot write to the runs folder {root}: {exc.strerror or exc}") from exc
    try:
        for info in entries:
            _extract(zf, info, work / info.filename.partition("/")[2])
        try:
            _check_run(load_run(work))
        except RunError as exc:  # name the file inside the archive, not the hidden folder
            raise RunError(str(exc).replace(str(work), run_id)) from exc
        return _move_in(work, root, run_id)
    finally:
        shutil.rmtree(work, ignore_errors=True)  # gone already once moved in
