"""Plotly figures built from plain data (no Streamlit), so they can be tested without a browser.

Shared by the pages; each figure is one function taking lists/tensors and returning a Figure.
"""

from __future__ import annotations

import plotly.graph_objects as go  # noqa: F401 - used by the figure functions below
