"""Plotly figures of fmnist_core.dynamics' results: plain arrays in, a Figure out.

Each builder takes numbers and names only (no run, no Streamlit), so the tests check a
figure's data without a browser.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas  # noqa: F401 - imported before any figure is built (see fmnist_core.plots)
import plotly.graph_objects as go

_MARGIN = {"l": 10, "r": 10, "t": 40, "b": 10}
RIGHT, WRONG = "#2ca02c", "#d62728"
TEN = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
       "#7f7f7f", "#bcbd22", "#17becf")  # Plotly's "D3" ten: one colour per class  # fmt: skip


def _layout(fig: go.Figure, title: str, height: int = 320, **axes: dict) -> go.Figure:
    fig.update_layout(
        height=height, margin=_MARGIN, title={"text": title, "font": {"size": 14}},
        legend={"font": {"size": 10}}, **axes,
    )  # fmt: skip
    return fig


def _blues(n: int) -> list[str]:
    """``n`` blues from dark to light."""
    dark, light = np.array([8, 48, 107]), np.array([158, 202, 225])
    steps = np.linspace(0, 1, max(n, 2))[:n]
    rgbs = [(dark + t * (light - dark)).astype(int) for t in steps]
    return [f"#{r:02x}{g:02x}{b:02x}" for r, g, b in rgbs]


def flips_figure(epochs: Sequence[int], forgot: np.ndarray, learned: np.ndarray) -> go.Figure:
    """Per epoch (from the second): images that went right -> wrong and wrong -> right."""
    x = [int(e) for e in epochs]
    fig = go.Figure([
        go.Bar(x=x, y=[int(v) for v in learned], name="wrong → right", marker_color=RIGHT),
        go.Bar(x=x, y=[int(v) for v in forgot], name="right → wrong", marker_color=WRONG),
    ])  # fmt: skip
    return _layout(
        fig, "Images that flipped at each epoch", barmode="group",
        xaxis={"title": "epoch", "dtick": 1}, yaxis={"title": "images"},
    )  # fmt: skip


def class_epoch_figure(
    counts: np.ndarray, epochs: Sequence[int], classes: Sequence[str], title: str
) -> go.Figure:
    """A (10, E) count table as a heatmap: rows classes, columns epochs, numbers in cells."""
    z = np.asarray(counts).tolist()
    fig = go.Figure(go.Heatmap(
        z=z, x=[str(e) for e in epochs], y=list(classes), colorscale="Reds", text=z,
        texttemplate="%{text}", hovertemplate="%{y}, epoch %{x}: %{z}<extra></extra>",
        showscale=False, zmin=0, zmax=max(1, int(np.max(counts, initial=0))),
    ))  # fmt: skip
    return _layout(
        fig, title, height=360, xaxis={"title": "epoch", "type": "category"},
        yaxis={"autorange": "reversed"},
    )  # fmt: skip


def learned_at_figure(
    counts: np.ndarray, epochs: Sequence[int], classes: Sequence[str]
) -> go.Figure:
    """Per class, how many images were learned at each epoch (stacked), and how many not."""
    names = [f"epoch {e}" for e in epochs] + ["not learned"]
    colours = [*_blues(len(epochs)), "#444444"]  # early = dark: a sequence, not categories
    fig = go.Figure([
        go.Bar(y=list(classes), x=[int(v) for v in counts[:, j]], name=name, orientation="h",
               marker_color=colours[j], hovertemplate=f"%{{y}}: %{{x}} {name}<extra></extra>")
        for j, name in enumerate(names)
    ])  # fmt: skip
    return _layout(
        fig, "When each class's images were learned (and stayed right)", height=380,
        barmode="stack", xaxis={"title": "images"}, yaxis={"autorange": "reversed"},
    )  # fmt: skip


def feature_scatter(
    coords: np.ndarray,
    groups: np.ndarray,
    names: Sequence[str],
    indices: np.ndarray,
    hover: Sequence[str],
    ranges: tuple[tuple[float, float], tuple[float, float]],
    highlight: np.ndarray | None = None,
    colours: Sequence[str] = TEN,
) -> go.Figure:
    """2-D feature points, one trace per group (colour), each point's ``customdata`` its test
    index (a click returns it). ``highlight`` (bool per point) draws those points large with a
    black outline and fades the rest; the axes keep ``ranges`` so epochs stay comparable."""
    fig = go.Figure()
    highlight = np.zeros(len(coords), bool) if highlight is None else np.asarray(highlight)
    faded = highlight.any()
    for g, name in enumerate(names):
        pick = np.flatnonzero(groups == g)
        if not len(pick):
            continue
        big = highlight[pick]
        fig.add_trace(go.Scatter(  # SVG: WebGL is not everywhere (headless, no GPU)
            x=coords[pick, 0].tolist(), y=coords[pick, 1].tolist(), mode="markers", name=name,
            customdata=[int(i) for i in indices[pick]], text=[hover[i] for i in pick],
            hovertemplate="%{text}<extra></extra>",
            marker={"color": colours[g % len(colours)], "size": np.where(big, 10, 5).tolist(),
                    "opacity": np.where(big | (not faded), 0.85, 0.15).tolist(),
                    "line": {"width": np.where(big, 1.5, 0).tolist(), "color": "black"}},
        ))  # fmt: skip
    return _layout(
        fig, "Penultimate-layer features (PCA)", height=520,
        xaxis={"title": "PC 1", "range": list(ranges[0]), "zeroline": False},
        yaxis={"title": "PC 2", "range": list(ranges[1]), "zeroline": False},
    )  # fmt: skip


def reliability_figure(
    raw: dict, scaled: dict | None = None, temperature: float = 1.0
) -> go.Figure:
    """Accuracy against mean confidence per bin (dict from dynamics.reliability), the
    diagonal being perfect calibration; ``scaled`` adds the temperature-scaled curve."""
    fig = go.Figure(go.Scatter(
        x=[0, 1], y=[0, 1], mode="lines", name="perfectly calibrated",
        line={"dash": "dot", "color": "grey"}, hoverinfo="skip",
    ))  # fmt: skip
    curves = [("as saved", raw, WRONG)]
    if scaled is not None:
        curves.append((f"temperature {temperature:.2f}", scaled, RIGHT))
    for name, r, colour in curves:
        used = r["count"] > 0
        fig.add_trace(go.Scatter(
            x=r["confidence"][used].tolist(), y=r["accuracy"][used].tolist(), name=name,
            mode="lines+markers", marker_color=colour, text=r["count"][used].tolist(),
            hovertemplate="confidence %{x:.1%}: accuracy %{y:.1%} (%{text} images)<extra></extra>",
        ))  # fmt: skip
    return _layout(
        fig, "Reliability: accuracy vs confidence", height=360,
        xaxis={"title": "confidence", "range": [0, 1], "tickformat": ".0%"},
        yaxis={"title": "accuracy", "range": [0, 1], "tickformat": ".0%"},
    )  # fmt: skip


def ece_figure(epochs: Sequence[int], raw: Sequence[float], scaled: Sequence[float]) -> go.Figure:
    """Expected calibration error per epoch, as saved and after temperature scaling."""
    x = [int(e) for e in epochs]
    fig = go.Figure([
        go.Scatter(x=x, y=list(raw), name="as saved", mode="lines+markers", marker_color=WRONG),
        go.Scatter(x=x, y=list(scaled), name="temperature-scaled", mode="lines+markers",
                   marker_color=RIGHT),
    ])  # fmt: skip
    return _layout(
        fig, "Expected calibration error per epoch", height=300,
        xaxis={"title": "epoch", "dtick": 1}, yaxis={"title": "ECE", "tickformat": ".1%"},
    )  # fmt: skip


def confidence_figure(hist: dict) -> go.Figure:
    """Confidence histogram of right and of wrong predictions (dynamics.confidence_histogram)."""
    edges = hist["edges"]
    mids = ((edges[:-1] + edges[1:]) / 2).tolist()
    fig = go.Figure([
        go.Bar(x=mids, y=hist["right"].tolist(), name="right", marker_color=RIGHT),
        go.Bar(x=mids, y=hist["wrong"].tolist(), name="wrong", marker_color=WRONG),
    ])  # fmt: skip
    return _layout(
        fig, "Confidence of right and wrong predictions", height=300, barmode="stack",
        xaxis={"title": "confidence", "tickformat": ".0%"}, yaxis={"title": "images"},
    )  # fmt: skip
