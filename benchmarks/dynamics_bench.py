"""Compute time of each Learning-page view for a 10-epoch run (goal: under 1 s each here).

    .venv/bin/python benchmarks/dynamics_bench.py                 # strong preset, 10,000 images
    .venv/bin/python benchmarks/dynamics_bench.py --preset seed --repeats 5

Writes a made-up 10-epoch run (real RunRecorder files: probabilities of the full 10,000-image
test set per epoch, float16, and each epoch's weights) to a temporary folder, then times what
each view computes when nothing is cached yet (the first visit), Plotly figures built and
serialised to JSON as Streamlit sends them:
- timeline: read 10 probability files, learned-at / forgotten / flips, galleries, 3 figures;
- features (first): 2 models loaded, features of the 2,000-image sample at the shown and the
  final epoch, PCA, projection, the scatter; features (slider): one more epoch (the final
  epoch's basis is cached);
- calibration: a temperature fitted and ECE measured for each of the 10 epochs, the
  reliability diagram, ECE chart and confidence histogram of one epoch.
The time of a forward pass does not depend on the weights or the pixels, so random ones do.
Reports the median of ``--repeats``.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fmnist_core import dynamics as dyn  # noqa: E402
from fmnist_core import dynamics_plots as dpl  # noqa: E402
from fmnist_core.config import preset  # noqa: E402
from fmnist_core.data import CLASSES  # noqa: E402
from fmnist_core.model import build_model  # noqa: E402
from fmnist_core.runs import Run, RunRecorder, load_run  # noqa: E402
from fmnist_core.train import EpochEnd, RunEnd, Started  # noqa: E402

N, EPOCHS, SAMPLE = 10_000, 10, 2000


def write_run(folder: Path, name: str) -> Run:
    """A finished 10-epoch run whose predictions improve (and sometimes flip) each epoch."""
    cfg = dataclasses.replace(preset(name), epochs=EPOCHS)
    gen = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 10, (N,), generator=gen)
    rec = RunRecorder.create(cfg, folder)
    events: list = [Started("cpu", 60_000, N, 600, 1000, "bench")]
    for epoch in range(1, EPOCHS + 1):
        logits = torch.randn(N, 10, generator=gen) * 2
        logits[torch.arange(N), labels] += epoch * 0.6  # more right, more sure, each epoch
        state = build_model(cfg).state_dict()
        events.append(EpochEnd(epoch, EPOCHS, 1.0, 1.0, 1.0, 0.8, 1.0, float(epoch),
                               torch.softmax(logits, 1), state))  # fmt: skip
    events.append(RunEnd("finished", "", EPOCHS, 0.8, float(EPOCHS)))
    list(rec.record(iter(events), labels))
    return load_run(rec.path)


def timeline(run: Run) -> None:
    preds, _, labels = dyn.run_predictions(run)
    correct = dyn.correctness(preds, labels)
    tl = dyn.timeline(correct, run.epochs)
    f = dyn.flips(correct, labels)
    dyn.galleries(tl)
    figs = [
        dpl.learned_at_figure(dyn.learned_at_counts(tl, labels), run.epochs, CLASSES),
        dpl.flips_figure(run.epochs[1:], f["forgot"], f["learned"]),
        dpl.class_epoch_figure(f["forgot_per_class"].T, run.epochs[1:], CLASSES, "flips"),
    ]
    [fig.to_json() for fig in figs]


def features(run: Run, x: torch.Tensor, epoch: int, basis: dyn.Basis | None) -> dyn.Basis:
    """The first visit (``basis`` None) shows the final epoch: one forward, PCA; a slider move
    one more forward, projected on the cached basis."""
    feats = dyn.run_features(run, epoch, x)
    if basis is None:
        basis = dyn.pca_basis(feats)
    coords = dyn.project(feats, basis)
    reference = coords
    groups = np.arange(len(x)) % 10
    hover = [f"#{i}" for i in range(len(x))]
    dpl.feature_scatter(coords, groups, CLASSES, np.arange(len(x)), hover,
                        dyn.axis_ranges(reference)).to_json()  # fmt: skip
    return basis


def calibration(run: Run) -> None:
    cals = dyn.run_calibration(run)
    probs, labels = run.probs(run.epochs[-1]), run.labels()
    _, held = dyn.calibration_split(labels)
    raw = dyn.reliability(*dyn.confidence(probs[held], labels[held]))
    scaled = dyn.reliability(*dyn.confidence(dyn.scale_probs(probs[held], 1.5), labels[held]))
    conf, ok = dyn.confidence(probs, labels)
    figs = [
        dpl.reliability_figure(raw, scaled, 1.5),
        dpl.ece_figure(run.epochs, [c.ece for c in cals], [c.ece_scaled for c in cals]),
        dpl.confidence_figure(dyn.confidence_histogram(conf, ok)),
    ]
    [fig.to_json() for fig in figs]


def median_s(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default="strong")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        run = write_run(Path(tmp), args.preset)
        size = run.config.image_size
        x = torch.rand(SAMPLE, 1, size, size)
        basis = features(run, x, 1, None)  # warm-up: first imports and allocations
        results = {
            "timeline": median_s(lambda: timeline(run), args.repeats),
            "features (first visit)": median_s(
                lambda: features(run, x, EPOCHS, None), args.repeats
            ),
            "features (slider move)": median_s(lambda: features(run, x, 5, basis), args.repeats),
            "calibration": median_s(lambda: calibration(run), args.repeats),
        }
    threads = torch.get_num_threads()
    print(f"{args.preset} preset ({run.config.arch}, {size}x{size}), {EPOCHS} epochs, "
          f"{N:,} test images, {SAMPLE:,} in the feature view, {threads} threads, "
          f"load average {os.getloadavg()[0]:.1f} (others' work slows every figure)")  # fmt: skip
    for view, seconds in results.items():
        print(f"  {view:<24} {seconds:6.3f} s {'ok' if seconds < 1 else 'OVER 1 s'}")


if __name__ == "__main__":
    main()
