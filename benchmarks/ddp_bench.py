"""What DDP costs on a CPU: one process against a 2-process torchrun (gloo) group.

    .venv/bin/python benchmarks/ddp_bench.py                       # the seed preset
    .venv/bin/python benchmarks/ddp_bench.py --presets seed,strong --repeats 3
    .venv/bin/python benchmarks/ddp_bench.py --json

Every variant trains the same preset (same global batch, same seed) through the CLI, each in
its own fresh process(es) into a temporary runs folder, one after the other:

- ``1 proc``: ``python -m fmnist_core train`` with torch's default threads (all cores);
- ``1 proc 1 thr``: the same with ``OMP_NUM_THREADS=1`` (what each torchrun process gets);
- ``ddp 2``: ``torchrun --standalone --nproc-per-node 2 -m fmnist_core train``.

"train s" is the run's own training time (from its first batch; imports, data loading and
the process group's start-up excluded), "wall s" the whole command. Ratios are against the
first of ``--variants`` (default: ``1 proc``) of the same preset; with ``--repeats`` the
medians are shown. On a machine shared with other work every time is inflated and noisy
(with 2 threads on a loaded 2-core machine, ``1 proc`` suffers most: its threads spin
against each other): compare ratios, and ``ddp 2`` against ``1 proc 1 thr`` too.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
VARIANTS = ("1 proc", "1 proc 1 thr", "ddp 2")


def command(variant: str, preset: str, runs_dir: str) -> tuple[list[str], dict[str, str]]:
    train = ["-m", "fmnist_core", "train", "--preset", preset, "--json", "--runs-dir", runs_dir]
    env = dict(os.environ)
    if variant == "ddp 2":
        return [sys.executable, "-m", "torch.distributed.run", "--standalone",
                "--nproc-per-node", "2", *train], env  # fmt: skip
    if variant == "1 proc 1 thr":
        env["OMP_NUM_THREADS"] = "1"
    else:
        env.pop("OMP_NUM_THREADS", None)
    return [sys.executable, *train], env


def measure(variant: str, preset: str) -> dict:
    with tempfile.TemporaryDirectory() as runs_dir:
        cmd, env = command(variant, preset, runs_dir)
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, env=env)
        wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{variant} {preset} failed:\n{proc.stderr[-3000:]}")
    end = json.loads(proc.stdout.strip().splitlines()[-1])
    return {"preset": preset, "variant": variant, "train_s": end["train_s"], "wall_s": wall,
            "val_acc": end["final_val_acc"]}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--presets", default="seed", help="comma-separated (default: seed)")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--variants", default=",".join(VARIANTS),
                        help=f"comma-separated, the first is the baseline (default: all of "
                        f"{', '.join(VARIANTS)})")  # fmt: skip
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    variants = args.variants.split(",")
    if not set(variants) <= set(VARIANTS):
        parser.error(f"--variants: choose from {', '.join(VARIANTS)}")
    rows = []
    for preset in args.presets.split(","):
        for _ in range(args.repeats):
            for variant in variants:  # interleaved: a load change hits every variant alike
                rows.append(measure(variant, preset))
                if not args.json:
                    r = rows[-1]
                    print(f"  {preset:<7} {variant:<13} train {r['train_s']:7.1f} s  "
                          f"acc {r['val_acc']:.2%}", file=sys.stderr)  # fmt: skip
    report(rows, args.presets.split(","), variants, args.json)


def report(rows: list[dict], presets: list[str], variants: list[str], as_json: bool) -> None:
    table = []
    for preset in presets:
        base = [r for r in rows if r["preset"] == preset and r["variant"] == variants[0]]
        base_s = statistics.median(r["train_s"] for r in base)
        base_acc = statistics.median(r["val_acc"] for r in base)
        for variant in variants:
            mine = [r for r in rows if r["preset"] == preset and r["variant"] == variant]
            train_s = statistics.median(r["train_s"] for r in mine)
            table.append({"preset": preset, "variant": variant, "train_s": round(train_s, 2),
                          "wall_s": round(statistics.median(r["wall_s"] for r in mine), 2),
                          "val_acc": statistics.median(r["val_acc"] for r in mine),
                          "time_ratio": round(train_s / base_s, 3),
                          "acc_diff_points": round(100 * (statistics.median(
                              r["val_acc"] for r in mine) - base_acc), 2)})  # fmt: skip
    if as_json:
        print(json.dumps({"cpus": os.cpu_count(), "load": os.getloadavg(), "rows": table}))
        return
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at the end")
    print(f"{'preset':<7} {'variant':<13} {'train s':>8} {'wall s':>7} {'test acc':>8} "
          f"{'time ratio':>13} {'acc diff':>9}   (ratios against {variants[0]})")  # fmt: skip
    for r in table:
        ratio, diff = r["time_ratio"], r["acc_diff_points"]
        print(f"{r['preset']:<7} {r['variant']:<13} {r['train_s']:>8.1f} {r['wall_s']:>7.1f} "
              f"{r['val_acc']:>8.2%} {ratio:>12.2f}x {diff:>+8.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
