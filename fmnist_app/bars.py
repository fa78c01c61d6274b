"""The 10 class probabilities as plain HTML bars, for ``st.html``.

The Sketch page redraws them after every stroke. A Plotly bar chart cost ~10 ms to build on
the server and a chart mount in the browser each time (NOTES: ~0.4 s of CPU per Plotly redraw
in headless chromium here); these rows are a few kB of HTML that the browser lays out at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

TOP = "#e4572e"  # the predicted class
OTHER = "#4c78a8"
TRUE = "#2ca02c"  # outline of a dataset image's true class
ROW = (
    '<div title="{title}" style="display:flex;align-items:center;gap:0.5rem;'
    'font-size:0.875rem;line-height:1.35rem">'
    '<span style="flex:0 0 7.5rem;text-align:right;white-space:nowrap">{name}</span>'
    '<span style="flex:1 1 auto;min-width:3rem">'
    '<span style="display:block;width:{width:.2f}%;min-width:1px;height:0.8rem;'
    'background:{colour};{outline}"></span></span>'
    '<span style="flex:0 0 3.4rem;text-align:right;font-variant-numeric:tabular-nums">'
    "{percent}</span></div>"
)


def probability_bars(
    probs: Sequence[float], classes: Sequence[str], true_label: int | None = None
) -> str:
    """One row per class, in class order: name, a bar as long as its probability, the
    percentage. The top class's bar is highlighted; ``true_label`` gets a check mark and an
    outlined bar (as the dataset's images are shown with their true class)."""
    if len(probs) != len(classes):
        raise ValueError(f"{len(probs)} probabilities for {len(classes)} classes")
    values = [float(p) for p in probs]
    top = max(range(len(values)), key=values.__getitem__)
    rows = []
    for i, (name, p) in enumerate(zip(classes, values, strict=True)):
        true = i == true_label
        label = escape(f"{name} ✓" if true else name)
        rows.append(
            ROW.format(
                title=escape(f"{name}: {p:.2%}"),
                name=f"<b>{label}</b>" if i == top else label,
                width=100 * min(max(p, 0.0), 1.0),
                colour=TOP if i == top else OTHER,
                outline=f"outline:2px solid {TRUE};outline-offset:1px" if true else "",
                percent=f"{p:.1%}",
            )
        )
    return '<div aria-label="Probability of each class">' + "".join(rows) + "</div>"
