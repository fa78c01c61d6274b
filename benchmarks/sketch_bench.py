"""Latency of the Sketch page's work: framing a canvas drawing + one prediction.

    .venv/bin/python benchmarks/sketch_bench.py                 # 300 drawings, default model
    .venv/bin/python benchmarks/sketch_bench.py --n 500 --run runs/<id>

Drawings are synthetic canvas images (RGBA, opaque black with white strokes, as the page's
canvas returns them): outlines of a T-shirt, trousers, a bag, a sneaker, a dress and an
ankle boot at random places, sizes, stroke widths and with jittered corners. Prints p50/p95
latency of ``prepare`` + ``predict`` (goal: p95 < 30 ms on a 2-core CPU) and, as a check of
the framing, how many drawings of each kind the model recognises.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fmnist_core.data import CLASSES  # noqa: E402
from fmnist_core.runs import load_run  # noqa: E402
from fmnist_core.sketch import DEFAULT_MODEL_DIR, predict, prepare  # noqa: E402

CANVAS = (400, 400)  # (width, height) of the page's canvas
# Outlines in unit coordinates (x right, y down), closed; open strokes are listed separately.
SHAPES: dict[str, dict[str, list]] = {
    "T-shirt/top": {"closed": [[(0.3, 0.05), (0.42, 0.05), (0.5, 0.14), (0.58, 0.05), (0.7, 0.05),
                                (0.97, 0.3), (0.86, 0.45), (0.75, 0.35), (0.75, 0.97), (0.25, 0.97),
                                (0.25, 0.35), (0.14, 0.45), (0.03, 0.3)]]},
    "Trouser": {"closed": [[(0.3, 0.02), (0.7, 0.02), (0.76, 0.98), (0.57, 0.98), (0.5, 0.3),
                            (0.43, 0.98), (0.24, 0.98)]]},
    "Bag": {"closed": [[(0.05, 0.35), (0.95, 0.35), (0.95, 0.92), (0.05, 0.92)]],
            "open": [[(0.3, 0.35), (0.33, 0.15), (0.5, 0.08), (0.67, 0.15), (0.7, 0.35)]]},
    "Sneaker": {"closed": [[(0.03, 0.55), (0.15, 0.38), (0.3, 0.42), (0.45, 0.35), (0.62, 0.52),
                            (0.97, 0.64), (0.97, 0.78), (0.03, 0.78)]]},
    "Dress": {"closed": [[(0.38, 0.02), (0.62, 0.02), (0.6, 0.3), (0.85, 0.98), (0.15, 0.98),
                          (0.4, 0.3)]]},
    "Ankle boot": {"closed": [[(0.1, 0.05), (0.5, 0.05), (0.55, 0.5), (0.95, 0.7), (0.95, 0.95),
                               (0.05, 0.95), (0.1, 0.6)]]},
}  # fmt: skip


def draw(kind: str, rng: np.random.Generator) -> np.ndarray:
    """One random canvas drawing of ``kind``: (H, W, 4) uint8 like st_canvas's image_data."""
    width, height = CANVAS
    size = rng.uniform(0.3, 0.9) * min(width, height)
    x0 = rng.uniform(0, width - size)
    y0 = rng.uniform(0, height - size)
    stroke = int(rng.integers(4, 21))
    image = Image.new("RGBA", CANVAS, (0, 0, 0, 255))
    pen = ImageDraw.Draw(image)
    for style, lines in SHAPES[kind].items():
        for line in lines:
            points = [
                (x0 + size * (x + rng.normal(0, 0.015)), y0 + size * (y + rng.normal(0, 0.015)))
                for x, y in line
            ]
            if style == "closed":
                points.append(points[0])
            pen.line(points, fill=(255, 255, 255, 255), width=stroke, joint="curve")
    return np.asarray(image)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=300, help="number of drawings")
    parser.add_argument("--run", default=str(DEFAULT_MODEL_DIR), help="run folder of the model")
    parser.add_argument("--no-fill", action="store_true", help="do not fill closed outlines")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    run = load_run(args.run)
    model = run.load_model()
    image_size = run.config.image_size
    rng = np.random.default_rng(args.seed)
    kinds = list(SHAPES)
    drawings = [(kind, draw(kind, rng)) for kind in (kinds * args.n)[: args.n]]
    predict(model, prepare(drawings[0][1], image_size).tensor)  # warm-up (first call is slow)
    times, cpu, hits = [], [], {kind: [0, 0] for kind in kinds}
    for kind, canvas in drawings:
        start, start_cpu = time.perf_counter(), time.process_time()
        probs = predict(model, prepare(canvas, image_size, fill=not args.no_fill).tensor)
        times.append((time.perf_counter() - start) * 1000)
        cpu.append((time.process_time() - start_cpu) * 1000)
        hits[kind][0] += CLASSES[int(probs.argmax())] == kind
        hits[kind][1] += 1
    p50 = statistics.median(times)
    p95 = float(np.percentile(times, 95))
    print(f"model {run.id} ({run.config.arch}, {image_size}x{image_size}), "
          f"torch threads {torch.get_num_threads()}, fill {not args.no_fill}")  # fmt: skip
    print(f"prepare + predict over {len(times)} drawings: p50 {p50:.1f} ms, p95 {p95:.1f} ms, "
          f"max {max(times):.1f} ms  (goal p95 < 30 ms)")  # fmt: skip
    # CPU time of this process: what the work costs, less distorted by other processes' load
    print(f"CPU time per drawing: p50 {statistics.median(cpu):.1f} ms, "
          f"p95 {np.percentile(cpu, 95):.1f} ms; load {os.getloadavg()[0]:.1f}")  # fmt: skip
    for kind, (hit, total) in hits.items():
        print(f"  {kind:<12} recognised {hit}/{total}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
