"""Starting a run: the training loop's events, recorded into a new run folder.

    rec, events = start_run(cfg, runs_dir, stop)  # DataError before any folder exists
    for event in events: ...                      # the CLI and the app's job thread consume it

Kept apart from ``runs.py`` so that storage (listing, loading) never imports the training loop.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fmnist_core.config import TrainConfig
from fmnist_core.data import load_tensors
from fmnist_core.events import Event
from fmnist_core.record import RunRecorder
from fmnist_core.train import EpochTarget, train


def start_run(
    cfg: TrainConfig,
    directory: str | Path | None = None,
    stop: Any = None,
    data_dir: str | Path | None = None,
    epochs: EpochTarget | None = None,
) -> tuple[RunRecorder, Iterator[Event]]:
    """Load the data (DataError if missing), create the run folder, return its events.

    The CLI and the app's job thread both consume the returned iterator to the end.
    ``epochs``: a target another thread may raise while it runs (see ``train.EpochTarget``).
    """
    tensors = load_tensors(cfg.image_size, data_dir)
    rec = RunRecorder.create(cfg, directory)
    return rec, rec.record(train(cfg, tensors, stop, epochs=epochs), tensors.test_y)
