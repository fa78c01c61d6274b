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
ITEM_SHARE = 0.2  # ... nor one smaller than this share of the item's box (sandal straps)
INNER_WALL = 0.25  # ... unless under this share of its wall is the outline (a pocket)
OUTLINE_LEVEL = 0.85  # a filled drawing's outline: the dataset's edges are not flat 255
SCRIBBLE_SHARE = 0.2  # interior lines covering more of the inside than this are a fill
SOLID_RIM = 9  # ink over 4 px (at WORK_SIZE) from any background is a coloured-in inside
DETAIL_SHADE = 0.55  # interior lines of a filled drawing, relative to the fill: darker seams
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
    sizes = [int(ids.max()) + 1 for ids in runs]  # once, not at every step
    count = -1
    while count != (count := int(out.sum())):
        for ids, size in zip(runs, sizes, strict=True):
            reached = np.zeros(size, bool)
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


def _holes(holes: np.ndarray) -> list[np.ndarray]:
    """The connected holes (4-connected regions of ``holes``), at most MAX_HOLES of them."""
    parts, left, runs = [], holes.copy(), _runs(holes)
    while left.any() and len(parts) < MAX_HOLES:
        seed = np.zeros_like(left)
        seed.flat[np.argmax(left)] = True
        part = _grow(seed, runs)  # a run never spans two holes: the labels serve every hole
        parts.append(part)
        left &= ~part
    return parts


def _filled_holes(holes: np.ndarray, outer_ink: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Which holes of a drawing are its inside (filled) and which are gaps of the item.

    A hole is filled when it is a large part of the item: at least HOLE_SHARE of the largest
    hole and ITEM_SHARE of the item's box (a T-shirt's body, a bag's body, a shoe). The space
    under a sandal's straps or inside a bag's handle is a small part of the box and stays dark,
    as in the dataset. A smaller hole is still filled when mostly walled by interior lines
    (ink that does not touch the outside): a pocket, a piece of a coat cut off by its collar.
    """
    parts = _holes(holes)
    largest = max((int(p.sum()) for p in parts), default=0)
    keep = np.zeros_like(holes)
    for part in parts:
        area = int(part.sum())
        if area >= HOLE_SHARE * largest and area >= ITEM_SHARE * holes.size:
            keep |= part
            continue
        wall = _max_filter(part, 3) & mask
        if wall.any() and (wall & outer_ink).sum() < INNER_WALL * wall.sum():
            keep |= part
    return keep


def _max_filter(mask: np.ndarray, size: int) -> np.ndarray:
    """Binary dilation by a size x size square (separable; the edge counts as empty).

    Shifted copies OR-ed in place: it runs after every stroke on the Sketch page, and np.pad
    plus a list reduction took most of its time."""
    h, w = mask.shape
    r = size // 2
    rows = np.zeros((h + 2 * r, w), bool)
    rows[r : r + h] = mask
    out = rows[0:h].copy()
    for i in range(1, size):
        out |= rows[i : i + h]
    cols = np.zeros((h, w + 2 * r), bool)
    cols[:, r : r + w] = out
    out = cols[:, 0:w].copy()
    for i in range(1, size):
        out |= cols[:, i : i + w]
    return out


def fill_outlines(
    ink: np.ndarray, value: float = FILL_LEVEL, close: int = CLOSE_SIZE
) -> np.ndarray:
    """Fill what a flood from the border cannot reach; small gaps (< ``close`` px) count as shut.

    The ink mask is dilated before the flood (closing small gaps) and the unreached region is
    eroded back by the same amount, so the filled shape does not grow past the outline. Which
    holes are filled: ``_filled_holes``. Inside a filled shape, interior lines (a coat's
    opening, a collar, buttons) are drawn darker than the fill, as seams and edges look in the
    dataset's photos, instead of bright lines that cut the item into slivers; the outline is
    dimmed to OUTLINE_LEVEL, closer to the dataset's edges than a flat 255.
    """
    mask = ink > INK_LEVEL
    margin = close  # room so the dilation is not cut off by the edge of the crop
    closed = _max_filter(np.pad(mask, margin), close)
    inside = ~_max_filter(_outside(~closed), close)  # erosion = dilation of the complement
    inside = inside[margin:-margin, margin:-margin]
    reach = max(3, 2 * _stroke_width(mask) + 1)  # a pen's width from the outside: the outline
    outer_ink = mask & _max_filter(~inside & ~mask, reach)
    holes = _filled_holes(inside & ~mask, outer_ink, mask)
    background = np.pad(~mask, 1, constant_values=True)  # beyond the crop is background too
    core = mask & ~_max_filter(background, SOLID_RIM)[1:-1, 1:-1]  # coloured in: far from it
    if not holes.any() and not core.any():
        return ink
    near = _max_filter(holes, reach)  # ink within a pen's width of a filled hole
    detail = mask & near & ~outer_ink  # ink with the filled inside on both sides
    if detail.sum() > SCRIBBLE_SHARE * (holes.sum() + detail.sum()):
        holes, detail = holes | detail, np.zeros_like(detail)  # dense lines: a scribbled fill
    out = np.where(holes | core, value, ink * OUTLINE_LEVEL)
    return np.where(detail, value * DETAIL_SHADE, out).astype(np.float32)


def _stroke_width(mask: np.ndarray) -> int:
    """The pen's width in pixels, estimated as ink area / half its perimeter."""
    edge = mask & ~_max_filter(~mask, 3)
    inner = mask.sum() - edge.sum()
    perimeter = max(1, int(mask.sum() - inner))
    return max(1, round(2 * int(mask.sum()) / perimeter))


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


def mirrored(x: torch.Tensor) -> torch.Tensor:
    """Inputs (N, 1, S, S) followed by their mirror images: (2N, 1, S, S)."""
    return torch.cat([x, x.flip(-1)])


def mirror_mean(probs: torch.Tensor) -> torch.Tensor:
    """(2N, 10) probabilities of ``mirrored`` inputs -> (N, 10): each input's and its mirror
    image's averaged. A drawing has no left and right (people draw a shoe facing either
    way); averaging the two answers scored +1.1 points on the sketch set's dev split, mean
    of 10 models, better for 9 of them (README)."""
    return probs.view(2, -1, probs.shape[-1]).mean(0)


@torch.inference_mode()
def predict(model: nn.Module, tensor: torch.Tensor) -> np.ndarray:
    """Class probabilities (10,) float for one input (1, 1, S, S) and its mirror image, averaged.

    One CPU thread: a single small image gains nothing from more, and on a busy CPU (a
    training running next to it) the thread pool's waiting made it ~10x slower (measured).
    With torch's OpenMP backend the setting is per thread, so a training thread keeps its own.
    """
    device = next(model.parameters()).device
    with one_thread():
        probs = torch.softmax(model(mirrored(tensor.to(device))).float(), dim=1)
        return mirror_mean(probs)[0].cpu().numpy()


def dataset_image(index: int, image_size: int, data_dir: str | Path | None = None) -> tuple:
    """(Prepared, true class index) for test image ``index`` (already framed by the dataset)."""
    ds = load_dataset(data_dir)
    index = int(index) % len(ds.test_labels)
    return from_frame(ds.test_images[index].numpy(), image_size), int(ds.test_labels[index])
