"""A test gate: holds a training at a chosen point until the test releases it.

Tests that need a training "still running" must not count on it being slow (machines differ
~2x in speed; a GPU is 100x faster). Instead they hold it here. The gate is a folder named by
the environment variable ``FMNIST_TEST_GATE``, so it reaches a server started by a test in
another process too; without that variable nothing is wrapped and nothing is read.

    gate = Gate(tmp_path / "gate")        # or Gate.from_env()
    gate.hold("epoch", 1)                 # the test: hold after epoch 1 has been reported
    events = gate.wrap(train(cfg), stop)  # the job: passes events on, holds where asked
    gate.wait_held()                      # the test: the run is held (its epoch 1 is shown)
    gate.release()                        # the run goes on (or: gate.hold("step", 9), which
                                          # lets it go on to the next hold in one move)

While held, the training's generator is simply not resumed, so the loop waits before its next
batch; a stop request ends the hold at once (the loop then stops before that batch).
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from fmnist_core.events import BatchProgress, EpochEnd, Event

ENV = "FMNIST_TEST_GATE"
POINTS = ("step", "epoch")  # hold after global batch step N, or after the end of epoch N
POLL_S = 0.01


class Gate:
    """One hold at a time, described by the file ``hold``; ``held`` says a run is held."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)

    @classmethod
    def from_env(cls) -> Gate | None:
        folder = os.environ.get(ENV)
        return cls(folder) if folder else None

    @property
    def _hold(self) -> Path:
        return self.folder / "hold"

    @property
    def _held(self) -> Path:
        return self.folder / "held"

    # -- the test's side

    def hold(self, point: str, n: int) -> None:
        """Hold the next training right after it reports ``point`` (step or epoch) ``n``."""
        if point not in POINTS or n < 1:
            raise ValueError(f"hold at one of {POINTS} >= 1, not {point} {n}")
        self._held.unlink(missing_ok=True)
        tmp = self.folder / ".hold.tmp"
        tmp.write_text(json.dumps({"point": point, "n": n}))
        tmp.replace(self._hold)  # the job never reads half a file

    def wait_held(self, timeout_s: float = 120) -> dict:
        """Wait until a run is held; returns where (``{"point", "n"}``)."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:  # the job writes "held" in place: it can be seen empty for a moment
                return json.loads(self._held.read_text())
            except (OSError, ValueError):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"no training was held within {timeout_s} s") from None
            time.sleep(POLL_S)

    def release(self) -> None:
        self._hold.unlink(missing_ok=True)

    # -- the job's side

    def _wanted(self) -> dict | None:
        try:
            return json.loads(self._hold.read_text())
        except (OSError, ValueError):
            return None

    def wrap(self, events: Iterator[Event], stop: threading.Event) -> Iterator[Event]:
        """Pass ``events`` on; after the one the hold file names, wait for release or stop."""
        for event in events:
            yield event
            wanted = self._wanted()
            if wanted and _matches(event, wanted):
                self._wait_release(wanted, stop)

    def _wait_release(self, wanted: dict, stop: threading.Event) -> None:
        """Wait while the hold file still names this hold (a new hold moves the run on)."""
        self._held.write_text(json.dumps(wanted))
        try:
            while self._wanted() == wanted and not stop.wait(POLL_S):
                pass
        finally:
            self._held.unlink(missing_ok=True)
            if self._wanted() == wanted:  # stopped: the hold ends for good, the next run is free
                self.release()


def _matches(event: Event, wanted: dict) -> bool:
    if wanted.get("point") == "step" and isinstance(event, BatchProgress):
        return (event.epoch - 1) * event.batches + event.batch == wanted.get("n")
    return (
        wanted.get("point") == "epoch"
        and isinstance(event, EpochEnd)
        and (event.epoch == wanted.get("n"))
    )
