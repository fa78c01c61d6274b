"""CPU cost of one training step of the strong preset's model at several channel widths.

    .venv/bin/python benchmarks/step_cost.py                      # the default widths
    .venv/bin/python benchmarks/step_cost.py --widths 32x64,16x96 --threads 1

For each ``conv1 x conv2`` it builds the ``strong`` preset's model with those channels and
times training steps as ``strong`` takes them (batch 256, 28x28, flips + shifts, bf16
autocast, channels_last, SGD + Nesterov): the models are alternated over ``--rounds`` rounds
of ``--steps`` steps each, and the median CPU time per step is printed with its ratio to the
first width. CPU time, alternation and ratios keep it usable on a machine shared with others.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fmnist_core.config import preset  # noqa: E402
from fmnist_core.model import build_model  # noqa: E402
from fmnist_core.train import augment, make_optimizer  # noqa: E402

DEFAULT_WIDTHS = "32x64,16x64,16x96,24x96,32x96,16x128"


def make_step(conv1: int, conv2: int):
    cfg = preset("strong").replace(conv1=conv1, conv2=conv2)
    model = build_model(cfg).to(memory_format=torch.channels_last)
    optimizer = make_optimizer(model, cfg)
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(cfg.batch_size, 1, cfg.image_size, cfg.image_size, generator=gen)
    y = torch.randint(0, 10, (cfg.batch_size,), generator=gen)

    def step() -> None:
        batch = augment(x, gen).contiguous(memory_format=torch.channels_last)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=cfg.amp):
            loss = F.cross_entropy(model(batch), y, label_smoothing=cfg.label_smoothing)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--widths", default=DEFAULT_WIDTHS, help="conv1xconv2,... (first = 1.00)")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--steps", type=int, default=8, help="steps per model per round")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    widths = [tuple(int(v) for v in w.split("x")) for w in args.widths.split(",")]
    steps = {w: make_step(*w) for w in widths}
    for step in steps.values():  # warm-up: first calls pick kernels and allocate
        for _ in range(3):
            step()
    cpu_ms: dict[tuple, list[float]] = {w: [] for w in widths}
    for _ in range(args.rounds):
        for w, step in steps.items():
            c0 = time.process_time()
            for _ in range(args.steps):
                step()
            cpu_ms[w].append((time.process_time() - c0) / args.steps * 1000)
    base = statistics.median(cpu_ms[widths[0]])
    for w in widths:
        median = statistics.median(cpu_ms[w])
        rounds = ", ".join(f"{v:.0f}" for v in cpu_ms[w])
        print(f"{w[0]:>3}x{w[1]:<4} {median:6.0f} ms CPU/step  x{median / base:.2f}  ({rounds})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
