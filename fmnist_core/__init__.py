"""fmnist_core: data, models, training, evaluation, sketches and runs for Fashion-MNIST.

No Streamlit in here: the dashboard, the CLI and the tests all use this same library.
"""

from fmnist_core.config import PRESETS, ConfigError, TrainConfig, preset
from fmnist_core.data import CLASSES, DataError, load_dataset, load_tensors
from fmnist_core.model import build_model
from fmnist_core.runs import Run, RunError, active_run, list_runs, load_run, start_run
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
