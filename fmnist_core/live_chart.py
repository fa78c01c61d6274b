"""The Train page's live chart as a Vega-Lite spec plus its data rows (no Streamlit, no Plotly).

    series = training_series(rows, losses, batches=600)  # what is drawn, by name
    spec, data = training_chart(rows, losses, epochs=5, batches=600)
    st.vega_lite_chart(pd.DataFrame(data), spec)         # in the app

Why Vega-Lite and not Plotly: the page redraws this chart every second while a training
runs on the same CPU. Streamlit gives a Vega view new data *in place* when the spec is
unchanged (only the dataset is replaced), while a changed Plotly figure is drawn anew.
Measured in headless Chromium on the 2-core machine, one update a second of ~400 batch-loss
points: ~15% of a core for this chart vs 22-31% for the Plotly figure (5-8% for the page
without a chart), and half the server's CPU (no figure validation). So the spec depends only
on the view, the total of epochs and which lines exist: during a run every poll, an epoch's
end included, changes the data alone (the accuracy axis zooms by itself).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from fmnist_core.events import EPOCH_ROW_KEYS
from fmnist_core.plots import smooth
from fmnist_core.record import MAX_LOSS_POINTS

COST_RED, ACC_BLUE, TRAIN_ACC_BLUE = "#d62728", "#1f77b4", "#6baed6"
TRAIN_ORANGE, PREVIOUS_GREY = "#ff7f0e", "#9e9e9e"
# Runs picked on the Runs page: colours none of the live lines use (purple, brown, pink, olive).
PICKED_COLOURS = ("#9467bd", "#8c564b", "#e377c2", "#bcbd22")
MAX_PICKED = 4  # more faint pairs of lines would bury the live ones (and the legend)
# The smoothed batch loss is drawn with at most this many points (of the record's up to 400):
# a third of the points cut the chart's browser CPU by about a quarter, and a smoothed line
# looks the same.
LOSS_POINTS = 150
SMOOTHING = 0.6  # the batch loss's (plots.smooth)
VIEWS = ("plain", "notebook")
SOLID, DOTTED = (1, 0), (2, 3)
HEIGHT = 360
Rows = list[dict[str, float]] | tuple[dict[str, float], ...]
Losses = list[tuple[float, float]] | tuple[tuple[float, float], ...]
Picked = list[tuple[str, Rows]] | tuple[tuple[str, Rows], ...]  # (name, epoch rows) per run


@dataclass(frozen=True)
class Series:
    """One line of the chart."""

    name: str  # the legend's text
    x: list[float]  # epochs (fractional for batch losses)
    y: list[float]
    axis: str  # "left" (loss or cost) or "right" (accuracy)
    colour: str
    dash: tuple[int, int] = SOLID
    width: float = 3
    opacity: float = 1.0
    points: bool = True  # one marker per epoch
    # Where a live line's points come from, for a chart drawn in the browser from the run's
    # record (live_layout): "losses" (the batch losses, times ``scale``, smoothed by
    # ``smoothing``) or an epoch row's key; "" for a line whose points are all given.
    source: str = ""
    scale: float = 1.0
    smoothing: float = 0.0


def _epochs(name: str, rows: Rows, key: str, axis: str, colour: str, **kw) -> Series:
    """One point per epoch that has ``key`` (a run older than a key lacks it: None)."""
    kept = [(row["epoch"], row.get(key)) for row in rows]
    kept = [(e, v) for e, v in kept if v is not None]
    kw.setdefault("source", key)
    return Series(name, [e for e, _ in kept], [v for _, v in kept], axis, colour, **kw)


def _faint(label: str, rows: Rows, colour: str) -> list[Series]:
    """Another run's test loss and accuracy, faint and dotted: a yardstick, not news."""
    faint = {"dash": DOTTED, "width": 2, "opacity": 0.5, "points": False, "source": ""}
    return [
        _epochs(f"{label}: test loss", rows, "val_loss", "left", colour, **faint),
        _epochs(f"{label}: test accuracy", rows, "val_acc", "right", colour, **faint),
    ]


