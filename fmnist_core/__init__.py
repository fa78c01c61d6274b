"""fmnist_core: data, models, training, evaluation, sketches and runs for Fashion-MNIST.

No Streamlit in here: the dashboard, the CLI and the tests all use this same library.
The public names below load on first use (PEP 562), so ``import fmnist_core`` alone does not
import torch: ``python -m fmnist_core`` can then turn a Ctrl-C during that import into one
line and exit status 130 instead of a traceback (see ``__main__.py``).
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fmnist_core.config import PRESETS, ConfigError, TrainConfig, preset
    from fmnist_core.data import CLASSES, DataError, load_dataset, load_tensors
    from fmnist_core.model import build_model
    from fmnist_core.runs import Run, RunError, active_run, list_runs, load_run
    from fmnist_core.session import start_run
    from fmnist_core.train import BatchProgress, EpochEnd, RunEnd, Started, train

__all__ = [
    "CLASSES",
    "PRESETS",
    "BatchProgress",
    "ConfigError",
    "DataError",
    "EpochEnd",
    "Run",
    "RunEnd",
    "RunError",
    "Started",
    "TrainConfig",
    "active_run",
    "build_model",
    "list_runs",
    "load_dataset",
    "load_run",
    "load_tensors",
    "preset",
    "start_run",
    "train",
]
_MODULES = {
    "config": ("PRESETS", "ConfigError", "TrainConfig", "preset"),
    "data": ("CLASSES", "DataError", "load_dataset", "load_tensors"),
    "model": ("build_model",),
    "runs": ("Run", "RunError", "active_run", "list_runs", "load_run"),
    "session": ("start_run",),
    "train": ("BatchProgress", "EpochEnd", "RunEnd", "Started", "train"),
}
_MODULE_OF = {name: module for module, names in _MODULES.items() for name in names}


def __getattr__(name: str) -> Any:
    if name not in _MODULE_OF:
        raise AttributeError(f"module 'fmnist_core' has no attribute {name!r}")
    return getattr(importlib.import_module(f"fmnist_core.{_MODULE_OF[name]}"), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


class _Package(types.ModuleType):
    """Keeps ``fmnist_core.train`` the function, as an eager import left it: Python binds a
    loaded submodule onto its package, and the submodule ``train`` has the same name."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "train" and isinstance(value, types.ModuleType):
            value = value.train
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
