"""Drawings and uploaded images -> the model's input, framed the way Fashion-MNIST is.

    sketch = prepare(canvas_rgba, image_size=28)   # EmptySketchError when nothing is drawn
    sketch.preview                                 # uint8 (28, 28): what the model sees
    probs = predict(model, sketch.tensor)          # (10,) class probabilities
    sketch = prepare(read_upload(png_bytes), 28)   # UploadError with a message for a bad file

Images come in through fmnist_core.images (re-exported here), which checks every one against
the same byte and pixel limits before decoding it; ``prepare`` refuses a decoded image over them.

A raw drawing looks nothing like a dataset image: a thin light line anywhere on a big canvas.
Fashion-MNIST items are filled, light-on-dark silhouettes, their bounding box centred, and
their longest side spans the whole frame: measured on the 60,000 training images, the
longest side of the bounding box of pixels > 0, > 25 and > 50 has a median of 28 px (10th
percentile 28, 28 and 27) and the median box centre is (13.5, 13.5), the exact centre. So:

1. greyscale, light on dark: transparent images use alpha; opaque ones use luminance and are
   inverted when their border is light (a photo of a drawing on white paper), then the
   background level (border median) is subtracted and the contrast stretched to [0, 1];
2. crop to the ink's bounding box and scale it, aspect kept, to WORK_SIZE on its longest side;
3. optionally fill closed outlines (what a flood from the border does not reach);
4. scale the longest side to ITEM_SIZE (28) and centre the box in 28x28; light Gaussian blur;
5. uint8 like the dataset, then ``data.resize`` to the model's image size, as training does.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn

from fmnist_core.data import load_dataset, resize
from fmnist_core.images import (  # noqa: F401 - re-exported: the sketch API reads images
    MAX_UPLOAD_BYTES,
    MAX_UPLOAD_PIXELS,
    UploadError,
    check_image_bytes,
    check_pixels,
    read_data_url,
    read_upload,
)
from fmnist_core.threads import one_thread

ITEM_SIZE = 28  # longest side of a training item's bounding box (measured, see above)
FRAME = 28  # the dataset's image size
WORK_SIZE = 112  # resolution of the crop while filling (4x the frame)
CLOSE_SIZE = 7  # gaps up to ~6 px at WORK_SIZE (~5% of the item) still count as closed
FILL_LEVEL = 0.63  # a filled inside: the training items' mean pixel (> 25) is 160.6/255
HOLE_SHARE = 0.25  # a hole smaller than this share of the largest hole is not filled
MAX_HOLES = 100  # holes looked at (a noisy photo can have thousands of tiny ones)
INK_LEVEL = 0.2  # a pixel brighter than this (0..1) is ink, for the box and the fill
EMPTY_CONTRAST = 0.1  # less ink contrast than this anywhere: nothing is drawn
BLUR_SIGMA = 0.5  # light smoothing, in pixels of the 28x28 frame
ASSETS_DIR = Path(__file__).resolve().parent.parent / "assets"
DEFAULT_MODEL_DIR = ASSETS_DIR / "default_model"
SKETCH_MODEL_DIR = ASSETS_DIR / "sketch_model"  # trained with the sketch preset (README)


class SketchError(ValueError):
    """The image cannot be turned into a model input; the message says why."""


class EmptySketchError(SketchError):
    """Nothing is drawn (or the image is one flat colour)."""


@dataclass(frozen=True)
class Prepared:
    preview: np.ndarray  # uint8 (28, 28), light on dark: what the model sees, at 28x28
    tensor: torch.Tensor  # float (1, 1, S, S) in [0, 1], like fmnist_core.data tensors


def _as_array(image: Any) -> np.ndarray:
    """(H, W) grey or (H, W, 3|4) colour, uint8 or float32 in [0, 1], from PIL, bytes, arrays."""
    if image is None:  # the canvas before the first stroke
        raise EmptySketchError("Nothing is drawn - draw something.")
    if isinstance(image, (bytes, bytearray)):
        image = read_upload(bytes(image))
    if isinstance(image, Image.Image):
        check_pixels(image.width, image.height)  # before convert() decodes a lazy image
        transparent = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
        image = image.convert("RGBA" if transparent else "L")
    arr = np.asarray(image)
    if arr.ndim >= 2:
        check_pixels(arr.shape[1], arr.shape[0])
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    shape_ok = arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] in (3, 4))
    if not shape_ok or 0 in arr.shape or arr.dtype.kind not in "biuf":
        raise SketchError(
            f"Expected a greyscale, RGB or RGBA image; got an array {arr.shape} of {arr.dtype}."
        )
    if arr.dtype == np.uint8:
        return arr
    arr = np.nan_to_num(arr.astype(np.float32))
    if arr.max() > 1:  # float or int images on the 0..255 scale
        arr = arr / 255
    return np.clip(arr, 0, 1)


def _grey(arr: np.ndarray) -> tuple[np.ndarray, bool]:
    """(float32 (H, W) in [0, 1], True when it is the alpha of a transparent image)."""
    scale = np.float32(1 / 255) if arr.dtype == np.uint8 else np.float32(1)
    if arr.ndim == 3 and arr.shape[2] == 4 and arr[:, :, 3].min() * scale < 0.99:
        return arr[:, :, 3] * scale, True  # transparent background: what is painted is the item
    if arr.ndim == 3 and arr.dtype == np.uint8:  # PIL's luma (ITU-R 601), fast in C
        arr = np.asarray(Image.fromarray(np.ascontiguousarray(arr)).convert("L"))
    elif arr.ndim == 3:
        arr = arr[:, :, :3] @ np.float32([0.299, 0.587, 0.114])
    return arr * scale, False


def to_ink(image: Any) -> np.ndarray:
    """float32 (H, W) in [0, 1], light ink on a 0 background; EmptySketchError if blank."""
    grey, transparent = _grey(_as_array(image))
    background = 0.0
    if not transparent:
        edge = max(1, min(grey.shape) // 50)
        border = [grey[:edge], grey[-edge:], grey[:, :edge].T, grey[:, -edge:].T]
        background = float(np.median(np.concatenate([b.ravel() for b in border])))
        if background > 0.5:  # dark on light (paper): invert to the dataset's light on dark
            grey, background = 1 - grey, 1 - background
    contrast = float(grey.max()) - background
    if contrast < EMPTY_CONTRAST:
        raise EmptySketchError("Nothing is drawn - draw something.")
    if background == 0 and contrast == 1:
        return grey  # a canvas: black background, white strokes - already ink
    return np.clip((grey - background) / contrast, 0, 1)


def _resize(arr: np.ndarray, width: int, height: int) -> np.ndarray:
    """Float image resize; PIL's bilinear filter averages (antialiases) when shrinking."""
    out = Image.fromarray(arr.astype(np.float32)).resize((width, height), Image.Resampling.BILINEAR)
    return np.clip(np.asarray(out), 0, 1)


