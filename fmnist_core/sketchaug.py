"""Training-time augmentation that turns dataset images into drawing-like versions.

    x = drawing_like(x, gen)     # (B, 1, S, S) in [0, 1] -> same shape; about half changed

A drawing on the Sketch page differs from a Fashion-MNIST photo in ways a model trained on
photos never saw (measured on the sketch set, benchmarks/sketch_bench.py): it is an outline or
a flat, uniformly bright fill, items are wider relative to their height, lines have any
thickness. So each image, with probability ``SHARE``, is replaced by one of:

- a flat silhouette: the item's mask (pixels above a random threshold, for half of them
  with its holes filled: a photo's dark panels are inside the item) at one intensity;
- an outline: the mask's edge, 1-3 px wide (mask minus its erosion), at one intensity;
- an outline plus a fill: the edge bright, the inside flat and darker (what the framing of a
  filled outline gives);

and, for half of them, the photo's strong inner edges (a coat's opening, a shirt's collar and
placket, a pullover's cuffs and hem band: Sobel magnitude inside the silhouette above a random
share of the image's largest) drawn as lines: bright on an outline, darker seams on a fill
(what the Sketch page's framing makes of interior strokes, fmnist_core.sketch). Without them a
Coat, a Pullover and a Shirt reduce to one silhouette and the model cannot learn the marks a
person draws to tell them apart. Each is optionally thickened (a dilation: thick pens), then
reshaped: aspect 0.8-1.5 (people draw items wider than the photos show them), a keystone
(flared sleeves, skirts, bags), a little rotation; and re-framed so its longest side spans
the frame again, as the Sketch page frames a drawing (``reframe``). The other images are left
as they are, so the model keeps its accuracy on photos.

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
FILL_SHARE = 0.5  # ... whose silhouette has its holes filled (else a bag's handle stays open)
INNER_SHARE = 0.5  # of the drawing-like images that keep the photo's inner edges as lines
SOBEL_X = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]]).view(1, 1, 3, 3)


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


def _fill_holes(mask: torch.Tensor) -> torch.Tensor:
    """``mask`` with what the background around it cannot reach set: the dark parts of a
    photo (a black coat's panels, a print) are inside the item, as in a drawing. Grown from
    the frame's edge one 3 x 3 step at a time (28 steps cross a 28 x 28 frame)."""
    free = 1 - mask
    border = torch.ones_like(mask)
    border[..., 1:-1, 1:-1] = 0
    outside = free * border
    for _ in range(max(mask.shape[-2:])):
        outside = _dilate(outside, 3) * free
    return 1 - outside


def _inner_edges(x: torch.Tensor, mask: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Strong edges of the photo ``x`` inside its silhouette ``mask`` (not on its rim): Sobel
    magnitude above a random 30-60% of the image's largest such value, closed (3x3) so that
    the two edges of a thin dark line (a zip) become one line; 0/1 floats."""
    b = x.shape[0]
    gx = F.conv2d(x, SOBEL_X, padding=1)
    gy = F.conv2d(x, SOBEL_X.transpose(2, 3), padding=1)
    inside = _erode(mask, 3)  # one pixel in: the silhouette's own edge is the outline
    grad = torch.sqrt(gx**2 + gy**2) * inside
    top = grad.amax((2, 3), keepdim=True).clamp(min=1e-6)
    edges = (grad > _uniform(b, 0.3, 0.6, gen).view(b, 1, 1, 1) * top).float()
    return _erode(_dilate(edges, 3), 3) * inside


def _drawn(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Every image of ``x`` as a flat silhouette, an outline or an outline plus fill, about
    half with the photo's inner edges as lines."""
    b = x.shape[0]
    view = (b, 1, 1, 1)
    threshold = _uniform(b, 0.01, 0.1, gen).view(view)  # low: dark items stay whole
    mask = (x > threshold).float()
    solid = (torch.rand(b, generator=gen) < FILL_SHARE).view(view)
    mask = torch.where(solid, _fill_holes(mask), mask)
    lines = _inner_edges(x, mask, gen)
    lines = torch.where((torch.rand(b, generator=gen) < 0.3).view(view), _dilate(lines, 3), lines)
    lines = lines * mask * (torch.rand(b, generator=gen) < INNER_SHARE).view(view).float()
    widths = torch.randint(0, 3, (b,), generator=gen).view(view)  # edge 1, 2 or 3 px
    edge = torch.zeros_like(mask)
    for w, size in enumerate((3, 5, 7)):
        edge = torch.where(widths == w, mask - _erode(mask, size), edge)
    kind = torch.randint(0, 3, (b,), generator=gen).view(view)
    ink = _uniform(b, 0.55, 1.0, gen).view(view)  # the pen's (framed) brightness
    inside = ink * _uniform(b, 0.35, 0.8, gen).view(view)  # a fill is darker than its outline
    # interior lines on a fill are seams: 30-70% of the fill's level
    shade = 1 - lines * (1 - _uniform(b, 0.3, 0.7, gen).view(view))
    flat = mask * ink * shade
    outline = torch.maximum(edge, lines) * ink
    both = torch.maximum(edge * ink, mask * inside * shade)
    out = torch.where(kind == FLAT, flat, torch.where(kind == OUTLINE, outline, both))
    thick = (torch.rand(b, generator=gen) < 0.3).view(view)
    return torch.where(thick, _dilate(out, 3), out)


def _affine(x: torch.Tensor, theta: torch.Tensor, keystone: torch.Tensor | None = None):
    """Resample ``x`` where output coordinates map to input ones by ``theta`` (B, 2, 3); a
    ``keystone`` k (B,) then widens the bottom by 1 + k and the top by 1 - k (k < 0: the other
    way round), as a hand flares sleeves, a skirt or a bag."""
    grid = F.affine_grid(theta.to(x.device, x.dtype), list(x.shape), align_corners=False)
    if keystone is not None:  # output -> input: divide x by the width at that height
        k = keystone.to(x.device, x.dtype).view(-1, 1, 1)
        grid = torch.stack([grid[..., 0] / (1 + k * grid[..., 1]), grid[..., 1]], -1)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def _reshape(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Aspect 0.8-1.5 (people draw items wider than the photos show them: tops ~27 px wide
    framed vs ~21 in the dataset, issue 17), a keystone of up to +-25% and up to 10 degrees
    of rotation."""
    b = x.shape[0]
    aspect = torch.exp(_uniform(b, -math.log(1.25), math.log(1.5), gen))
    angle = _uniform(b, -math.radians(10), math.radians(10), gen)
    keystone = _uniform(b, -0.25, 0.25, gen)
    sx, sy = aspect.clamp(max=1), (1 / aspect).clamp(max=1)
    cos, sin, zero = torch.cos(angle), torch.sin(angle), torch.zeros(b)
    theta = torch.stack(  # output -> input coordinates: rotate, then undo the squeeze
        [torch.stack([cos / sx, -sin / sx, zero], 1), torch.stack([sin / sy, cos / sy, zero], 1)],
        1,
    )
    return _affine(x, theta, keystone)


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
