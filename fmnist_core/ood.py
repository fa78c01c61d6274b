"""Does an input look like a clothing item to the model at all? An out-of-distribution score.

    limits = calibrate(model, image_size)   # once per model; save(folder, limits) -> ood.pt
    answer = judge(model, tensor, limits)   # Answer: probs, top, score, clothing (bool)

The score is the Mahalanobis distance of the model's features (the last conv block, averaged
over positions) to the nearest class mean, with one shared covariance (Lee et al. 2018, "A
Simple Unified Framework for Detecting Out-of-Distribution Samples and Adversarial Attacks").
Means and covariance come from 20,000 training images, half of them shown as the framed
drawings the sketch preset trains on (fmnist_core.sketchdraw): drawings are what the page
expects. The limit is the ``KEEP`` quantile of the same mix made from the test set. ``calibrate``
also reports what the limit does to the real test set and to things that are not clothing,
drawn on the canvas and framed as the Sketch page frames drawings (noise, single lines,
scribbles, dots, circles). Measured here first: the energy score (-logsumexp of the logits)
let 69% of those through at the same share of the test set kept, as label smoothing
flattens the logits of every input alike.

An input also fails when its top probability is under ``MIN_TOP`` (a model torn between
many classes); a run without a calibration gets only that rule.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw
from torch import nn

from fmnist_core.atomic import atomic_write_bytes
from fmnist_core.data import NUM_CLASSES, Tensors, load_tensors
from fmnist_core.runfiles import RunError, load_weights
from fmnist_core.sketch import mirror_mean, mirrored, prepare
from fmnist_core.sketchdraw import drawings_of, with_drawings
from fmnist_core.threads import one_thread

OOD_FILE = "ood.pt"
OOD_LIMIT = 2 * 2**20  # bytes: a 128-feature calibration is ~70 KB
KEEP = 0.99  # share of the test images (half of them as drawings) the limit lets through
MIN_TOP = 0.3  # under this top probability the model does not know what it sees
FIT_IMAGES = 20_000
CANVAS = 320


@dataclass(frozen=True)
class Answer:
    probs: np.ndarray  # (10,)
    top: int
    score: float  # distance to the nearest class (nan without a calibration)
    clothing: bool  # False: "this does not look like a clothing item to the model"


@torch.inference_mode()
def _outputs(
    model: nn.Module, x: torch.Tensor, mirror: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    """(log-probabilities (N, 10): with ``mirror``, each input's and its mirror image's
    averaged, as ``sketch.predict`` answers; features (N, C) of the input: the last conv
    block averaged over positions)."""
    model.eval()
    device = next(model.parameters()).device
    logits, feats = [], []
    with one_thread():
        for chunk in x.split(500):
            chunk = chunk.to(device)
            f = model.features(mirrored(chunk) if mirror else chunk)
            probs = torch.softmax(model.head(f.flatten(1)).float(), -1)
            logits.append((mirror_mean(probs) if mirror else probs).log().cpu())
            feats.append(f[: len(chunk)].float().mean((2, 3)).double().cpu())
    return torch.cat(logits), torch.cat(feats)


def distance(feats: torch.Tensor, limits: dict) -> torch.Tensor:
    """Squared Mahalanobis distance (N,) of features (N, C) to the nearest class mean."""
    d = feats.double()[:, None, :] - limits["means"][None]  # (N, 10, C)
    return torch.einsum("ncd,de,nce->nc", d, limits["precision"], d).min(1).values


def not_clothing(n: int = 200, seed: int = 0) -> list[np.ndarray]:
    """Canvas drawings (RGBA) that are no clothing item: noise, lines, dots, scribbles..."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        image = Image.new("RGBA", (CANVAS, CANVAS), (0, 0, 0, 255))
        pen = ImageDraw.Draw(image)
        width = int(rng.integers(3, 25))
        kind = i % 5
        pts = lambda k: [tuple(p) for p in rng.uniform(20, CANVAS - 20, (k, 2))]  # noqa: E731
        if kind == 0:  # noise: speckles all over
            arr = (rng.random((CANVAS, CANVAS)) < rng.uniform(0.01, 0.3)) * 255
            image = Image.fromarray(
                np.dstack([arr] * 3 + [np.full_like(arr, 255)]).astype(np.uint8)
            )
        elif kind == 1:  # one straight line, any direction
            pen.line(pts(2), fill="white", width=width)
        elif kind == 2:  # a scribble: a random zigzag
            pen.line(pts(int(rng.integers(4, 15))), fill="white", width=width, joint="curve")
        elif kind == 3:  # a few dots
            for x, y in pts(int(rng.integers(1, 6))):
                r = rng.uniform(4, 30)
                pen.ellipse((x - r, y - r, x + r, y + r), fill="white")
        else:  # a circle or a spiral-like loop
            x, y = rng.uniform(100, 220, 2)
            r = rng.uniform(30, 90)
            pen.ellipse((x - r, y - r, x + r, y + r), outline="white", width=width)
        out.append(np.asarray(image))
    return out


