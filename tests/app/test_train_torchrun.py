"""AppTest of the Train page's "Run on: N processes (torchrun)" with the launcher faked.

The fake stands in for fmnist_core.launch.ProcessJob: it writes its run through the real
recorder (as rank 0 would) and ends when the test says, so nothing here depends on speed.
The real torchrun group is tested in tests/test_distributed.py and, from the browser, in
tests/e2e/test_train.py.
"""

from __future__ import annotations

import threading

from fmnist_app.common import plain
from fmnist_app.jobs import JobManager
from fmnist_core.events import append_event
from fmnist_core.record import Replay
from fmnist_core.runs import find_run, runs_dir
from tests.app.test_train_page import open_page, run_until, texts, widget
from tests.fake_runs import make_run

WAIT = 90


class FakeGroup:
    """A launched torchrun group: a "running" run (one epoch recorded) until it ends."""

    def __init__(self, cfg, processes: int, where, code: int = 0, tail: str = "") -> None:
        self.cfg, self.processes, self.code, self.tail = cfg, processes, code, tail
        self.id = make_run(runs_dir(where), accs=(0.6,), status="running", lr=cfg.lr)
        self.ended = threading.Event()
        self.stopped = False
        self.cleaned = False

    def run_id(self) -> str:
        return self.id

    def poll(self) -> int | None:
        return self.code if self.ended.is_set() else None

    def wait(self, timeout: float | None = None) -> int:
        assert self.ended.wait(WAIT), "the test never ended the fake group"
        return self.code

    def stop(self) -> None:  # what rank 0 does on SIGINT: record the stop, then exit 0
        self.stopped = True
        append_event(runs_dir() / self.id, {"type": "end", "time": 0.0, "status": "stopped",
                                            "reason": "stopped by the user", "epochs_done": 1,
                                            "final_val_acc": 0.6, "train_s": 1.0})  # fmt: skip
        self.ended.set()

    def output_tail(self) -> str:
        return self.tail

    def cleanup(self) -> None:
        self.cleaned = True


def fake_launcher(groups: list, **kwargs):
    def launch(cfg, processes, where):
        group = FakeGroup(cfg, processes, where, **kwargs)
        groups.append(group)
        return group

    return launch


def start_on_processes(jobs: JobManager, groups: list, processes: int = 3):
    at = open_page()
    assert widget(at, "w_run_on").value == "thread"  # the default: this server's thread
    assert widget(at, "w_processes").disabled
    widget(at, "w_run_on").set_value("torchrun").run()
    assert not widget(at, "w_processes").disabled
    widget(at, "w_processes").set_value(processes).run()
    at.button(key="train").click().run()
    assert not at.exception, at.exception
    (group,) = groups
    return at, group


def test_torchrun_choice_launches_a_group_followed_and_stopped(jobs: JobManager):
    groups: list[FakeGroup] = []
    jobs.launcher = fake_launcher(groups)
    at, group = start_on_processes(jobs, groups)
    assert group.processes == 3 and group.cfg.epochs == widget(at, "w_epochs").value
    run_until(at, lambda at: f"run `{group.id}`" in texts(at, "subheader"), "the group's run")
    assert "3 torchrun processes" in texts(at, "caption")
    assert at.button(key="pause").disabled  # a process group cannot pause
    at.button(key="stop").click().run()
    run_until(at, lambda at: "Stopped after 1 completed epoch" in texts(at, "warning"), "Stop")
    assert group.stopped and jobs.join(WAIT) and group.cleaned
    assert Replay(runs_dir() / group.id).read().status == "stopped"


def test_a_group_that_died_is_reported_as_failed(jobs: JobManager):
    groups: list[FakeGroup] = []
    tail = "ChildFailedError: rank 1 (local_rank: 1) exitcode -9: Signal 9 (SIGKILL)"
    jobs.launcher = fake_launcher(groups, code=1, tail=tail)
    at, group = start_on_processes(jobs, groups, processes=2)
    run_until(at, lambda at: f"run `{group.id}`" in texts(at, "subheader"), "the group's run")
    group.ended.set()  # the group exits 1 with no "end" in the run's record
    run_until(at, lambda at: "Training failed" in texts(at, "error"), "the failure")
    error = texts(at, "error")  # markdown-escaped by the page
    assert plain("exit status 1") in error and plain(tail) in error, error
    assert not jobs.snapshot().active
    assert jobs.join(WAIT)
    run = find_run(group.id)  # its record says why it ended, not "interrupted" later
    assert run.status == "failed" and "exit status 1" in run.info["reason"]
    assert len(run.history) == 1
