"""What every page shows and needs: the sidebar (data, device, active model) and data status.

A page calls ``shell.page_head(title, heading)`` first thing (before its heavy imports), then
``sidebar_status()``; ``page_setup`` does both at once.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

import streamlit as st
import torch

from fmnist_app.jobs import job_caption, job_manager
from fmnist_app.shell import (  # noqa: F401 - re-exported: the pages' old import path
    APP_ICON,
    CONFUSION_PAGE,
    HOME_PAGE,
    SKETCH_PAGE,
    TRAIN_PAGE,
    page_head,
    page_start,
)
from fmnist_core import DataError, active_run, load_dataset
from fmnist_core.runs import runs_dir

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


@st.cache_resource(show_spinner="Loading Fashion-MNIST (70,000 images) ...")
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


def page_setup(title: str, heading: str | None = None, icon: str = APP_ICON) -> DataStatus:
    """Page config, the page's ``heading`` (its st.title) and the sidebar every page shows;
    returns the data status. The heading comes before the sidebar's lines so that a fresh
    tab shows it before the runs and the dataset are looked at."""
    if heading:
        page_head(title, heading, icon)
    else:
        page_start(title, icon)
    return sidebar_status()


def sidebar_status() -> DataStatus:
    """The sidebar's data, device, model and runs lines below ``page_start``'s navigation;
    loads the dataset (once per process) with a spinner there. Returns the data status."""
    with st.sidebar:
        status = data_status()
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
