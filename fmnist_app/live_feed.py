"""The Train page's live view drawn by the browser from the run's record (the default).

    live_feed(snap, view, picked)   # progress, numbers, chart and epoch table of a running run

Until now each update of the live view was a Streamlit rerun every 0.8 s: the browser then
redraws the page's elements (and the chart), ~0.5 of a core on the 2-core machine, which the
training pays for. Here the page mounts one component (fmnist_app/live_feed.js) once per run;
the browser fetches the run's ``events.jsonl`` itself every 0.8 s, replays the new lines and
redraws only what changed, with no rerun. The record is the one the core writes
(fmnist_core.record), served read-only by Streamlit's component file route: the runs folder
is registered as the files of a (never mounted) v1 component. Anyone who can open the app can
read its runs' files this way, as they can see them through its pages.

When the record says the run ended, the component sets its trigger "ended" and the page
reruns; when the record has not grown for 5 s (a pause, a long test pass, a process gone) it
sets "check", and the page's fragment runs again to look at the job. The
chart's lines and styles come from fmnist_core.live_chart.live_layout (the same as the chart
drawn after the run); the replay mirrors fmnist_core.record.Replay's.

``FMNIST_LIVE_VIEW=server`` draws the live view on the server instead (a rerun per update):
AppTest, which runs no JavaScript, uses it.
"""

from __future__ import annotations

import functools
import hashlib
import os
from pathlib import Path

import streamlit as st
import streamlit.components.v1 as components

from fmnist_app.jobs import JobSnapshot
from fmnist_core.config import TrainConfig
from fmnist_core.live_chart import live_layout
from fmnist_core.runs import runs_dir

ENV = "FMNIST_LIVE_VIEW"  # "browser" (default) or "server"
HERE = Path(__file__).parent
BUSY_SHARE = 0.5  # images/s below this share of the run's best: the machine is busy


def in_browser() -> bool:
    """Whether the browser draws the live view (``FMNIST_LIVE_VIEW``, default "browser")."""
    return os.environ.get(ENV, "browser").strip().lower() != "server"


def _files_route(folder: str) -> str:
    """The URL path (relative to the page) under which ``folder``'s files are served.

    Declared at every mount (the same declaration again is a no-op): the registry is the
    running server's."""
    digest = hashlib.sha1(folder.encode()).hexdigest()[:10]
    served = components.declare_component(f"runs_{digest}", path=folder)
    return f"component/{served.name}"


@functools.cache
def _component():
    read = lambda name: (HERE / name).read_text(encoding="utf-8")  # noqa: E731
    return st.components.v2.component(
        "fmnist.live_feed", js=read("live_feed.js"), css=read("live_feed.css"),
        isolate_styles=False,
    )  # fmt: skip


def preparing_text(cfg: TrainConfig | None) -> str:
    """What the bar says before the first batch; the sketch preset may first make its
    drawings (fmnist_core.sketchdraw: once, then cached)."""
    if cfg is not None and cfg.sketch_augment:
        return ("Preparing the data and the model ... (the first run with drawings "
                "also draws every training photo: ~3 min on 2 cores, once)")  # fmt: skip
    return "Preparing the data and the model ..."


def events_url(run_id: str) -> str:
    folder = str(runs_dir().resolve())
    return f"{_files_route(folder)}/{run_id}/events.jsonl"


def live_feed(snap: JobSnapshot, view: str, picked: list) -> bool:
    """Mount the live view of ``snap``'s run (its id known). True in the rerun the browser
    asked for when the run's record said it ended (the job may need a moment to be over)."""
    layout = live_layout(view, snap.batches, snap.previous, picked)
    data = {"url": events_url(snap.run_id), "view": view, "layout": layout,
            "epochs": snap.epochs, "paused": snap.paused, "busy_share": BUSY_SHARE,
            "preparing": preparing_text(snap.config)}  # fmt: skip
    result = _component()(
        data=data, key="live_feed", on_ended_change=lambda: None, on_check_change=lambda: None
    )
    return bool(getattr(result, "ended", None))