def _compared(previous: Rows, picked: Picked) -> list[Series]:
    """The runs picked on the Runs page, each in its own faint colour, named as there; else
    the previous run of this server in grey."""
    if not picked:
        return _faint("previous run", previous, PREVIOUS_GREY) if previous else []
    out, seen = [], set()
    for i, (name, rows) in enumerate(picked[:MAX_PICKED]):
        label = name if name not in seen else f"{name} ({i + 1})"  # legend names are keys
        seen.add(label)
        out += _faint(label, rows, PICKED_COLOURS[i % len(PICKED_COLOURS)])
    return out


def training_series(
    history: Rows,
    losses: Losses = (),
    batches: int = 0,
    view: str = "plain",
    previous: Rows = (),
    picked: Picked = (),
) -> list[Series]:
    """What the live chart draws, in drawing order.

    "plain": the batch loss smoothed, train and test loss (left axis), running train accuracy
    (dotted) and test accuracy (right), ``previous`` (another run's rows) faintly behind, or
    instead the ``picked`` runs (name, rows), at most ``MAX_PICKED``, each in its colour.
    "notebook": the notebook's figure, epoch cost (red, the sum of the epoch's batch losses)
    and test accuracy (blue), with the batch losses scaled by ``batches`` into cost units.
    ``losses`` are ``(fractional epoch, batch loss)`` pairs, so the first epoch moves before
    its point exists.
    """
    xs = [x for x, _ in losses]
    if view == "notebook":
        out = []
        if losses and batches:
            out.append(Series(f"batch loss × {batches}", xs, [v * batches for _, v in losses],
                              "left", COST_RED, width=1, opacity=0.35, points=False,
                              source="losses", scale=batches))  # fmt: skip
        return [*out, _epochs("cost", history, "cost", "left", COST_RED),
                _epochs("test accuracy", history, "val_acc", "right", ACC_BLUE)]  # fmt: skip
    out = _compared(previous, picked)
    if losses:
        keep = _thinned(len(losses))  # smoothed over every point, then thinned
        ys = smooth([v for _, v in losses], SMOOTHING)
        out.append(Series("batch loss (smoothed)", [xs[i] for i in keep], [ys[i] for i in keep],
                          "left", TRAIN_ORANGE, width=1, opacity=0.5, points=False,
                          source="losses", smoothing=SMOOTHING))  # fmt: skip
    train_acc = _epochs("train accuracy (running)", history, "train_acc", "right",
                        TRAIN_ACC_BLUE, dash=DOTTED)  # fmt: skip
    return [
        *out,
        _epochs("train loss", history, "train_loss", "left", TRAIN_ORANGE),
        _epochs("test loss", history, "val_loss", "left", COST_RED),
        *([train_acc] if train_acc.x or not history else []),  # older runs: not measured
        _epochs("test accuracy", history, "val_acc", "right", ACC_BLUE),
    ]


def axis_titles(view: str) -> dict[str, tuple[str, str]]:
    """Each y axis's title and colour."""
    notebook = view == "notebook"
    left = ("cost (sum of batch losses)", COST_RED) if notebook else ("loss", "#444444")
    return {"left": left, "right": ("test accuracy" if notebook else "accuracy", ACC_BLUE)}


def live_layout(view: str, batches: int, previous: Rows = (), picked: Picked = ()) -> dict:
    """The live chart for a browser that draws it from the run's record itself
    (fmnist_app.live_feed): every line ``training_series`` draws, in its order and style; the
    compared runs' lines with their points, the live ones with only where their points come
    from (``source``, ``scale``, ``smoothing``), as the training has not made them yet."""
    probe = {key: 0.0 for key in EPOCH_ROW_KEYS} | {"epoch": 1}
    lines = []
    for s in training_series([probe], [(0.0, 0.0)], batches, view, previous, picked):
        line = asdict(s)
        line["dash"] = list(s.dash)
        if s.source:
            line["x"], line["y"] = [], []
        lines.append(line)
    return {"lines": lines, "axes": axis_titles(view), "loss_points": LOSS_POINTS,
            "trace_limit": MAX_LOSS_POINTS, "height": HEIGHT}  # fmt: skip


