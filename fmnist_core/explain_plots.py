"""Pictures of fmnist_core.explain's results: plain arrays in, uint8 images or a Figure out.

Maps, filters and Grad-CAM overlays are built as one image array each (shown with
``st.image`` or saved as PNG) rather than as Plotly heatmaps: a strip of 128 maps is one
small PNG, while a Plotly figure of 128 facets costs the browser far more to draw on every
stroke. The epoch chart, which people hover for values, is a Plotly figure.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from PIL import Image

# Inferno (matplotlib's, as listed by plotly.colors.sequential.Inferno): dark = no evidence.
_INFERNO = ["#000004", "#1b0c41", "#4a0c6b", "#781c6d", "#a52c60", "#cf4446", "#ed6925",
            "#fb9b06", "#f7d13d", "#fcffa4"]  # fmt: skip


def _lut(colors: Sequence[str]) -> np.ndarray:
    """A 256-entry RGB lookup table interpolated between evenly spaced hex colours."""
    rgb = np.array([[int(c[i : i + 2], 16) for i in (1, 3, 5)] for c in colors], dtype=float)
    at = np.linspace(0, 1, len(colors))
    x = np.linspace(0, 1, 256)
    return np.stack([np.interp(x, at, rgb[:, k]) for k in range(3)], axis=1).astype(np.uint8)


INFERNO = _lut(_INFERNO)
DIVERGING = _lut(["#2166ac", "#92c5de", "#f7f7f7", "#f4a582", "#b2182b"])  # - blue, + red
BACKGROUND = 40  # grey of the gaps between tiles


def _unit(a: np.ndarray) -> np.ndarray:
    """Each map (last two axes) scaled to [0, 1] by its own maximum; an all-zero map stays 0."""
    top = a.reshape(len(a), -1).max(axis=1).reshape(-1, 1, 1)
    return np.clip(a / np.where(top > 0, top, 1.0), 0.0, 1.0)


def _symmetric(a: np.ndarray) -> np.ndarray:
    """Each kernel scaled to [0, 1] with 0 at 0.5 (negative weights below, positive above)."""
    top = np.abs(a).reshape(len(a), -1).max(axis=1).reshape(-1, 1, 1)
    return 0.5 + 0.5 * a / np.where(top > 0, top, 1.0)


def tile(maps: np.ndarray, cols: int, cell: int, lut: np.ndarray | None = None) -> np.ndarray:
    """(N, h, w) values in [0, 1] -> one image of N tiles, ``cols`` per row, each enlarged
    (nearest) to ``cell`` pixels with a 1-pixel gap: (H, W) grey or (H, W, 3) through ``lut``."""
    n, h, w = maps.shape
    scale = max(1, cell // max(h, w))
    big = np.repeat(np.repeat(maps, scale, axis=1), scale, axis=2)  # (N, h*s, w*s)
    rows = -(-n // cols)
    hh, ww = h * scale + 1, w * scale + 1
    out = np.full((rows * hh + 1, cols * ww + 1), np.nan)
    for i in range(n):
        r, c = divmod(i, cols)
        out[1 + r * hh : (r + 1) * hh, 1 + c * ww : (c + 1) * ww] = big[i]
    gap = np.isnan(out)
    index = np.round(np.nan_to_num(out) * 255).astype(np.uint8)
    image = index if lut is None else lut[index]
    image[gap] = BACKGROUND
    return image


def activation_strip(maps: np.ndarray, cols: int = 16, cell: int = 28) -> np.ndarray:
    """A block's activation maps (C, h, w) as a grey grid, each map scaled by its maximum."""
    return tile(_unit(maps), min(cols, len(maps)), cell)


def filter_strip(kernels: np.ndarray, cols: int = 16, cell: int = 28) -> np.ndarray:
    """First-layer kernels (C, k, k) on a blue-white-red scale (white = 0)."""
    return tile(_symmetric(kernels), min(cols, len(kernels)), cell, DIVERGING)


def cam_overlay(image: np.ndarray, cam: np.ndarray, px: int = 168, alpha: float = 0.55):
    """The input (S, S) in [0, 1] in grey under Grad-CAM (S, S) in [0, 1] (Inferno), blended,
    enlarged to ``px`` pixels: (px, px, 3) uint8."""
    grey = np.repeat(np.clip(image, 0, 1)[..., None] * 255, 3, axis=2)
    heat = INFERNO[np.round(np.clip(cam, 0, 1) * 255).astype(np.uint8)].astype(float)
    mixed = ((1 - alpha) * grey + alpha * heat).round().astype(np.uint8)
    return np.asarray(Image.fromarray(mixed).resize((px, px), Image.Resampling.NEAREST))


def epochs_figure(
    epochs: Sequence[int],
    probs: np.ndarray,
    classes: Sequence[str],
    highlight: Sequence[int] = (),
    marked_epoch: int | None = None,
) -> go.Figure:
    """All class probabilities (E, 10) of one image at each saved epoch: one line per class,
    ``highlight``-ed classes drawn thick, the others thin; ``marked_epoch`` a dotted line."""
    fig = go.Figure()
    for k, name in enumerate(classes):
        strong = k in highlight
        fig.add_trace(go.Scatter(
            x=list(epochs), y=[float(p) for p in probs[:, k]], name=name, mode="lines+markers",
            line={"width": 3 if strong else 1}, opacity=1.0 if strong or not highlight else 0.45,
            hovertemplate=f"{name}: %{{y:.1%}} after epoch %{{x}}<extra></extra>",
        ))  # fmt: skip
    if marked_epoch is not None:
        fig.add_vline(x=marked_epoch, line_dash="dot", line_color="grey")
    fig.update_layout(
        height=300, margin={"l": 10, "r": 10, "t": 30, "b": 10},
        title={"text": "Probability of each class after each epoch", "font": {"size": 14}},
        xaxis={"title": "epoch", "dtick": 1}, yaxis={"title": "probability", "range": [0, 1],
        "tickformat": ".0%"}, legend={"font": {"size": 10}},
    )  # fmt: skip
    return fig
