"""fmnist_core.control: the signals a training child takes, sent to this very process."""

from __future__ import annotations

import os
import threading

from fmnist_core import control
from fmnist_core.train import EpochTarget


def test_signals_pause_resume_and_add_epochs_between_events():
    ctl, stop, target = control.SignalControl(), threading.Event(), EpochTarget(2)
    pulled: list[int] = []
    first = threading.Event()
    ctl.install()
    try:
        events = ctl.wrap(iter(range(3)), stop, target)
        pulled.append(next(events))
        os.kill(os.getpid(), control.PAUSE)  # handled in this (main) thread: a flag
        os.kill(os.getpid(), control.MORE)
        os.kill(os.getpid(), control.MORE)
        assert ctl.paused and len(ctl.extends) == 2

        def consume() -> None:
            first.set()
            pulled.extend(events)

        reader = threading.Thread(target=consume)
        reader.start()
        first.wait(5)
        reader.join(0.3)  # paused: the reader is held before the next event
        assert reader.is_alive() and pulled == [0]
        assert target.epochs == 4  # the raises are given before waiting, not after
        os.kill(os.getpid(), control.RESUME)
        reader.join(10)
        assert not reader.is_alive() and pulled == [0, 1, 2]
    finally:
        ctl.restore()
        stop.set()


def test_stop_ends_a_pause():
    ctl, stop = control.SignalControl(), threading.Event()
    events = ctl.wrap(iter(range(3)), stop, EpochTarget(1))
    next(events)
    ctl._pause()
    stop.set()  # the training's stop flag: the loop goes on to stop before its next batch
    assert next(events) == 1
