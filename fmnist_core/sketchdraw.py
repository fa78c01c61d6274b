"""Drawings made from the training photos and framed by the Sketch page's own pipeline.

    drawn = drawings(photos, labels)     # uint8 (VERSIONS, N, 28, 28), made once, then cached
    ink = draw(photo, label, rng)        # float (H, W): one photo drawn as a mouse would draw it
    frame = frame_ink(ink)               # what the Sketch page makes of such a drawing

The sketch preset trains on these next to the photos (fmnist_core.train). Each photo becomes
what a person with a mouse draws of that item, then goes through ``sketch.frame_ink``, the
same crop, fill, seam and scale rules as a drawing on the page, so the model learns from
exactly the kind of image the page gives it:

- the item's silhouette (pixels above a random level, small gaps closed), its proportions
  drawn closer to square than the photo's (``ASPECT_POWER``: people draw tops and trousers
  wider, ~27 px vs ~21 for tops, and low, long shoes taller than the photos show them), its
  outline traced with a pen 1-11% of the item's size; parts thinner than ~2.4 photo pixels
  (a sandal's straps, a bag's handle) drawn as one line, as people draw them; most coats
  drawn longer than their sleeves (``_long_coat``: the photos are mostly jackets);
- drawn as an outline (60%), coloured in (20%: the silhouette solid, marks covered, as the
  canvas's one white pen covers them), or an outline with a sparse hatching inside (20%);
- the marks a person draws to say *which* item it is, by rule from the photo's box, each
  with a probability and its own jitter (``_marks``): a coat's front opening and lapels, a
  shirt's pointed collar and button placket, a T-shirt's neckline, a sneaker's sole and laces,
  a boot's sole, a dress's waist, a bag's flap. Photos rarely show these at 28x28, yet they are
  what tells a drawn coat from a pullover. They are general knowledge, written from the
  photo's box, not copied from the sketch benchmark (fmnist_core.sketchset);
- rotated up to 12 degrees.

Measured (README, Sketch: sketch model): the sketch benchmark's dev split (600 drawings) went
from 66.5% (the previous drawing-like tensors, retrained) to 76.5% (recipe 2) and 81.2%
(recipe 3: proportions closer to square, long coats; the shipped model, seed 1), its test
split from 65.0% to 77.9% and 85.0%; without the marks, 66.8%.

Making them costs ~3 ms per drawing (the framing's flood fill): ~3 min for 2 x 60,000 on two
cores, once; the result is cached under the user's cache folder, keyed by the photos and the
recipe (``RECIPE``), and written atomically; a damaged cache file is made again.
"""

from __future__ import annotations

import hashlib
import logging
import math
import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw

from fmnist_core.atomic import atomic_writer
from fmnist_core.sketch import FRAME, _max_filter, frame_ink

log = logging.getLogger(__name__)

RECIPE = 3  # bump when the drawings change: the cache is keyed by it
VERSIONS = 2  # drawings per photo (different pens, styles, marks)
SEED = 0
ITEM_PX = 104  # the item's longest side while drawing (the page frames at 112)
PAD = 8
# Proportions drawn closer to square than the photo's: a width:height ratio r is drawn as
# r**a (a uniform in ASPECT_POWER) times exp(+-ASPECT_JITTER). Measured (README): people draw
# tops and trousers wider and low, long shoes taller than the photos show them.
ASPECT_POWER = (0.25, 1.0)
ASPECT_JITTER = 0.25
PEN = (0.012, 0.11)  # pen width, share of the item's size (log-uniform)
# "detail" is drawn as "outline" is (marks go on every style but "filled"): two names for
# one style, kept so that the shipped model's drawings are made again exactly (RECIPE 3).
STYLES = ("outline", "filled", "scribble", "detail")
STYLE_ODDS = (0.3, 0.2, 0.2, 0.3)
LONG_COAT = 0.7  # of the coats drawn with the body below the sleeves ...
LONG_BY = (0.05, 0.25)  # ... by this share of the item's height
ROTATION = 12  # degrees, at most
THIN = 9  # px while drawing (~2.4 px of the photo): narrower parts are drawn as one line
CHUNK = 500  # photos per task when drawing in worker processes
PARALLEL_FROM = 5000  # fewer photos than this are drawn in this process
SHARE = 0.5  # of each training batch shown as drawings (the sketch preset)


