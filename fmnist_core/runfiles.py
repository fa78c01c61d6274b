"""What the files of a run folder may hold, checked before anything uses them.

A run folder may come from another version, another machine, or a hostile hand, so every
file is read with a size cap (only regular files: a FIFO never hangs a reader) and every
field is checked; anything unreadable or nonsensical raises ``RunError`` naming the file.
runs.py turns that into "skipped with a warning" for a listing, or a message for a page.

    info = check_info(path, read_json(path))          # status.json
    probs = check_probs(path, load_weights(path, PROBS_LIMIT), n)
"""

from __future__ import annotations

import math
import os
import pickle
from pathlib import Path
from typing import Any

import torch
from torch import nn

from fmnist_core.data import MAX_IMAGES, NUM_CLASSES
from fmnist_core.events import EPOCH_ROW_KEYS, REQUIRED_ROW_KEYS, epoch_row
from fmnist_core.safeio import FileRefused, torch_load
from fmnist_core.safeio import read_json as _read_json_capped

PROJECT_RUNS_DIR = Path(__file__).resolve().parent.parent / "runs"
# "interrupted" is usually derived (a "running" run whose process is gone); `export` saves it.
STATUSES = ("running", "finished", "stopped", "failed", "interrupted")
# Epoch rows (history.json, runs written before events.jsonl, holds them too): a CSV's columns.
HISTORY_KEYS = EPOCH_ROW_KEYS
JSON_LIMIT = 64 * 1024  # config.json, status.json, active.json: a few hundred bytes each
HISTORY_LIMIT = 1024 * 1024  # at most 30 rows of ~250 bytes
PID_MAX = 2**31 - 1  # pid_t is a C int: larger numbers are no process (os.kill overflows)
MAX_TEST = MAX_IMAGES["test"]
LABELS_LIMIT = MAX_TEST * 8  # int64 at most (saved as uint8)
PROBS_LIMIT = MAX_TEST * NUM_CLASSES * 4  # float32 at most (saved as float16)
NUMBERS = ("started", "ended", "train_s", "final_val_acc")  # optional status.json numbers


class RunError(RuntimeError):
    """A run cannot be read or written; the message names the run and the file."""


def runs_dir(path: str | Path | None = None) -> Path:
    """The runs directory: the argument, else ``FMNIST_RUNS_DIR``, else ``./runs``."""
    return Path(path or os.environ.get("FMNIST_RUNS_DIR") or PROJECT_RUNS_DIR).expanduser()


def _stat(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat after the command's name (state first), None if unknown."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return fields if len(fields) > 19 else None


def process_start(pid: int) -> str | None:
    """The kernel's start time of ``pid`` (guards against PID reuse), None if unknown."""
    fields = _stat(pid)
    return fields[19] if fields else None


def process_alive(pid: int, start: str | None) -> bool:
    """Whether the local process ``pid`` still runs and is the one that started at ``start``
    (None: any); an exited process that its parent has not reaped yet (a zombie) is not."""
    try:
        os.kill(pid, 0)
    except PermissionError:
        pass  # it exists, owned by another user: its start time decides
    except OSError:
        return False
    fields = _stat(pid)
    if fields is None:  # no /proc here: the signal's answer is all there is
        return True
    return fields[0] != "Z" and start in (None, fields[19])


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def read_json(path: Path, limit: int = JSON_LIMIT) -> Any:
    try:
        return _read_json_capped(path, limit)
    except FileNotFoundError:
        raise RunError(f"{path} is missing") from None
    except FileRefused as exc:
        raise RunError(str(exc)) from exc
    except OSError as exc:
        raise RunError(f"{path} is unreadable: {exc.strerror or exc}") from exc


def load_weights(path: Path, limit: int) -> Any:
    """A size-capped ``torch.load`` with ``weights_only=True``: a foreign pickle is refused,
    never run; a file declaring more than ``limit`` bytes is refused before it is read."""
    try:
        return torch_load(path, limit)
    except FileNotFoundError:
        raise RunError(f"{path} is missing") from None
    except FileRefused as exc:
        raise RunError(f"refused to load {exc}") from exc
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError) as exc:
        why = f"not a plain weights file or corrupt ({exc.__class__.__name__})"
        raise RunError(f"refused to load {path}: {why}") from exc


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _finite(value: Any) -> bool:
    return _is_number(value) and math.isfinite(value)