def _fit(height: int, width: int, longest: int) -> tuple[int, int]:
    """(w, h) with the longest side ``longest`` and the aspect ratio kept (each side >= 1)."""
    scale = longest / max(height, width)
    return max(1, round(width * scale)), max(1, round(height * scale))


Runs = tuple[np.ndarray, np.ndarray]


def _row_runs(free: np.ndarray) -> np.ndarray:
    """Label each horizontal run of free pixels 1, 2, ...; 0 where not free."""
    starts = free.copy()
    starts[:, 1:] &= ~free[:, :-1]
    return np.where(free, np.cumsum(starts.ravel()).reshape(free.shape), 0)


def _runs(free: np.ndarray) -> Runs:
    """Row and column run labels of ``free``, computed once per mask."""
    return _row_runs(free), _row_runs(np.ascontiguousarray(free.T)).T


def _grow(seed: np.ndarray, runs: Runs) -> np.ndarray:
    """The free pixels 4-connected to ``seed``: a flood fill that takes whole row and column
    runs at a time, so it needs one step per turn of the path rather than one per pixel."""
    out = seed & (runs[0] > 0)
    count = -1
    while count != (count := int(out.sum())):
        for ids in runs:
            reached = np.zeros(int(ids.max()) + 1, bool)
            reached[ids[out]] = True
            reached[0] = False
            out = reached[ids]
    return out


def _outside(free: np.ndarray) -> np.ndarray:
    """Free pixels 4-connected to the image border: a flood fill from outside the item."""
    free = np.pad(free, 1, constant_values=True)
    seed = np.zeros_like(free)
    seed[0], seed[-1], seed[:, 0], seed[:, -1] = True, True, True, True
    return _grow(seed, _runs(free))[1:-1, 1:-1]


def _big_holes(holes: np.ndarray, share: float = HOLE_SHARE) -> np.ndarray:
    """The connected holes at least ``share`` of the largest one (bag handles stay open)."""
    parts, left, runs = [], holes.copy(), _runs(holes)
    while left.any() and len(parts) < MAX_HOLES:
        seed = np.zeros_like(left)
        seed.flat[np.argmax(left)] = True
        part = _grow(seed, runs)  # a run never spans two holes: the labels serve every hole
        parts.append(part)
        left &= ~part
    largest = max((int(p.sum()) for p in parts), default=0)
    keep = np.zeros_like(holes)
    for part in parts:
        if part.sum() >= share * largest:
            keep |= part
    return keep


