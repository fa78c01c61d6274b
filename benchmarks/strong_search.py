"""Variants of the ``strong`` preset, trained one after the other in this process.

    .venv/bin/python benchmarks/strong_search.py base "wide:conv2=96" base --seeds 0,1

Each argument is ``label[:field=value,field=value]``: the ``strong`` preset with those
TrainConfig fields changed. It prints the per-epoch test accuracy the run reported, and the
final weights' accuracy plain and with flip test-time augmentation (the mean of the image's
and its mirror's probabilities), computed after the run so it never enters the timing.
Times are the training's own seconds (``RunEnd.train_s``) and the process's CPU seconds
meanwhile. On a shared machine compare variants of one invocation (alternate them), never
numbers of different invocations.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fmnist_core.config import TrainConfig, preset  # noqa: E402
from fmnist_core.data import load_tensors  # noqa: E402
from fmnist_core.evaluate import evaluate_tensors  # noqa: E402
from fmnist_core.model import build_model  # noqa: E402
from fmnist_core.train import EpochEnd, RunEnd, train  # noqa: E402


def parse_variant(text: str) -> tuple[str, dict]:
    label, _, rest = text.partition(":")
    fields = {f.name: f.type for f in TrainConfig.__dataclass_fields__.values()}
    changes = {}
    for item in filter(None, rest.split(",")):
        key, _, raw = item.partition("=")
        if key not in fields:
            raise SystemExit(f"unknown TrainConfig field {key!r}")
        changes[key] = json.loads(raw) if raw not in ("true", "false") else raw == "true"
    return label, changes


def accuracies(cfg: TrainConfig, weights: dict, tensors) -> tuple[float, float]:
    model = build_model(cfg).to(memory_format=torch.channels_last)  # as train() has it
    model.load_state_dict(weights)
    amp = cfg.amp
    plain = evaluate_tensors(model, tensors.test_x, tensors.test_y, amp, tta=False)[1]
    flipped = evaluate_tensors(model, tensors.test_x, tensors.test_y, amp, tta=True)[1]
    return plain, flipped


def run(label: str, changes: dict, seed: int) -> dict:
    cfg = preset("strong").replace(seed=seed, **changes)
    tensors = load_tensors(cfg.image_size)
    weights, curve, c0, end = [], [], time.process_time(), None
    for event in train(cfg, tensors):
        if isinstance(event, EpochEnd):
            weights.append(event.state)
            curve.append(event.val_acc)
            print(f"  {label} seed {seed} epoch {event.epoch}: {event.val_acc:.2%} at "
                  f"{event.elapsed_s:.1f} s", file=sys.stderr, flush=True)  # fmt: skip
        elif isinstance(event, RunEnd):
            end = event
    cpu = time.process_time() - c0
    if end is None or end.status != "finished":
        raise SystemExit(f"{label} seed {seed}: {end}")
    plain, flipped = accuracies(cfg, weights[-1], tensors)
    return {"label": label, "seed": seed, "changes": changes, "train_s": end.train_s,
            "cpu_s": cpu, "curve": curve, "plain": plain, "tta": flipped}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("variants", nargs="+", help="label[:field=value,...]")
    parser.add_argument("--seeds", default="0", help="comma-separated seeds (default 0)")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    seeds = [int(s) for s in args.seeds.split(",")]
    for text in args.variants:
        label, changes = parse_variant(text)
        for seed in seeds:
            r = run(label, changes, seed)
            head = f"{label:>12} seed {seed}: plain {r['plain']:.2%} tta {r['tta']:.2%}"
            curve = " ".join(f"{a:.4f}" for a in r["curve"])
            print(f"{head} train {r['train_s']:.1f} s cpu {r['cpu_s']:.1f} s | {curve}", flush=True)
            print("JSON " + json.dumps(r), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
