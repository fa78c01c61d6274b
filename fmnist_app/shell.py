"""The part of every page that draws at once: page config, page paths, the navigation.

Streamlit only - no torch, no dataset - so a page can show its title and links while the
heavy part (``fmnist_app.common``: torch, the dataset, the runs) is still loading. The home
page draws its whole content from here before it imports anything heavy (the cold start:
benchmarks/cold_start.py).
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st
from streamlit.errors import StreamlitPageNotFoundError

HOME_PAGE = "streamlit_app.py"
TRAIN_PAGE = "pages/1_Train.py"
CONFUSION_PAGE = "pages/2_Confusion_matrix.py"
SKETCH_PAGE = "pages/3_Sketch.py"
APP_ICON = ":material/checkroom:"
# Material icons render on every machine (emoji showed as empty boxes without an emoji font).
NAV_ICONS = {
    HOME_PAGE: ":material/home:",
    TRAIN_PAGE: ":material/model_training:",
    CONFUSION_PAGE: ":material/grid_on:",
    SKETCH_PAGE: ":material/draw:",
    "pages/4_Runs.py": ":material/table_chart:",
}
ROOT = Path(__file__).resolve().parent.parent  # the folder of streamlit_app.py


def nav_pages() -> list[tuple[str, str, str]]:
    """(path, label, icon) of every page: Home, then pages/ in Streamlit's order.

    Streamlit's own navigation named the entry file "streamlit app"; this one says "Home"
    (config.toml hides Streamlit's). Pages are found as Streamlit finds them, so a new one
    shows up without an edit here."""
    pages = sorted((ROOT / "pages").glob("[0-9]*.py"), key=lambda p: int(p.stem.split("_")[0]))
    found = [(f"pages/{p.name}", p.stem.split("_", 1)[-1].replace("_", " ")) for p in pages]
    return [(path, label, NAV_ICONS.get(path, ":material/article:"))
            for path, label in [(HOME_PAGE, "Home"), *found]]  # fmt: skip


def navigation() -> None:
    for path, label, icon in nav_pages():
        try:
            st.page_link(path, label=label, icon=icon)
        except StreamlitPageNotFoundError:  # a page run on its own (AppTest): no other pages
            return


def page_start(title: str, icon: str = APP_ICON) -> None:
    """Page config and the sidebar's navigation and heading: what draws without waiting.

    ``fmnist_app.common.page_setup`` calls this, then adds the data, device and runs lines."""
    st.set_page_config(page_title=f"{title} - Fashion-MNIST CNN", page_icon=icon, layout="wide")
    with st.sidebar:
        navigation()
        st.markdown("### Fashion-MNIST CNN")


def page_head(title: str, heading: str, icon: str = APP_ICON) -> None:
    """``page_start`` and the page's title: a page calls this before it imports torch or its
    own modules, so a fresh tab shows the title while they load (first visit of a page)."""
    page_start(title, icon)
    st.title(heading)