def _max_filter(mask: np.ndarray, size: int) -> np.ndarray:
    """Binary dilation by a size x size square (separable; the edge counts as empty)."""
    out = mask
    for axis in (0, 1):
        padded = np.pad(out, [(size // 2, size // 2) if a == axis else (0, 0) for a in (0, 1)])
        n = out.shape[axis]
        out = np.logical_or.reduce(
            [padded[i : i + n] if axis == 0 else padded[:, i : i + n] for i in range(size)]
        )
    return out


def fill_outlines(
    ink: np.ndarray, value: float = FILL_LEVEL, close: int = CLOSE_SIZE
) -> np.ndarray:
    """Fill what a flood from the border cannot reach; small gaps (< ``close`` px) count as shut.

    The ink mask is dilated before the flood (closing small gaps) and the unreached region is
    eroded back by the same amount, so the filled shape does not grow past the outline. Holes
    much smaller than the largest one stay dark, like the handle of a bag in the dataset.
    """
    mask = ink > INK_LEVEL
    margin = close  # room so the dilation is not cut off by the edge of the crop
    closed = _max_filter(np.pad(mask, margin), close)
    inside = ~_max_filter(_outside(~closed), close)  # erosion = dilation of the complement
    holes = _big_holes(inside[margin:-margin, margin:-margin] & ~mask)
    return np.where(holes, np.maximum(ink, value), ink)


def _blur(frame: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur with a 3-tap kernel (enough for sigma <= ~0.8)."""
    if sigma <= 0:
        return frame
    k = np.exp(-np.array([1.0, 0.0, 1.0]) / (2 * sigma**2))
    k /= k.sum()
    padded = np.pad(frame, 1)
    rows = k[0] * padded[:-2] + k[1] * padded[1:-1] + k[2] * padded[2:]
    return k[0] * rows[:, :-2] + k[1] * rows[:, 1:-1] + k[2] * rows[:, 2:]


def frame_ink(ink: np.ndarray, fill: bool = True, blur: float = BLUR_SIGMA) -> np.ndarray:
    """Crop to the ink, (fill), scale the longest side to ITEM_SIZE, centre in 28x28; uint8."""
    mask = ink > INK_LEVEL
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    if rows.size == 0:
        raise EmptySketchError("Nothing is drawn - draw something.")
    crop = ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    crop = _resize(crop, *_fit(*crop.shape, WORK_SIZE))
    if fill:
        crop = fill_outlines(crop)
    width, height = _fit(*crop.shape, ITEM_SIZE)
    frame = np.zeros((FRAME, FRAME), np.float32)
    top, left = (FRAME - height) // 2, (FRAME - width) // 2
    frame[top : top + height, left : left + width] = _resize(crop, width, height)
    frame = _blur(frame, blur)
    return np.round(np.clip(frame, 0, 1) * 255).astype(np.uint8)


def from_frame(preview: np.ndarray, image_size: int) -> Prepared:
    """A ready 28x28 uint8 frame (a dataset image, or a framed sketch) -> model input."""
    preview = np.ascontiguousarray(preview, dtype=np.uint8)
    tensor = resize(torch.from_numpy(preview).unsqueeze(0), image_size)  # (1, 1, S, S)
    return Prepared(preview, tensor)


def prepare(image: Any, image_size: int = 28, fill: bool = True) -> Prepared:
    """Any drawing or image (RGBA/RGB/grey array, PIL image, PNG/JPEG bytes) -> model input.

    Raises EmptySketchError when nothing is drawn, UploadError for bad bytes, SketchError for
    an array that is not an image.
    """
    return from_frame(frame_ink(to_ink(image), fill=fill), image_size)


@torch.inference_mode()
def predict(model: nn.Module, tensor: torch.Tensor) -> np.ndarray:
    """Class probabilities (10,) float for one input (1, 1, S, S).

    One CPU thread: a single small image gains nothing from more, and on a busy CPU (a
    training running next to it) the thread pool's waiting made it ~10x slower (measured).
    With torch's OpenMP backend the setting is per thread, so a training thread keeps its own.
    """
    device = next(model.parameters()).device
    with one_thread():
        return torch.softmax(model(tensor.to(device)), dim=1)[0].float().cpu().numpy()


def dataset_image(index: int, image_size: int, data_dir: str | Path | None = None) -> tuple:
    """(Prepared, true class index) for test image ``index`` (already framed by the dataset)."""
    ds = load_dataset(data_dir)
    index = int(index) % len(ds.test_labels)
    return from_frame(ds.test_images[index].numpy(), image_size), int(ds.test_labels[index])
