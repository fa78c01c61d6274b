"""Plotly figures built from plain data (no Streamlit), so they can be tested without a browser.

Shared by the pages; each figure is one function taking lists/tensors and returning a Figure.
"""

from __future__ import annotations

import numpy as np
import pandas  # noqa: F401 - import before any figure is built: see below
import plotly.graph_objects as go  # noqa: F401 - used by the figure functions below

# Plotly looks pandas up in sys.modules without the import lock. When one Streamlit session
# thread is still importing pandas (lazily, e.g. for st.dataframe) another one building a
# figure saw a half-initialised module: "partially initialized module 'pandas' has no
# attribute 'Series'" (caught by tests/e2e with two tabs on a fresh server). Importing it
# here, under this module's import lock, finishes it before any figure function can run.


def _cell_text(count: int, rate: float, rates: bool) -> str:
    return f"{rate:.0%}<br>({count})" if rates else str(count)


def _click_overlay(
    cm: list[list[int]], rate: list[list[float]], classes: list[str] | tuple[str, ...]
) -> go.Scatter:
    """One invisible, clickable square per cell carrying ``customdata=[true, pred]``."""
    cells = [(t, p) for t in range(len(classes)) for p in range(len(classes))]
    hover = [
        f"true {classes[t]}<br>predicted {classes[p]}<br>{cm[t][p]} images ({rate[t][p]:.1%})"
        for t, p in cells
    ]
    return go.Scatter(
        x=[classes[p] for _, p in cells], y=[classes[t] for t, _ in cells],
        customdata=[[t, p] for t, p in cells], text=hover, hovertemplate="%{text}<extra></extra>",
        mode="markers", marker={"symbol": "square", "size": 36, "opacity": 0}, showlegend=False,
    )  # fmt: skip


def confusion_figure(
    cm: list[list[int]],
    classes: list[str] | tuple[str, ...],
    rates: bool = False,
    selected: tuple[int, int] | None = None,
) -> go.Figure:
    """Clickable confusion matrix: rows = true class, columns = predicted class.

    ``cm`` holds counts; ``rates`` colours by row-normalised rate (counts stay in the cells).
    Heatmap clicks return nothing in Streamlit, so an invisible square marker sits on every
    cell with ``customdata=[true, pred]`` (see NOTES); ``selected`` outlines one cell.
    """
    n = len(classes)
    totals = [max(sum(row), 1) for row in cm]
    rate = [[c / totals[t] for c in row] for t, row in enumerate(cm)]
    text = [[_cell_text(cm[t][p], rate[t][p], rates) for p in range(n)] for t in range(n)]
    heat = go.Heatmap(
        z=rate if rates else cm, x=list(classes), y=list(classes), text=text,
        texttemplate="%{text}", colorscale="Blues", hoverinfo="skip",
        colorbar={"title": "rate" if rates else "images", "tickformat": ".0%" if rates else ""},
    )  # fmt: skip
    fig = go.Figure([heat, _click_overlay(cm, rate, classes)])
    fig.update_layout(
        height=600, margin={"l": 10, "r": 10, "t": 30, "b": 10}, clickmode="event+select",
        xaxis={"title": "predicted class", "type": "category", "tickangle": -40},
        yaxis={"title": "true class", "type": "category", "autorange": "reversed"},
    )  # fmt: skip
    if selected is not None:
        t, p = selected
        fig.add_shape(
            type="rect", x0=p - 0.5, x1=p + 0.5, y0=t - 0.5, y1=t + 0.5,
            line={"color": "#e4572e", "width": 3},
        )  # fmt: skip
    return fig


# The Train page's live chart is fmnist_core.live_chart (Vega-Lite: cheaper to update live).


PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b",
           "#e377c2", "#7f7f7f", "#bcbd22")  # fmt: skip


def smooth(values: list[float], weight: float) -> list[float]:
    """TensorBoard's smoothing: an exponential moving average, debiased at the start (so the
    first points are not pulled towards 0). ``weight`` 0 = raw, 0.99 = very smooth."""
    out, avg = [], 0.0
    for i, value in enumerate(values, start=1):
        avg = weight * avg + (1 - weight) * value
        out.append(avg / (1 - weight**i) if weight < 1 else value)
    return out


