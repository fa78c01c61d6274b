"""What every page shows and needs: the sidebar (data, device, active model) and data status.

Call ``page_setup(title)`` first thing on every page.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import streamlit as st
import torch
from streamlit.errors import StreamlitPageNotFoundError

from fmnist_app.jobs import job_caption, job_manager
from fmnist_core import DataError, active_run, load_dataset
from fmnist_core.runs import runs_dir

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


# Markdown that could turn text into a link, an image, HTML, code, emphasis, a Streamlit
# directive (:red[...], :material/...:) or maths. CommonMark lets any of them be backslash-escaped.
_MARKUP = re.compile(r"([\\`*_\[\](){}<>!#|~$:@+])")
_WWW = re.compile(r"(?i)\b(www)\.")  # GFM links bare www.example.com: break it with an escape


def plain(text: Any) -> str:
    """``text`` escaped so that a Markdown element (st.caption, st.error ...) shows it as is.

    For strings from files and folders (run ids, status fields, error texts, data paths): a
    status.json holding ``![x](http://evil/img.png)`` must not make the browser load an image.
    """
    one_line = " ".join(str(text).split())  # no headings, lists or code blocks from newlines
    return _WWW.sub(r"\1\\.", _MARKUP.sub(r"\\\1", one_line))


def choice(key: str, options: Collection[Any], default: Any = None) -> Any:
    """The session's value of a select widget if it is one of ``options``, else ``default``
    (else the first option). For code that reads a widget's value before Streamlit checks it
    (callbacks, code above the widget): a hand-made request can send any value."""
    value = st.session_state.get(key, default)
    try:
        if value in options:
            return value
    except TypeError:  # an unhashable forged value
        pass
    return default if default is not None else next(iter(options))


@dataclass(frozen=True)
class DataStatus:
    ok: bool
    source: str  # where the data came from, or the error message
    summary: str  # "60,000 train + 10,000 test images"


@st.cache_resource(show_spinner="Loading Fashion-MNIST ...")
def _data_status(data_dir: str | None) -> DataStatus:
    try:
        ds = load_dataset(data_dir)
    except DataError as exc:
        return DataStatus(False, str(exc), "")
    return DataStatus(True, ds.source, ds.summary)


def data_status() -> DataStatus:
    """Cached per process; a failure is not cached, so installing the data then reloading works."""
    status = _data_status(None)
    if not status.ok:
        _data_status.clear()
    return status


def plural(n: int, word: str) -> str:
    """'1 epoch', '2 epochs', '1,000 steps'."""
    return f"{n:,} {word}" if n == 1 else f"{n:,} {word}s"


def device_label() -> str:
    if torch.cuda.is_available():
        return f"CUDA GPU ({torch.cuda.get_device_name(0)})"
    return f"CPU ({plural(torch.get_num_threads(), 'thread')})"


def show_data_error(status: DataStatus) -> None:
    lines = [plain(line) for line in status.source.splitlines()]  # it names folders: plain text
    st.error("**No dataset.** " + "  \n".join(lines))


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


def page_setup(title: str, icon: str = APP_ICON) -> DataStatus:
    """Page config + the sidebar every page shows; returns the data status."""
    st.set_page_config(page_title=f"{title} - Fashion-MNIST CNN", page_icon=icon, layout="wide")
    status = data_status()
    with st.sidebar:
        navigation()
        st.markdown("### Fashion-MNIST CNN")
        if status.ok:
            st.caption(f"**Data:** {status.summary}  \nfrom {plain(status.source)}")
        else:
            st.caption("**Data:** not found (see the page)")
        st.caption(f"**Device:** {device_label()}")
        run = active_run()
        st.caption(f"**Active model:** {plain(run.label()) if run else 'none yet - train one'}")
        if training := job_caption(job_manager().snapshot()):
            st.caption(training)
        st.caption(f"**Runs folder:** {plain(runs_dir())}")
    return status
