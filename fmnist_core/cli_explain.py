"""``python -m fmnist_core explain RUN_ID (--test-index N | --image FILE) [--epoch E]
[--class NAME ...] [--out DIR]``: the Sketch page's "what the network sees" without the app.

Writes into DIR (default ``explain-<run id>``): ``input.png`` (the model's input),
``block_<n>.png`` (each conv block's activation maps), ``filters.png`` (first-layer kernels),
``gradcam_<class>.png`` (Grad-CAM over the input, the predicted class and each ``--class``),
``saliency.png`` (input-gradient saliency of the predicted class); prints the probabilities.
"""

from __future__ import annotations

import argparse
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from fmnist_core.atomic import atomic_write_bytes
from fmnist_core.data import CLASSES, DataError, load_dataset
from fmnist_core.explain import explain, first_filters, saliency
from fmnist_core.explain_plots import INFERNO, activation_strip, cam_overlay, filter_strip
from fmnist_core.runs import RunError, find_run
from fmnist_core.sketch import (
    MAX_UPLOAD_BYTES,
    SketchError,
    UploadError,
    from_frame,
    predict,
    prepare,
)


def _class(text: str) -> int:
    names = {name.lower(): i for i, name in enumerate(CLASSES)}
    if text.lower() in names:
        return names[text.lower()]
    if text.isdigit() and int(text) < len(CLASSES):
        return int(text)
    raise argparse.ArgumentTypeError(f"{text!r}: give a class index 0-9 or one of {CLASSES}")


def add_parser(sub: Any, make: Callable, folder: Callable, epoch: Callable) -> None:
    """The ``explain`` subcommand (``make`` builds a subparser the way cli.py does)."""
    p = make(sub, "explain", "write a run's activation maps, filters, Grad-CAM and saliency "
             "for one image as PNGs, and print its probabilities")  # fmt: skip
    p.add_argument("run_id")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--test-index", type=int, help="an image of the test set, from 0")
    src.add_argument("--image", type=folder, help="a PNG or JPEG of one clothing item")
    p.add_argument("--epoch", type=epoch, help="epoch to explain, from 1 (default: the last)")
    p.add_argument(
        "--class", dest="classes", type=_class, action="append", default=[],
        help="also show Grad-CAM for this class (name or index; repeatable)",
    )  # fmt: skip
    p.add_argument("--out", type=folder, help="output folder (default: explain-RUN_ID)")
    p.add_argument("--runs-dir", type=folder)
    p.add_argument("--data-dir", type=folder, help="folder holding Fashion-MNIST (else searched)")


def _input(args: argparse.Namespace, size: int) -> tuple[Any, int | None]:
    """(Prepared input, true class or None) from --test-index or --image."""
    if args.image is not None:
        path = Path(args.image)
        if not path.is_file():
            raise UploadError(f"{path} is not a file")
        if path.stat().st_size > MAX_UPLOAD_BYTES:
            raise UploadError(f"{path} is larger than {MAX_UPLOAD_BYTES // 2**20} MB")
        return prepare(path.read_bytes(), size), None
    ds = load_dataset(args.data_dir)
    n = len(ds.test_labels)
    if not 0 <= args.test_index < n:
        raise UploadError(f"--test-index must be 0 to {n - 1} (the test set has {n} images)")
    i = args.test_index
    return from_frame(ds.test_images[i].numpy(), size), int(ds.test_labels[i])


def _png(path: Path, pixels: np.ndarray) -> None:
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG")
    atomic_write_bytes(path, buf.getvalue())


def _slug(name: str) -> str:
    return name.lower().replace("/", "-").replace(" ", "-")


def cmd_explain(args: argparse.Namespace, error: Callable[[object], int]) -> int:
    try:
        run = find_run(args.run_id, args.runs_dir)
        model = run.load_model(args.epoch)
        epoch = run.epochs[-1] if args.epoch is None else args.epoch
        prepared, truth = _input(args, run.config.image_size)
    except (RunError, DataError, SketchError, UploadError) as exc:
        return error(exc)
    x = prepared.tensor
    top = int(predict(model, x).argmax())
    classes = list(dict.fromkeys([top, *args.classes]))
    expl = explain(model, x, classes=classes)
    out = Path(args.out or f"explain-{run.id}")
    out.mkdir(parents=True, exist_ok=True)
    image = x[0, 0].numpy()
    _png(out / "input.png", np.round(np.clip(image, 0, 1) * 255).astype(np.uint8))
    for n, maps in enumerate(expl.activations, start=1):
        _png(out / f"block_{n}.png", activation_strip(maps))
    _png(out / "filters.png", filter_strip(first_filters(model)))
    for cls, cam in zip(expl.classes, expl.cams, strict=True):
        _png(out / f"gradcam_{_slug(CLASSES[cls])}.png", cam_overlay(image, cam))
    heat = saliency(model, x, top)
    _png(out / "saliency.png", INFERNO[np.round(heat * 255).astype(np.uint8)])
    _print(run.id, epoch, expl.probs, truth, out)
    return 0


def _print(run_id: str, epoch: int, probs: np.ndarray, truth: int | None, out: Path) -> None:
    top = int(probs.argmax())
    truth_text = "" if truth is None else f" (true class: {CLASSES[truth]})"
    print(f"run {run_id}, epoch {epoch}: predicted {CLASSES[top]} {probs[top]:.1%}{truth_text}")
    for k in np.argsort(-probs):
        print(f"  {CLASSES[k]:<12} {probs[k]:6.1%}")
    print(f"images written to {out}/")
