"""Reproduce the torchrun rank that aborts as it exits, and check that ``end_process`` prevents it.

    .venv/bin/python scripts/ddp_exit_race.py --tries 8

A rank that trained under DDP ends right after its last all-reduce. If gloo's worker thread
still holds that collective's tensor when the interpreter finalizes, freeing it needs the GIL
and the process aborts ("terminate called without an active exception", SIGABRT). On a loaded
machine the worker lags now and then (a CI run failed so); here it is made to lag: after a
training is held at step 1, rank 1's gloo threads get the SCHED_IDLE policy, two busy loops
take the CPUs, rank 1 gets a Ctrl-C and the run is released. Each try runs twice: once through
``python -m fmnist_core`` (which ends a rank with ``distributed.end_process``) and once through
a plain ``sys.exit(main())``, the way it ended before. Linux only (/proc, chrt).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from fmnist_core.gate import ENV, Gate  # noqa: E402
from fmnist_core.launch import children  # noqa: E402
from tests.conftest import write_tiny_dataset  # noqa: E402
from tests.test_distributed import FLAGS, _rank_of  # noqa: E402

PLAIN_EXIT = (
    f"import sys; sys.path.insert(0, {str(REPO)!r}); "
    "from fmnist_core.cli import main; sys.exit(main())"
)


def one_try(entry: list[str], folder: Path, env: dict[str, str]) -> str:
    """'ok', or the first line of the abort."""
    gate = Gate(folder / "gate")
    gate.hold("step", 1)
    env = env | {ENV: str(gate.folder)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
           *entry, "train", *FLAGS]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env, start_new_session=True)  # fmt: skip
    busy: list[subprocess.Popen] = []
    try:
        gate.wait_held(300)
        rank1 = {_rank_of(pid): pid for pid in children(proc.pid)}[1]
        for tid in os.listdir(f"/proc/{rank1}/task"):
            if Path(f"/proc/{rank1}/task/{tid}/comm").read_text().strip() == "pt_gloo_runloop":
                subprocess.run(["chrt", "--idle", "-p", "0", tid], check=True)
        busy = [subprocess.Popen(["sh", "-c", "while :; do :; done"]) for _ in range(2)]
        os.kill(rank1, signal.SIGINT)
        gate.release()
        _, err = proc.communicate(timeout=300)
    finally:
        for b in busy:
            b.kill()
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    if proc.returncode == 0:
        return "ok"
    lines = [line for line in err.splitlines() if "terminate" in line or "Error" in line]
    return (lines or [f"exit status {proc.returncode}"])[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tries", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        env = os.environ | {
            "FMNIST_DATA_DIR": str(write_tiny_dataset(root / "data")),
            "FMNIST_RUNS_DIR": str(root / "runs"),
            "OMP_NUM_THREADS": "1",
        }
        (root / "runs").mkdir()
        wrapper = root / "plain_exit.py"
        wrapper.write_text(PLAIN_EXIT)
        entries = {"end_process (python -m fmnist_core)": ["-m", "fmnist_core"],
                   "plain sys.exit": [str(wrapper)]}  # fmt: skip
        aborted = dict.fromkeys(entries, 0)
        for i in range(args.tries):
            for name, entry in entries.items():
                result = one_try(entry, root / f"{i}-{len(name)}", env)
                aborted[name] += result != "ok"
                print(f"try {i + 1}, {name}: {result}", flush=True)
        for name, n in aborted.items():
            print(f"{name}: {n} of {args.tries} aborted")


if __name__ == "__main__":
    main()
