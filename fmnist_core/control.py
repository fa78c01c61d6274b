"""Pause, resume and "one more epoch" for a training in a process of its own, by signals.

    python -m fmnist_core train --preset seed --control-signals &
    kill -TSTP $!      # pause: the loop waits before its next batch
    kill -CONT $!      # resume
    kill -USR1 $!      # one more epoch (recorded as such, as from the Train page)
    kill -INT $!       # stop: the finished epochs are kept (the CLI's Ctrl-C)

The app's job manager trains in such a child process (fmnist_app.jobs), so that the server's
threads (page polls, websockets) never share a GIL with the training loop. The handlers only
set flags; the events' consumer acts on them between two batches, as the app's thread job and
the test gate do: a paused training is simply not resumed. Off unless asked for
(``--control-signals``): in a terminal, Ctrl-Z should still suspend the CLI as usual.

A child whose server is gone stops too, even while paused: see owner.py.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from typing import Any

from fmnist_core.events import Event
from fmnist_core.train import EpochTarget

PAUSE, RESUME, MORE = signal.SIGTSTP, signal.SIGCONT, signal.SIGUSR1
POLL_S = 0.1  # a paused loop's check of its stop flag (a signal also wakes it)


class SignalControl:
    """Flags set by the signals above; ``wrap`` applies them between a training's events."""

    def __init__(self) -> None:
        self._go = threading.Event()  # cleared while paused
        self._go.set()
        self.extends: list[int] = []  # "one more epoch" requests not yet given to the target
        self._previous: dict[int, Any] = {}

    def install(self) -> None:
        """Handle the signals in this (main) thread until ``restore``."""
        handlers = {PAUSE: self._pause, RESUME: self._resume, MORE: self._more}
        for sig, handler in handlers.items():
            self._previous[sig] = signal.signal(sig, handler)

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def _pause(self, *_: object) -> None:
        self._go.clear()

    def _resume(self, *_: object) -> None:
        self._go.set()

    def _more(self, *_: object) -> None:
        # Not target.extend(): this handler may run while that lock is held. A list, as
        # append and pop are atomic where a handler cuts in (``+= 1`` could lose one).
        self.extends.append(1)

    @property
    def paused(self) -> bool:
        return not self._go.is_set()

    def wrap(
        self, events: Iterator[Event], stop: threading.Event, target: EpochTarget
    ) -> Iterator[Event]:
        """Pass ``events`` on; before pulling the next one, give the target the requested
        epochs and wait while paused (a stop ends the wait: the loop then stops)."""
        for event in events:
            yield event
            self._apply(target)
            while not self._go.wait(POLL_S) and not stop.is_set():
                pass
            self._apply(target)  # "one more epoch" pressed while paused

    def _apply(self, target: EpochTarget) -> None:
        while self.extends:
            self.extends.pop()
            target.extend()  # None once the last epoch is over: the run's record says so