def mixed_test_images(tensors: Tensors) -> torch.Tensor:
    """The test images with half of them shown as framed drawings: what the limit keeps."""
    drawn = drawings_of(tensors.test_x, tensors.test_y, versions=1)
    every = torch.arange(len(tensors.test_y))
    return with_drawings(tensors.test_x, drawn, every, torch.Generator().manual_seed(1))


def calibrate(model: nn.Module, image_size: int, data_dir: str | None = None) -> dict:
    """Class means, shared precision and the limit; with what the limit keeps and catches."""
    tensors = load_tensors(image_size, data_dir)
    gen = torch.Generator().manual_seed(0)
    idx = torch.randperm(len(tensors.train_y), generator=gen)[:FIT_IMAGES]
    drawn = drawings_of(tensors.train_x, tensors.train_y)  # the sketch preset's own: cached
    _, feats = _outputs(model, with_drawings(tensors.train_x[idx], drawn, idx, gen), mirror=False)
    labels = tensors.train_y[idx]
    means = torch.stack([feats[labels == c].mean(0) for c in range(NUM_CLASSES)])
    centred = feats - means[labels]
    cov = centred.T @ centred / len(feats)
    cov += 1e-3 * cov.diagonal().mean() * torch.eye(len(cov), dtype=cov.dtype)  # invertible
    limits = {"means": means, "precision": torch.linalg.inv(cov)}
    mixed = mixed_test_images(tensors)
    _, feats = _outputs(model, mixed, mirror=False)
    limits["limit"] = float(torch.quantile(distance(feats, limits), KEEP))
    real = judge_batch(model, tensors.test_x, limits)
    others = torch.cat([prepare(im, image_size).tensor for im in not_clothing()])
    caught = ~judge_batch(model, others, limits)
    return limits | {"test_kept": float(real.float().mean()),
                     "not_clothing_caught": float(caught.float().mean())}  # fmt: skip


def judge_batch(model: nn.Module, x: torch.Tensor, limits: dict | None) -> torch.Tensor:
    """(N,) bool: which inputs look like clothing to the model."""
    logits, feats = _outputs(model, x)
    ok = torch.softmax(logits, -1).max(-1).values >= MIN_TOP
    if limits is not None:
        ok &= distance(feats, limits) <= limits["limit"]
    return ok


def save(folder: str | Path, limits: dict) -> None:
    buffer = io.BytesIO()
    torch.save(limits, buffer)
    atomic_write_bytes(Path(folder) / OOD_FILE, buffer.getvalue())


def load(folder: str | Path) -> dict | None:
    """The run's calibration, or None when it has none or an unusable one."""
    path = Path(folder) / OOD_FILE
    if not path.is_file():
        return None
    try:
        data = load_weights(path, OOD_LIMIT)  # weights_only=True: never runs a pickle
        means, precision, limit = data["means"], data["precision"], float(data["limit"])
    except (RunError, KeyError, TypeError, ValueError):
        return None
    shapes_ok = (isinstance(means, torch.Tensor) and isinstance(precision, torch.Tensor)
                 and means.ndim == 2 and means.shape[0] == NUM_CLASSES
                 and precision.shape == (means.shape[1], means.shape[1]))  # fmt: skip
    return data if shapes_ok and math.isfinite(limit) else None


def judge(model: nn.Module, tensor: torch.Tensor, limits: dict | None) -> Answer:
    """The model's answer for one input (1, 1, S, S), and whether it looks like clothing."""
    logits, feats = _outputs(model, tensor)
    probs = torch.softmax(logits[0], -1).numpy()
    top = int(probs.argmax())
    if limits is not None and feats.shape[1] != limits["means"].shape[1]:
        limits = None  # a calibration of another model: not used
    score = float(distance(feats, limits)[0]) if limits is not None else float("nan")
    clothing = probs[top] >= MIN_TOP and (limits is None or score <= limits["limit"])
    return Answer(probs, top, score, bool(clothing))


def main(argv: list[str] | None = None) -> int:
    """``python -m fmnist_core.ood RUN_FOLDER``: calibrate the folder's model, write ood.pt."""
    import sys  # noqa: PLC0415 - only for this command

    from fmnist_core.runs import load_run  # noqa: PLC0415 - storage, only for this command

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m fmnist_core.ood RUN_FOLDER", file=sys.stderr)
        return 2
    run = load_run(args[0])
    limits = calibrate(run.load_model(), run.config.image_size)
    save(run.path, limits)
    kept, caught = limits["test_kept"], limits["not_clothing_caught"]
    print(f"{run.path / OOD_FILE}: limit {limits['limit']:.1f}, real test kept {kept:.1%}, "
          f"not clothing caught {caught:.1%}")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
