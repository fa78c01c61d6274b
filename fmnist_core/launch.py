"""Start a training in processes of its own, for a caller that follows it by its record.

    job = launch_torchrun(cfg, processes=2)     # DataError before anything starts
    job = launch_process(cfg)                    # or: one plain process (no torchrun)
    job.run_id()                                 # None until rank 0 has made the run folder
    job.stop()                                   # SIGINT to the whole group: a clean stop
    job.pause(); job.resume(); job.extend()      # one process only (fmnist_core.control)
    job.wait(); job.output_tail()                # exit status; what it said at the end

The group runs ``python -m torch.distributed.run --standalone --nproc-per-node N -m
fmnist_core train ...`` in a session of its own (its own process group), so one signal
reaches torchrun and every rank: each rank's Ctrl-C handler sets its stop flag, the ranks
agree on it before the next batch (distributed.py) and rank 0 records the run as "stopped";
torchrun forwards the signal too and waits for the ranks. The processes stop the same way when
the process that launched them ends (owner.py). The app's job manager uses this
for its "N processes (torchrun)" choice, and ``launch_process`` for every other training:
then the server's threads never hold the GIL that the training loop needs (see
fmnist_app.jobs).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from fmnist_core import control
from fmnist_core.config import PRESETS, SWITCHES, TrainConfig
from fmnist_core.data import locate
from fmnist_core.owner import Owner
from fmnist_core.runfiles import runs_dir as resolve_runs_dir

MAX_PROCESSES = 16  # per machine; more is a mistake on any machine this runs on
PACKAGE_ROOT = Path(__file__).resolve().parent.parent  # where `-m fmnist_core` is found
TAIL_LINES = 6


def train_args(cfg: TrainConfig) -> list[str]:
    """The ``train`` flags that rebuild ``cfg``: its preset and each field that differs."""
    from fmnist_core.cli import TRAIN_FLAGS  # noqa: PLC0415 - the CLI's own flag table

    base = PRESETS.get(cfg.name.rstrip("+"), PRESETS["seed"])
    args = ["--preset", base.name]
    for flag, (field, _) in TRAIN_FLAGS.items():
        value = getattr(cfg, field)
        if value != getattr(base, field):
            args += [flag, repr(value) if isinstance(value, float) else str(value)]
    for name in SWITCHES:  # the CLI's flags for them are dashed: --sketch-augment
        flag = name.replace("_", "-")
        if getattr(cfg, name) != getattr(base, name):
            args.append(f"--{flag}" if getattr(cfg, name) else f"--no-{flag}")
    return args


@dataclass
class ProcessJob:
    """A launched torchrun group: its process, where rank 0 writes the run id, its output."""

    proc: subprocess.Popen
    folder: Path  # temporary: the run id file and the group's output
    processes: int

    def run_id(self) -> str | None:
        try:
            return (self.folder / "run_id").read_text().strip() or None
        except OSError:
            return None

    def poll(self) -> int | None:
        return self.proc.poll()

    def wait(self, timeout: float | None = None) -> int:
        return self.proc.wait(timeout)

    def stop(self) -> None:
        """SIGINT to the group: torchrun passes it on to every rank (each runs in a session of
        its own), and they stop before the next batch."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGINT)
            if self.processes == 1:  # paused (or stopped by a SIGTSTP before its handler was
                os.kill(self.proc.pid, signal.SIGCONT)  # set): it wakes up to honour the stop

    def pause(self) -> None:
        """The training waits before its next batch (one process started with
        ``--control-signals``: ``launch_process``)."""
        self._signal(control.PAUSE)

    def resume(self) -> None:
        self._signal(control.RESUME)

    def extend(self) -> None:
        """One more epoch (recorded by the run as it takes it)."""
        self._signal(control.MORE)

    def _signal(self, sig: int) -> None:
        if self.processes != 1:
            raise ValueError("only a single training process takes pause and one more epoch")
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.proc.pid, sig)

    def kill(self) -> None:
        """SIGKILL to torchrun's group and to every rank: torch starts each rank in a session
        of its own, which a killed torchrun would otherwise leave running."""
        ranks = children(self.proc.pid)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        for pid in ranks:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def output_tail(self) -> str:
        """The last lines of what the group printed (not the JSON rows): why it ended."""
        try:
            text = (self.folder / "output.log").read_text(errors="replace")
        except OSError:
            return ""
        lines = [ln.strip() for ln in text.splitlines()
                 if ln.strip() and not ln.startswith("{") and set(ln.strip()) != {"*"}]  # fmt: skip
        return " | ".join(lines[-TAIL_LINES:])[-800:]

    def cleanup(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (Linux's /proc; none found elsewhere)."""
    kids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:  # it ended meanwhile
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                kids.append(int(entry.name))
    return kids


def launch_torchrun(
    cfg: TrainConfig,
    processes: int,
    runs_dir: str | Path | None = None,
    data_dir: str | Path | None = None,
) -> ProcessJob:
    """Start ``cfg`` on ``processes`` torchrun processes on this machine (gloo on the CPU)."""
    if not 2 <= processes <= MAX_PROCESSES:
        raise ValueError(f"processes must be between 2 and {MAX_PROCESSES}, got {processes}")
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone",
                "--nproc-per-node", str(processes)]  # fmt: skip
    return _launch(cfg, torchrun, processes, runs_dir, data_dir)


def launch_process(
    cfg: TrainConfig, runs_dir: str | Path | None = None, data_dir: str | Path | None = None
) -> ProcessJob:
    """Start ``cfg`` in one process of its own (``python -m fmnist_core train``), which takes
    pause, resume and one more epoch by signals (``ProcessJob.pause`` ...)."""
    return _launch(cfg, [sys.executable], 1, runs_dir, data_dir, "--control-signals")


def launch(cfg: TrainConfig, processes: int = 1, runs_dir: str | Path | None = None) -> ProcessJob:
    """One process (``processes`` = 1) or a torchrun group: the app's job manager's launcher."""
    if processes == 1:
        return launch_process(cfg, runs_dir)
    return launch_torchrun(cfg, processes, runs_dir)


def _launch(
    cfg: TrainConfig,
    runner: list[str],
    processes: int,
    runs_dir: str | Path | None,
    data_dir: str | Path | None,
    *extra: str,
) -> ProcessJob:
    locate(data_dir)  # DataError (with how to get the data) before anything starts
    folder = Path(tempfile.mkdtemp(prefix="fmnist-train-"))
    cmd = [*runner, "-m", "fmnist_core", "train", *train_args(cfg), *extra,
           "--json", "--run-id-file", str(folder / "run_id"),
           "--runs-dir", str(resolve_runs_dir(runs_dir).resolve())]  # fmt: skip
    if data_dir:
        cmd += ["--data-dir", str(Path(data_dir).resolve())]
    env = os.environ | Owner.this_process().env() | {"PYTHONPATH": os.pathsep.join(
        p for p in (str(PACKAGE_ROOT), os.environ.get("PYTHONPATH", "")) if p)}  # fmt: skip
    with open(folder / "output.log", "wb") as out:  # the child keeps its own descriptor
        proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env,
            start_new_session=True,
        )  # fmt: skip
    return ProcessJob(proc, folder, processes)
