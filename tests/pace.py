"""Test-only: run the training loop 3x slower or as fast as it can go, to prove that no test
depends on the machine's speed (machines differ ~2x; a GPU is far faster).

    FMNIST_TEST_PACE=slow make test   # every training step takes 3x as long
    FMNIST_TEST_PACE=fast make test   # training steps are no-ops: the loop runs flat out

``tests/conftest.py`` applies it to the test process, ``tests/e2e/serve.py`` to the server the
browser tests start. In ``fast`` mode the weights never change, so tests of what a training
*learns* (marked ``learns``) are skipped; every test of live views, stop, holds still runs.
"""

from __future__ import annotations

import importlib
import math
import os
import time

ENV = "FMNIST_TEST_PACE"
PACES = ("slow", "fast")
CHANCE_LOSS = math.log(10)  # what an untrained 10-class model reports


def pace() -> str | None:
    value = os.environ.get(ENV) or None
    if value not in (None, *PACES):
        raise ValueError(f"{ENV} must be one of {PACES}, not {value!r}")
    return value


def apply() -> str | None:
    """Patch the training step for the pace asked by the environment; returns it."""
    train = importlib.import_module("fmnist_core.train")  # the module, not its train()
    mode, step = pace(), train._step
    if mode == "slow":

        def slowed(run, take):
            t0 = time.perf_counter()
            loss = step(run, take)
            time.sleep(2 * (time.perf_counter() - t0))  # the step took 3x its own time
            return loss

        train._step = slowed
    elif mode == "fast":
        train._step = lambda run, take: (CHANCE_LOSS, 0)  # (loss, images right)
    return mode
