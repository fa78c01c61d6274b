"""How well a model recognises drawings, through the Sketch page's own pipeline; and how fast.

    .venv/bin/python benchmarks/sketch_bench.py                  # the shipped sketch model
    .venv/bin/python benchmarks/sketch_bench.py --run runs/<id> --run assets/default_model
    .venv/bin/python benchmarks/sketch_bench.py --split dev --no-fill

The drawings are fmnist_core.sketchset's fixed set (all ten classes, 24 each, outlines,
details, filled and scribbled, thin to thick pens, small to large, off-centre, rotated),
rendered as the page's canvas sends them. Each goes through ``prepare`` + ``predict`` exactly
as the page does. Prints, per model: top-1 and top-3 per class, top-1 per style, the
confusion table (rows: true class, columns: the model's answer), and p50/p95 of
prepare + predict.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fmnist_core.data import CLASSES  # noqa: E402
from fmnist_core.runs import load_run  # noqa: E402
from fmnist_core.sketch import SKETCH_MODEL_DIR, predict, prepare  # noqa: E402
from fmnist_core.sketchset import PER_CLASS, SPLITS, score, sketch_set  # noqa: E402

SHORT = ["T-sh", "Trou", "Pull", "Dres", "Coat", "Sand", "Shir", "Snea", "Bag", "Boot"]


def run_model(path: str, drawings: list, fill: bool) -> tuple:
    run = load_run(path)
    model = run.load_model()
    size = run.config.image_size
    predict(model, prepare(drawings[0].image, size).tensor)  # warm-up: the first call is slow
    probs, times = [], []
    for d in drawings:
        start = time.perf_counter()
        probs.append(predict(model, prepare(d.image, size, fill=fill).tensor))
        times.append((time.perf_counter() - start) * 1000)
    return run, np.array(probs), times


def report(run, probs: np.ndarray, times: list[float], drawings: list) -> None:
    s = score(probs, drawings)
    print(f"\n## {run.path} ({run.config.arch}, {run.config.image_size}x{run.config.image_size}, "
          f"test accuracy {run.final_val_acc:.2%})")  # fmt: skip
    print(f"overall top-1 {s.overall_top1:.1%}, top-3 {np.mean(s.top3):.1%}; "
          f"worst class top-1 {np.min(s.top1):.0%}")  # fmt: skip
    print("| class | top-1 | top-3 |\n|---|---:|---:|")
    for c, name in enumerate(CLASSES):
        print(f"| {name} | {s.top1[c]:.0%} | {s.top3[c]:.0%} |")
    print("by style: " + ", ".join(f"{k} {v:.0%}" for k, v in s.by_style.items()))
    print("confusion (rows true, columns answered):")
    print("      " + " ".join(f"{n:>4}" for n in SHORT))
    for c, row in enumerate(s.confusion):
        print(f"{SHORT[c]:>5} " + " ".join(f"{v:>4}" for v in row))
    print(f"prepare + predict: p50 {statistics.median(times):.1f} ms, "
          f"p95 {np.percentile(times, 95):.1f} ms")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run", action="append", help="run folder of a model (repeatable)")
    parser.add_argument("--split", default="test", choices=sorted(SPLITS))
    parser.add_argument("--per-class", type=int, default=PER_CLASS)
    parser.add_argument("--no-fill", action="store_true", help="do not fill closed outlines")
    args = parser.parse_args(argv)
    drawings = sketch_set(args.split, args.per_class)
    print(f"{len(drawings)} drawings ({args.split} split), fill {not args.no_fill}")
    for path in args.run or [str(SKETCH_MODEL_DIR)]:
        report(*run_model(path, drawings, not args.no_fill), drawings)
    return 0


if __name__ == "__main__":
    sys.exit(main())