def _batch_x(points: list[tuple[float, float]], rows: list[dict[str, float]], x: str) -> list:
    """Fractional epochs of batch losses, or seconds: interpolated between the epochs' ends
    (a batch of an epoch still running is drawn at the last epoch's end)."""
    epochs = [p[0] for p in points]
    if x == "epoch" or not rows:
        return epochs
    ends = [0.0] + [float(row["epoch"]) for row in rows]
    seconds = [0.0] + [float(row["elapsed_s"]) for row in rows]
    return np.interp(epochs, ends, seconds).tolist()


def runs_figure(
    runs: list[tuple[str, list[dict[str, float]]]],
    x: str = "epoch",
    losses: list[list[tuple[float, float]]] | None = None,
    smoothing: float = 0.6,
) -> go.Figure:
    """Several runs overlaid: validation accuracy (left) and train/validation loss (right).

    ``runs`` are ``(name, history rows)``; ``x`` is "epoch" or "elapsed_s" (seconds since
    the run started). One colour per run; validation loss solid, training loss dotted.
    ``losses`` (one list of ``(fractional epoch, batch loss)`` per run) adds each run's
    batch losses to the loss panel, smoothed with ``smoothing`` (see ``smooth``).
    """
    from plotly.subplots import make_subplots  # only this figure needs it

    fig = make_subplots(rows=1, cols=2, subplot_titles=("validation accuracy", "loss"))
    unit = "epoch %{x}" if x == "epoch" else "%{x:.1f} s"
    for i, (name, rows) in enumerate(runs):
        colour, xs = PALETTE[i % len(PALETTE)], [row[x] for row in rows]
        fig.add_trace(go.Scatter(
            x=xs, y=[row["val_acc"] for row in rows], mode="lines+markers", name=name,
            legendgroup=name, line={"color": colour, "width": 2},
            hovertemplate=f"{name}<br>{unit}<br>accuracy %{{y:.2%}}<extra></extra>",
        ), row=1, col=1)  # fmt: skip
        for key, dash, what in (("val_loss", "solid", "validation"), ("train_loss", "dot",
                                                                     "training")):  # fmt: skip
            fig.add_trace(go.Scatter(
                x=xs, y=[row[key] for row in rows], mode="lines", name=f"{name} ({what})",
                legendgroup=name, showlegend=False, line={"color": colour, "dash": dash},
                hovertemplate=f"{name}<br>{unit}<br>{what} loss %{{y:.4f}}<extra></extra>",
            ), row=1, col=2)  # fmt: skip
        if losses and losses[i]:
            fig.add_trace(go.Scatter(
                x=_batch_x(losses[i], rows, x), y=smooth([p[1] for p in losses[i]], smoothing),
                mode="lines", name=f"{name} (batch loss)", legendgroup=name, showlegend=False,
                line={"color": colour, "width": 1}, opacity=0.45,
                hovertemplate=f"{name}<br>{unit}<br>smoothed batch loss %{{y:.4f}}<extra></extra>",
            ), row=1, col=2)  # fmt: skip
    title = "epoch" if x == "epoch" else "seconds of training"
    fig.update_xaxes(title=title)
    fig.update_yaxes(tickformat=".0%", row=1, col=1)
    fig.update_yaxes(title="loss (dotted: training)", rangemode="tozero", row=1, col=2)
    fig.update_layout(height=400, margin={"l": 10, "r": 10, "t": 40, "b": 10},
                      legend={"orientation": "h", "y": -0.2, "x": 0})  # fmt: skip
    return fig


def parcoords_figure(
    params: dict[str, list[float | str]], best: list[float], labels: list[str]
) -> go.Figure:
    """Parallel coordinates: one axis per hyperparameter, the last for best accuracy.

    ``params`` maps a name to one value per run (text values become ticks); lines are
    coloured by best accuracy. ``labels`` name the runs (the caller's picker uses them).
    """
    dims = []
    for name, values in params.items():
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            dims.append({"label": name, "values": [float(v) for v in values]})
        else:  # categories: one tick each
            cats = sorted({str(v) for v in values})
            dims.append({"label": name, "values": [cats.index(str(v)) for v in values],
                         "tickvals": list(range(len(cats))), "ticktext": cats})  # fmt: skip
    dims.append({"label": "best accuracy", "values": best, "tickformat": ".1%"})
    line = {"color": best, "colorscale": "Viridis", "showscale": True,
            "colorbar": {"title": "best acc", "tickformat": ".0%"}}  # fmt: skip
    fig = go.Figure(go.Parcoords(dimensions=dims, line=line, ids=labels))
    fig.update_layout(height=360, margin={"l": 60, "r": 40, "t": 40, "b": 20})
    return fig
