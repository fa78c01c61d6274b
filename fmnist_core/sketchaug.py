"""Training-time augmentation that turns dataset images into drawing-like versions.

    x = drawing_like(x, gen)     # (B, 1, S, S) in [0, 1] -> same shape; about half changed

A drawing on the Sketch page differs from a Fashion-MNIST photo in ways a model trained on
photos never saw (measured on the sketch set, benchmarks/sketch_bench.py): it is an outline or
a flat, uniformly bright fill, items are wider relative to their height, lines have any
thickness. So each image, with probability ``SHARE``, is replaced by one of:

- a flat silhouette: the item's mask (pixels above a random threshold) at one intensity;
- an outline: the mask's edge, 1-3 px wide (mask minus its erosion), at one intensity;
- an outline plus a fill: the edge bright, the inside flat and darker (what the framing of a
  filled outline gives);

each optionally thickened (a dilation: thick pens), then squeezed in width or height (aspect
0.8-1.25), rotated a little, and re-framed so its longest side spans the frame again, as the
Sketch page frames a drawing (``reframe``). The other images are left as they are, so the
model keeps its accuracy on photos.

Written by hand on batched tensors (max-pool morphology, one ``grid_sample``) rather than with
a per-image library: a batch of 256 costs ~5 ms on this CPU, under a tenth of its training step.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from fmnist_core.threads import one_thread

SHARE = 0.5  # of the training images made drawing-like in each batch
FLAT, OUTLINE, OUTLINE_FILL = 0, 1, 2  # the drawing-like kinds, picked with equal odds


def _dilate(mask: torch.Tensor, size: int, edge: float = 0.0) -> torch.Tensor:
    """Max over a size x size square; beyond the frame counts as ``edge``. Separable maxima of
    shifted views: ~7x faster than ``max_pool2d(stride=1)`` on this CPU (measured)."""
    p, (h, w) = size // 2, mask.shape[-2:]
    padded = F.pad(mask, (p, p, p, p), value=edge)
    rows = padded[..., :, :w]
    for i in range(1, size):
        rows = torch.maximum(rows, padded[..., :, i : i + w])
    out = rows[..., :h, :]
    for i in range(1, size):
        out = torch.maximum(out, rows[..., i : i + h, :])
    return out


def _erode(mask: torch.Tensor, size: int) -> torch.Tensor:
    return 1 - _dilate(1 - mask, size, edge=1.0)  # the frame's edge erodes like background


def _uniform(b: int, low: float, high: float, gen: torch.Generator) -> torch.Tensor:
    return low + (high - low) * torch.rand(b, generator=gen)


def _drawn(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Every image of ``x`` as a flat silhouette, an outline or an outline plus fill."""
    b = x.shape[0]
    view = (b, 1, 1, 1)
    threshold = _uniform(b, 0.01, 0.1, gen).view(view)  # low: dark items stay whole
    mask = (x > threshold).float()
    widths = torch.randint(0, 3, (b,), generator=gen).view(view)  # edge 1, 2 or 3 px
    edge = torch.zeros_like(mask)
    for w, size in enumerate((3, 5, 7)):
        edge = torch.where(widths == w, mask - _erode(mask, size), edge)
    kind = torch.randint(0, 3, (b,), generator=gen).view(view)
    ink = _uniform(b, 0.55, 1.0, gen).view(view)  # the pen's (framed) brightness
    inside = ink * _uniform(b, 0.35, 0.8, gen).view(view)  # a fill is darker than its outline
    flat = mask * ink
    outline = edge * ink
    both = torch.maximum(outline, mask * inside)
    out = torch.where(kind == FLAT, flat, torch.where(kind == OUTLINE, outline, both))
    thick = (torch.rand(b, generator=gen) < 0.3).view(view)
    return torch.where(thick, _dilate(out, 3), out)


def _affine(x: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """Resample ``x`` where output coordinates map to input ones by ``theta`` (B, 2, 3)."""
    grid = F.affine_grid(theta.to(x.device, x.dtype), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def _reshape(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Aspect 0.8-1.25 and up to 10 degrees of rotation."""
    b = x.shape[0]
    aspect = torch.exp(_uniform(b, -math.log(1.25), math.log(1.25), gen))
    angle = _uniform(b, -math.radians(10), math.radians(10), gen)
    sx, sy = aspect.clamp(max=1), (1 / aspect).clamp(max=1)
    cos, sin, zero = torch.cos(angle), torch.sin(angle), torch.zeros(b)
    theta = torch.stack(  # output -> input coordinates: rotate, then undo the squeeze
        [torch.stack([cos / sx, -sin / sx, zero], 1), torch.stack([sin / sy, cos / sy, zero], 1)],
        1,
    )
    return _affine(x, theta)


def _span(mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(first, last) index along the last axis where ``mask`` (B, N) is set; (0, N-1) if none."""
    n = mask.shape[-1]
    idx = torch.arange(n, device=mask.device).expand_as(mask)
    first = torch.where(mask, idx, n).min(-1).values
    last = torch.where(mask, idx, -1).max(-1).values
    empty = last < 0
    return torch.where(empty, 0, first), torch.where(empty, n - 1, last)


def reframe(x: torch.Tensor, level: float = 0.1) -> torch.Tensor:
    """Scale each image so its item's longest side spans the frame, centred: the Sketch page's
    framing (fmnist_core.sketch), batched. The item is where pixels are above ``level``."""
    b, _, h, w = x.shape
    ink = x[:, 0] > level
    top, bottom = _span(ink.any(2))
    left, right = _span(ink.any(1))
    # pixel edges -> normalised coordinates (align_corners=False: pixel i spans [i, i+1])
    x0, x1 = left.float() / w * 2 - 1, (right.float() + 1) / w * 2 - 1
    y0, y1 = top.float() / h * 2 - 1, (bottom.float() + 1) / h * 2 - 1
    half = torch.maximum(x1 - x0, y1 - y0) / 2
    zero = torch.zeros(b)
    theta = torch.stack(
        [torch.stack([half, zero, (x0 + x1) / 2], 1), torch.stack([zero, half, (y0 + y1) / 2], 1)],
        1,
    )
    return _affine(x, theta)


def drawing_like(x: torch.Tensor, gen: torch.Generator, share: float = SHARE) -> torch.Tensor:
    """``x`` (B, 1, S, S) with about ``share`` of its images made drawing-like (see above)."""
    with one_thread():  # small ops: a second thread only waits (fmnist_core.threads)
        return _drawing_like(x, gen, share)


def _drawing_like(x: torch.Tensor, gen: torch.Generator, share: float) -> torch.Tensor:
    b = x.shape[0]
    pick = (torch.rand(b, generator=gen) < share).to(x.device)
    if not pick.any():
        return x
    chosen = x[pick]
    drawn = reframe(_reshape(_drawn(chosen.cpu(), gen), gen)).to(x.device, x.dtype)
    out = x.clone()
    out[pick] = drawn.clamp(0, 1)
    return out