def check_info(path: Path, info: Any) -> dict[str, Any]:
    """status.json: a known status, a usable pid/host for a running run, sane numbers."""
    if not isinstance(info, dict):
        raise RunError(f"{path} is not a JSON object")
    status, pid, host = info.get("status"), info.get("pid"), info.get("host")
    if status not in STATUSES:
        raise RunError(f"{path} has an unknown status {_short(status)}")
    if not isinstance(info.get("reason", ""), str):
        raise RunError(f"{path} has a reason that is not text")
    if (status == "running" or pid is not None) and not (
        isinstance(pid, int) and not isinstance(pid, bool) and 0 < pid <= PID_MAX
    ):
        raise RunError(f"{path} has an impossible process id {_short(pid)}")
    if (status == "running" or host is not None) and not (
        isinstance(host, str) and 0 < len(host) <= 255 and host.isprintable()
    ):
        raise RunError(f"{path} has an impossible host name {_short(host)}")
    start = info.get("proc_start")
    if start is not None and not (isinstance(start, str) and start.isdigit() and len(start) < 30):
        raise RunError(f"{path} has an impossible process start {_short(start)}")
    for key in NUMBERS:
        if info.get(key) is not None and not _finite(info[key]):
            raise RunError(f"{path} has an impossible {key} {_short(info[key])}")
    return info


def check_history(path: Path, history: Any, max_epochs: int) -> list[dict[str, float]]:
    """Epoch rows (history.json, or replayed from events.jsonl): finite numbers, epochs
    1..max_epochs strictly increasing; returned in ``events.epoch_row``'s shape (an old row
    without train accuracy has None there)."""
    if not isinstance(history, list) or len(history) > max_epochs:
        raise RunError(f"{path} is not a list of at most {max_epochs} epochs")
    last = 0
    for row in history:
        if not isinstance(row, dict) or not all(_finite(row.get(k)) for k in REQUIRED_ROW_KEYS):
            raise RunError(f"{path} has malformed rows")
        epoch = row["epoch"]
        if epoch != int(epoch) or not last < epoch <= max_epochs:
            raise RunError(f"{path} has an impossible epoch {_short(epoch)}")
        for key in ("val_acc", "train_acc"):
            value = row.get(key)
            if value is not None and not (_finite(value) and 0 <= value <= 1):
                raise RunError(f"{path} has an impossible accuracy {_short(value)}")
        last = epoch
    return [epoch_row(row) for row in history]


def weights_limit(model: nn.Module) -> int:
    """Bytes a weights file of ``model`` may declare: twice its float32 state, plus room for
    the pickled names (a file of another model is refused by load_state_dict anyway)."""
    state = model.state_dict().values()
    return 2 * sum(t.numel() * t.element_size() for t in state) + 256 * 1024


def check_state_dict(path: Path, obj: Any) -> dict[str, torch.Tensor]:
    """Weights: a dict of named tensors, all finite (NaN weights would predict nonsense)."""
    if not isinstance(obj, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()
    ):
        raise RunError(f"{path} does not hold model weights (a dict of named tensors)")
    for name, tensor in obj.items():
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise RunError(f"{path} holds NaN or infinite values (in {name}); it is unusable")
    return obj


def check_labels(path: Path, obj: Any) -> torch.Tensor:
    """Test labels: 1..10,000 whole class numbers 0-9."""
    if (
        not isinstance(obj, torch.Tensor)
        or obj.ndim != 1
        or not 0 < len(obj) <= MAX_TEST
        or obj.is_floating_point()
        or obj.is_complex()
        or obj.dtype == torch.bool
    ):
        raise RunError(f"{path} does not hold the test labels")
    labels = obj.long()
    if labels.min() < 0 or labels.max() >= NUM_CLASSES:
        raise RunError(f"{path} holds labels outside 0-{NUM_CLASSES - 1}; the run is damaged")
    return labels


def check_probs(path: Path, obj: Any, n: int) -> torch.Tensor:
    """Test-set probabilities: (n, 10) floats in [0, 1]."""
    if (
        not isinstance(obj, torch.Tensor)
        or tuple(obj.shape) != (n, NUM_CLASSES)
        or not obj.is_floating_point()
    ):
        raise RunError(f"{path} does not hold {n} x {NUM_CLASSES} test predictions")
    probs = obj.float()
    if not torch.isfinite(probs).all() or probs.min() < 0 or probs.max() > 1:
        raise RunError(f"{path} holds values that are not probabilities; the run is damaged")
    return probs