def _thinned(n: int, limit: int = LOSS_POINTS) -> list[int]:
    """Indices of at most ``limit`` of ``n`` points, evenly spread, the last one included."""
    step = -(-n // limit)
    return sorted({*range(n - 1, -1, -step)})


def _group(series: list[Series], axis: str, title: str, colour: str) -> dict:
    """One axis's lines (and epoch markers), sharing one y scale."""
    names = [s.name for s in series if s.axis == axis]
    dots = [s.name for s in series if s.axis == axis and s.points]
    axis_spec = {"title": title, "titleColor": colour, "labelColor": colour,
                 "orient": axis, "grid": axis == "left"}  # fmt: skip
    scale: dict = {"zero": True}
    if axis == "right":
        # Zoomed on the data by Vega itself (the notebook's autoscaled axis), up to 100%: so the
        # spec stays the same when an epoch's accuracy arrives and the chart's data are
        # replaced in place (a new domain in the spec would draw it anew, ~1 s on a busy CPU).
        # Whole-percent ticks: a 5% range with ".0%" ticks would show "97%" twice.
        scale = {"zero": False, "nice": True, "domainMax": 1}
        axis_spec |= {"format": ".0%", "tickMinStep": 0.01}
    y = {"field": "y", "type": "quantitative", "scale": scale, "axis": axis_spec}
    pick = {"filter": {"field": "series", "oneOf": names or ["-"]}}
    layers = [{"name": f"{axis}_lines", "transform": [pick], "mark": {"type": "line", "clip": True},
               "encoding": {"y": y, "detail": {"field": "series"}}}]  # fmt: skip
    for name in dots:  # one named layer per marked series: a browser test counts its points
        layers.append({
            "name": slug(name), "transform": [{"filter": {"field": "series", "equal": name}}],
            "mark": {"type": "point", "filled": True, "size": 50},  # a 100% point: whole
            "encoding": {"y": y},
        })  # fmt: skip
    return {"layer": layers}


def slug(name: str) -> str:
    """A series' name as a Vega mark name (the browser finds its points by it)."""
    return "".join(c if c.isalnum() else "_" for c in name).strip("_") + "_points"


def training_chart(
    history: Rows,
    losses: Losses = (),
    epochs: int | None = None,
    batches: int = 0,
    view: str = "plain",
    previous: Rows = (),
    picked: Picked = (),
) -> tuple[dict, list[dict]]:
    """The live chart: a Vega-Lite spec and its data rows ``{"series", "x", "y"}``.

    ``epochs`` fixes the x range. Two y axes: loss (or the notebook's cost) on the left,
    accuracy on the right. Colours, dashes, widths and opacities come from the series, through
    scales whose domains are the series' names (a legend on top).
    """
    series = training_series(history, losses, batches, view, previous, picked)
    last = max([epochs or 1, *(x for s in series for x in s.x)])
    titles = axis_titles(view)
    names = [s.name for s in series]

    def scale(values: list) -> dict:
        return {"domain": names, "range": values}

    spec = {
        "height": HEIGHT,
        "usermeta": {"embedOptions": {"renderer": "svg", "actions": False}},
        "encoding": {
            "x": {"field": "x", "type": "quantitative", "title": "epoch",
                  "scale": {"domain": [0, math.ceil(last) + 0.1], "nice": False},
                  "axis": {"tickMinStep": 1, "format": "d"}},
            "color": {"field": "series", "type": "nominal",
                      "scale": scale([s.colour for s in series]),
                      "legend": {"orient": "top", "title": None, "columns": 3}},
            "strokeDash": {"field": "series", "scale": scale([list(s.dash) for s in series]),
                           "legend": None},
            "strokeWidth": {"field": "series", "scale": scale([s.width for s in series]),
                            "legend": None},
            "opacity": {"field": "series", "scale": scale([s.opacity for s in series]),
                        "legend": None},
            "tooltip": [{"field": "series", "title": "line"}, {"field": "x", "title": "epoch",
                        "format": ".2f"}, {"field": "y", "title": "value", "format": ".4f"}],
        },
        "layer": [
            _group(series, "left", *titles["left"]),
            _group(series, "right", *titles["right"]),
        ],
        "resolve": {"scale": {"y": "independent"}},
    }  # fmt: skip
    data = [{"series": s.name, "x": float(x), "y": float(y)} for s in series
            for x, y in zip(s.x, s.y, strict=True)]  # fmt: skip
    return spec, data
