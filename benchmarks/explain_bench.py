"""Latency of the Sketch page's "what the network sees" panel for one drawing.

    .venv/bin/python benchmarks/explain_bench.py              # strong preset's model, 200 drawings
    .venv/bin/python benchmarks/explain_bench.py --run runs/<id> --n 300

"Panel" is everything the page computes for it after the prediction: one forward pass with
every block's maps, Grad-CAM for two classes (predicted + picked), the first layer's filters,
and the pictures (two overlays, the filter strip, one strip per block), each encoded as a PNG
the way st.image sends it. Goal: p95 < 100 ms on a 2-core CPU for the strong preset's model
(random weights unless --run: the time does not depend on the weights). "Epochs" adds the
through-the-epochs part for a run of ``--epochs`` saved epochs (models already loaded, as
the page caches them): one forward per epoch, the chart, one Grad-CAM overlay.
Drawings are sketch_bench.py's synthetic canvas drawings, framed as the page frames them.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.sketch_bench import SHAPES, draw  # noqa: E402
from fmnist_core.config import preset  # noqa: E402
from fmnist_core.data import CLASSES  # noqa: E402
from fmnist_core.explain import epoch_probabilities, explain, first_filters  # noqa: E402
from fmnist_core.explain_plots import (  # noqa: E402
    activation_strip,
    cam_overlay,
    epochs_figure,
    filter_strip,
)
from fmnist_core.model import build_model  # noqa: E402
from fmnist_core.runs import load_run  # noqa: E402
from fmnist_core.sketch import predict, prepare  # noqa: E402


def _png(pixels: np.ndarray) -> int:
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG")
    return len(buf.getvalue())


def panel(model: torch.nn.Module, tensor: torch.Tensor, probs: np.ndarray) -> None:
    """What explain_view.explain_panel computes (without Streamlit)."""
    top, other = (int(k) for k in np.argsort(-probs)[:2])
    expl = explain(model, tensor, classes=[top, other])
    image = tensor[0, 0].numpy()
    pictures = [cam_overlay(image, cam, 300) for cam in expl.cams]  # as the page builds them
    pictures.append(filter_strip(first_filters(model)))
    pictures += [activation_strip(maps) for maps in expl.activations]
    for picture in pictures:
        _png(picture)


def epochs_part(models: list[torch.nn.Module], tensor: torch.Tensor) -> None:
    """What explain_view's epochs panel computes: per-epoch probabilities, chart, one CAM."""
    probs = epoch_probabilities(models, tensor)
    top = int(probs[-1].argmax())
    epochs_figure(list(range(1, len(models) + 1)), probs, CLASSES, [top], len(models)).to_json()
    _png(cam_overlay(tensor[0, 0].numpy(), explain(models[-1], tensor, [top]).cams[0]))


def _models(args: argparse.Namespace) -> tuple[list[torch.nn.Module], int, str]:
    if args.run:
        run = load_run(args.run)
        models = [run.load_model(e) for e in run.epochs]
        return models, run.config.image_size, f"run {run.id} ({run.config.arch})"
    cfg = preset("strong")
    models = []
    for seed in range(args.epochs):
        torch.manual_seed(seed)
        models.append(build_model(cfg).eval())
    return models, cfg.image_size, f"strong preset ({cfg.arch}, random weights)"


def _report(name: str, times: list[float], goal: str) -> None:
    p50, p95 = statistics.median(times), float(np.percentile(times, 95))
    print(f"{name}: p50 {p50:.1f} ms, p95 {p95:.1f} ms, max {max(times):.1f} ms  ({goal})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=200, help="number of drawings")
    parser.add_argument("--run", help="run folder (default: the strong preset, random weights)")
    parser.add_argument("--epochs", type=int, default=10, help="saved epochs (without --run)")
    args = parser.parse_args(argv)
    models, size, what = _models(args)
    model = models[-1]
    rng = np.random.default_rng(0)
    kinds = list(SHAPES)
    tensors = [prepare(draw(kinds[i % len(kinds)], rng), size).tensor for i in range(args.n)]
    for tensor in tensors[:3]:  # warm-up: the first calls allocate
        panel(model, tensor, predict(model, tensor))
        epochs_part(models, tensor)
    panel_ms, epochs_ms, cpu_ms = [], [], []
    for tensor in tensors:
        probs = predict(model, tensor)
        start, start_cpu = time.perf_counter(), time.process_time()
        panel(model, tensor, probs)
        panel_ms.append((time.perf_counter() - start) * 1000)
        cpu_ms.append((time.process_time() - start_cpu) * 1000)
        start = time.perf_counter()
        epochs_part(models, tensor)
        epochs_ms.append((time.perf_counter() - start) * 1000)
    print(f"{what}, {size}x{size}, {len(models)} epochs, torch threads {torch.get_num_threads()},"
          f" load {os.getloadavg()[0]:.1f}")  # fmt: skip
    _report(f"panel over {len(tensors)} drawings", panel_ms, "goal p95 < 100 ms")
    _report("panel CPU time", cpu_ms, "this process only")
    _report(f"through the epochs ({len(models)} epochs)", epochs_ms, "models cached")
    return 0


if __name__ == "__main__":
    sys.exit(main())
