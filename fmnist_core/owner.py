"""A training started for another process stops when that process is gone.

The app's server starts each training as a child process, or a torchrun group, in a session of
its own (one signal then reaches the whole group), so nothing would end it with the server: a
server closed or killed would leave it training for nobody. launch.py therefore names the
launching process in the children's environment (``FMNIST_OWNER=<pid>:<start time>``); a
training that finds it there (every torchrun rank inherits it) watches that process from a
thread and sets its stop flag within ``POLL_S`` of the owner's end, however it ended (closed,
crashed, SIGKILL) and whatever the training was doing (a batch, paused, held, drawing the sketch
preset's images). The run is saved "stopped", reason ``ORPHANED``, with its completed epochs.
The CLI in a terminal has no owner: it is stopped by Ctrl-C.

    owner = Owner.from_env()                             # None without FMNIST_OWNER
    done = owner.watch(lambda: stop.stop(ORPHANED))      # a daemon thread; done.set() ends it
    env = os.environ | Owner.this_process().env()        # the launcher's side
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass

from fmnist_core.runfiles import process_alive, process_start

ENV = "FMNIST_OWNER"
ORPHANED = "the app's server that started it is gone"
POLL_S = 0.5  # how soon a training notices (a check is a stat of /proc: nothing to the loop)


@dataclass(frozen=True)
class Owner:
    """A local process, named by pid and kernel start time (a reused pid is another process)."""

    pid: int
    start: str | None

    @classmethod
    def this_process(cls) -> Owner:
        pid = os.getpid()
        return cls(pid, process_start(pid))

    @classmethod
    def from_env(cls) -> Owner | None:
        """The owner named by ``FMNIST_OWNER``; None without it (a warning if it is garbled)."""
        value = os.environ.get(ENV, "")
        if not value:
            return None
        pid, _, start = value.partition(":")
        if not pid.isdigit():
            print(f"warning: {ENV}={value!r} is not <pid>:<start>; the training will not "
                  "stop by itself when its launcher ends", file=sys.stderr)  # fmt: skip
            return None
        return cls(int(pid), start or None)

    def env(self) -> dict[str, str]:
        """The environment entry that makes a child training watch this owner."""
        return {ENV: f"{self.pid}:{self.start or ''}"}

    def gone(self) -> bool:
        return not process_alive(self.pid, self.start)

    def watch(self, on_gone: Callable[[], None], poll_s: float = POLL_S) -> threading.Event:
        """Call ``on_gone`` once, from a daemon thread, when the owner is gone. Setting the
        returned event ends the watch (the training is over)."""
        done = threading.Event()

        def loop() -> None:
            while not done.wait(poll_s):
                if self.gone():
                    on_gone()
                    return

        threading.Thread(target=loop, name="fmnist-owner", daemon=True).start()
        return done