def _traced(mask: np.ndarray, width: int) -> np.ndarray:
    """``mask`` drawn with a pen ``width`` px wide: its outline, but thin parts (a strap, a
    handle: narrower than THIN px) as one line each, as a person draws them, not as two."""
    edge = mask & _max_filter(~mask, 3)
    if width > 1:
        edge = _max_filter(edge, width)
    core = ~_max_filter(~mask, THIN)  # an erosion: what is wider than THIN px survives
    thin = mask & ~_max_filter(core, THIN)  # ... and grown back: the opening's leftovers
    return edge & ~thin | _max_filter(thin, max(1, width // 2))


def _hatch(mask: np.ndarray, rng: np.random.Generator, spacing: float, width: int) -> np.ndarray:
    """Parallel lines ``spacing`` apart at a random angle, kept inside ``mask``."""
    angle = rng.uniform(0, math.pi)
    yy, xx = np.mgrid[0 : mask.shape[0], 0 : mask.shape[1]]
    along = xx * math.cos(angle) + yy * math.sin(angle)
    return (np.mod(along, spacing) < width) & mask


Line = list[tuple[float, float]]
Stop = Callable[[], bool]


def _marks(label: int, box: tuple[int, int, int, int], rng: np.random.Generator) -> list[Line]:
    """The marks people draw to name an item of class ``label``, placed on its ``box``
    (top, bottom, left, right): polylines in pixels; a one-point line is a dot."""
    top, bottom, left, right = box
    h, w = bottom - top, right - left
    cx = (left + right) / 2 + rng.normal(0, 0.01) * w

    def at(fx: float, fy: float) -> tuple[float, float]:  # box fractions, jittered
        return cx + (fx + rng.normal(0, 0.02)) * w, top + (fy + rng.normal(0, 0.02)) * h

    r = rng.random
    out: list[Line] = []
    if label == 0 and r() < 0.5:  # T-shirt: a neckline
        depth = rng.uniform(0.06, 0.18)
        out.append([at(-0.1, 0.01), at(0, depth), at(0.1, 0.01)])
    elif label == 1 and r() < 0.3:  # trouser: the waistband
        out.append([at(-0.5, 0.07), at(0.5, 0.07)])
    elif label == 2 and r() < 0.4:  # pullover: a ribbed hem or a round neck
        if r() < 0.5:
            out.append([at(-0.3, 0.92), at(0.3, 0.92)])
        else:
            out.append([at(-0.1, 0.01), at(-0.05, 0.06), at(0.05, 0.06), at(0.1, 0.01)])
    elif label == 3 and r() < 0.4:  # dress: the waist
        y = rng.uniform(0.3, 0.45)
        out.append([at(-0.2, y), at(0.2, y)])
    elif label == 4 and r() < 0.85:  # coat: the front opening, lapels, buttons, pockets
        y0 = rng.uniform(0.1, 0.35)
        out.append([at(0, y0), at(0, 1.0)])
        if r() < 0.8:
            s = rng.uniform(0.1, 0.2)
            out += [[at(-s, 0.0), at(0, y0)], [at(s, 0.0), at(0, y0)]]
        if r() < 0.4:
            out += [[at(0.05, f)] for f in np.linspace(y0 + 0.1, 0.85, int(rng.integers(2, 5)))]
        if r() < 0.3:
            out += [[at(sign * 0.3, 0.6), at(sign * 0.15, 0.6)] for sign in (-1, 1)]
    elif label == 6 and r() < 0.85:  # shirt: a pointed collar, the placket, buttons, a pocket
        s, d = rng.uniform(0.08, 0.15), rng.uniform(0.08, 0.15)
        out += [[at(-s, 0.0), at(-s / 3, d), at(0, 0.03)], [at(s, 0.0), at(s / 3, d), at(0, 0.03)]]
        if r() < 0.8:
            out.append([at(0, 0.04), at(0, 1.0)])
        if r() < 0.6:
            out += [[at(0.04, f)] for f in np.linspace(0.2, 0.9, int(rng.integers(3, 7)))]
        if r() < 0.3:
            out.append([at(-0.28, 0.3), at(-0.12, 0.3), at(-0.12, 0.45), at(-0.28, 0.45),
                        at(-0.28, 0.3)])  # fmt: skip
    elif label == 7 and r() < 0.6:  # sneaker: the sole's line, laces
        if r() < 0.7:
            out.append([at(-0.48, 0.75), at(0.48, 0.75)])
        if r() < 0.6:
            out += [[at(f, 0.25), at(f + 0.06, 0.45)]
                    for f in np.linspace(-0.15, 0.1, int(rng.integers(2, 5)))]  # fmt: skip
    elif label == 8 and r() < 0.3:  # bag: a flap or clasp
        y = rng.uniform(0.35, 0.55)
        out.append([at(-0.45, y), at(0.45, y)])
    elif label == 9 and r() < 0.5:  # ankle boot: the sole's line
        out.append([at(-0.48, 0.85), at(0.48, 0.85)])
    return out  # sandal: its straps are in the silhouette already


def _long_coat(mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A coat's ``mask`` with its body reaching below the sleeves, as people draw a coat (the
    photos are mostly jackets whose sleeves end level with the hem: measured, the middle of a
    coat photo ends a median 1 px *above* its sides): the bottom's middle, a body's width,
    made solid from ``longer`` above the hem to ``longer`` below it (LONG_BY of the item's
    height), so a dip in the hem does not stay a notch."""
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    h, w = rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1
    side = rng.uniform(0.15, 0.25)  # the sleeves' share of the width, each side
    left, right = cols[0] + round(side * w), cols[-1] - round(side * w)
    longer = round(rng.uniform(*LONG_BY) * h)
    out = np.pad(mask, ((0, longer), (0, 0)))
    out[rows[-1] - longer : rows[-1] + longer + 1, left : right + 1] = True
    return out


def _draw_lines(shape: tuple[int, int], lines: list[Line], width: int) -> np.ndarray:
    layer = Image.new("L", (shape[1], shape[0]), 0)
    pen = ImageDraw.Draw(layer)
    for line in lines:
        if len(line) > 1:
            pen.line(line, fill=255, width=width, joint="curve")
        r = width / 2 + (1 if len(line) == 1 else 0)  # round ends; a dot a little larger
        for x, y in (line[0], line[-1]):
            pen.ellipse((x - r, y - r, x + r, y + r), fill=255)
    return np.asarray(layer) > 127


def draw(photo: np.ndarray, label: int, rng: np.random.Generator) -> np.ndarray | None:
    """``photo`` (uint8 28x28) drawn as a person with a mouse would draw that item: float ink
    (H, W) in [0, 1], white on black like the canvas; None for an empty photo."""
    p = photo.astype(np.float32) / 255
    on = p > 0.05
    rows, cols = np.flatnonzero(on.any(1)), np.flatnonzero(on.any(0))
    if rows.size == 0:
        return None
    crop = p[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    ratio = crop.shape[1] / crop.shape[0]
    power, jitter = rng.uniform(*ASPECT_POWER), rng.uniform(-ASPECT_JITTER, ASPECT_JITTER)
    stretch = ratio ** (power - 1) * math.exp(jitter)  # the ratio drawn: ratio**power * e**jitter
    scale = ITEM_PX / max(crop.shape[1] * stretch, crop.shape[0])
    size = (max(4, round(crop.shape[1] * stretch * scale)), max(4, round(crop.shape[0] * scale)))
    big = np.asarray(Image.fromarray(crop).resize(size, Image.Resampling.BICUBIC))
    mask = np.pad(big, PAD) > rng.uniform(0.03, 0.15)
    mask |= ~_max_filter(~_max_filter(mask, 5), 5)  # a closing: small gaps are not drawn
    if label == 4 and rng.random() < LONG_COAT:
        mask = _long_coat(mask, rng)
    item = max(size)
    pen = max(1, round(item * math.exp(rng.uniform(*np.log(PEN)))))
    style = STYLES[rng.choice(len(STYLES), p=STYLE_ODDS)]
    if style == "filled":  # coloured in: one white pen covers any marks
        ink = mask.copy()
    else:
        ink = _traced(mask, pen)
        if style == "scribble":
            spacing = item * rng.uniform(0.05, 0.12)
            ink |= _hatch(mask, rng, spacing, max(1, int(pen * rng.uniform(0.4, 1.0))))
        rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
        box = (rows[0], rows[-1], cols[0], cols[-1])
        width = max(1, int(pen * rng.uniform(0.6, 1.0)))
        marks = _draw_lines(mask.shape, _marks(label, box, rng), width)
        ink |= marks & _max_filter(mask, 3)  # on the item, not in the air beside it
    angle = rng.uniform(-ROTATION, ROTATION)
    turned = Image.fromarray(ink.astype(np.float32)).rotate(
        angle, resample=Image.Resampling.BILINEAR, expand=True
    )
    return np.clip(np.asarray(turned), 0, 1)


def drawn_frames(
    photos: np.ndarray, labels: np.ndarray, seed: int, stop: Stop | None = None
) -> np.ndarray:
    """uint8 (N, 28, 28): each photo drawn (``draw``) and framed as the page frames drawings;
    in worker processes for many photos. The same ``seed`` and photos give the same frames.
    ``stop()`` is asked between chunks: true raises DrawingStopped."""
    workers = min(os.cpu_count() or 1, 8)
    tasks = [(photos[s : s + CHUNK], labels[s : s + CHUNK], seed, s)
             for s in range(0, len(photos), CHUNK)]  # fmt: skip
    done = []
    if len(photos) < PARALLEL_FROM or workers < 2:
        for task in tasks:
            _check(stop)
            done.append(_chunk(task))
        return np.concatenate(done)
    # spawn, not fork: this may run in a thread of the Streamlit server
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        try:
            for frames in pool.map(_chunk, tasks):
                _check(stop)
                done.append(frames)
        except DrawingStopped:
            pool.shutdown(cancel_futures=True)
            raise
    return np.concatenate(done)


def _check(stop: Stop | None) -> None:
    if stop is not None and stop():
        raise DrawingStopped("stopped while making the drawings")


def _chunk(args: tuple[np.ndarray, np.ndarray, int, int]) -> np.ndarray:
    """Frames of one chunk of photos; its own random stream (seed, start), so the frames do
    not depend on how the chunks are shared out."""
    photos, labels, seed, start = args
    out = np.empty((len(photos), FRAME, FRAME), np.uint8)
    rng = np.random.default_rng([seed, start])
    for i, (photo, label) in enumerate(zip(photos, labels, strict=True)):
        ink = draw(photo, int(label), rng)
        out[i] = photo if ink is None else frame_ink(ink)
    return out


class DrawingStopped(Exception):
    """``stop()`` turned true while the drawings were being made (nothing is cached)."""


def cache_dir() -> Path:
    """$FMNIST_CACHE_DIR, else the user's cache folder (XDG_CACHE_HOME or ~/.cache)/fmnist."""
    if explicit := os.environ.get("FMNIST_CACHE_DIR"):
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "fmnist" / "drawings"


def _key(photos: np.ndarray, labels: np.ndarray) -> str:
    digest = hashlib.sha256(photos.tobytes())
    digest.update(labels.astype(np.int64).tobytes())
    return digest.hexdigest()[:16]


def _load(path: Path, shape: tuple[int, ...]) -> np.ndarray | None:
    try:
        arr = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        return None
    except (OSError, ValueError, EOFError) as exc:
        log.warning("damaged drawings cache %s (%s): making it again", path, exc)
        return None
    if arr.shape != shape or arr.dtype != np.uint8:
        log.warning("drawings cache %s holds %s %s: making it again", path, arr.shape, arr.dtype)
        return None
    return arr


def drawings(
    photos: np.ndarray, labels: np.ndarray, versions: int = VERSIONS, stop: Stop | None = None
) -> np.ndarray:
    """uint8 (versions, N, 28, 28): ``versions`` framed drawings of every photo (uint8
    (N, 28, 28)), each version with its own seed; read from the cache when made before."""
    photos = np.ascontiguousarray(photos, dtype=np.uint8)
    labels = np.asarray(labels)
    key = _key(photos, labels)
    out = []
    for v in range(versions):
        path = cache_dir() / f"recipe{RECIPE}-{key}-seed{SEED + v}.npy"
        frames = _load(path, photos.shape)
        if frames is None:
            log.info("drawing %d training photos (version %d, once; cached in %s)",
                     len(photos), v + 1, path.parent)  # fmt: skip
            frames = drawn_frames(photos, labels, SEED + v, stop)
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                with atomic_writer(path) as f:
                    np.save(f, frames)
            except OSError as exc:  # a read-only home: train anyway, make them next time too
                log.warning("could not cache the drawings in %s: %s", path, exc)
        out.append(frames)
    return np.stack(out)


def drawings_of(
    x: torch.Tensor, y: torch.Tensor, versions: int = VERSIONS, stop: Stop | None = None
) -> torch.Tensor:
    """``drawings`` of the photos ``x`` (float (N, 1, S, S) in [0, 1], labels ``y``) as a
    uint8 tensor (versions, N, 28, 28); photos at another size than 28 are drawn from 28 px."""
    if x.shape[-1] != FRAME:
        x = F.interpolate(x, size=(FRAME, FRAME), mode="bilinear", align_corners=False)
    photos = (x[:, 0].clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy()
    return torch.from_numpy(drawings(photos, y.cpu().numpy(), versions, stop))


def with_drawings(
    x: torch.Tensor,
    drawn: torch.Tensor,
    take: torch.Tensor,
    gen: torch.Generator,
    share: float = SHARE,
) -> torch.Tensor:
    """``x`` (the images ``take``) with about ``share`` of them replaced by a framed drawing of
    the same photo (``drawn``: uint8 (versions, N, 28, 28)), one of its versions at random."""
    n = len(take)
    pick = (torch.rand(n, generator=gen) < share).to(x.device)
    version = torch.randint(0, drawn.shape[0], (n,), generator=gen).to(drawn.device)
    d = drawn[version, take.to(drawn.device)].unsqueeze(1).to(x.device, x.dtype).div_(255)
    if d.shape[-1] != x.shape[-1]:  # the model's size, resized as fmnist_core.data does
        d = F.interpolate(d, size=x.shape[-2:], mode="bilinear", antialias=True).clamp_(0, 1)
    return torch.where(pick.view(-1, 1, 1, 1), d, x)
