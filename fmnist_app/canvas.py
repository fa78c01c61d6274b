"""The drawing canvas, sending each stroke as soon as it ends.

streamlit-drawable-canvas 0.13 (pinned in requirements.txt) debounces a freehand stroke's value
by 200 ms before it sends it (``Bc = 200`` in its frontend bundle), which alone is more than the
Sketch page's stroke-to-answer budget (p95 < 150 ms). ``st_canvas`` here is the package's own
``st_canvas`` (same arguments, same result), mounting a copy of its component registered under
our own name, whose JavaScript is the installed bundle with that wait set to 0 ms (a
``setTimeout(..., 0)``: the value still leaves once per stroke, right after its end). The copy is
made from the installed files on the first call, which fails with a clear message when the
bundle is not the one this was written for (tests/test_canvas.py checks the installed one).

Call ``st_canvas`` inside a running app only: streamlit_drawable_canvas registers its own
component from its installed manifest when imported, and that needs Streamlit's runtime.
"""

from __future__ import annotations

import functools
import importlib.util
import types
from pathlib import Path
from typing import Any

import streamlit as st

COMPONENT = "fmnist.sketch_canvas"
DEBOUNCE = "Bc = 200, Ar = "  # the wait constant, and the stroke-end function that uses it
NO_DEBOUNCE = "Bc = 0, Ar = "
HTML = '<div class="canvas-root"></div>'  # as the package registers it


class CanvasBundleError(RuntimeError):
    """The installed streamlit-drawable-canvas is not the version this copy was made for."""


def bundle_dir() -> Path:
    """The installed package's frontend build (found without importing the package)."""
    spec = importlib.util.find_spec("streamlit_drawable_canvas")
    if spec is None or not spec.submodule_search_locations:
        raise CanvasBundleError(
            "streamlit-drawable-canvas is not installed: pip install -r requirements.txt"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "frontend" / "build"


def _one(folder: Path, pattern: str) -> Path:
    found = sorted(folder.glob(pattern))
    if len(found) != 1:
        raise CanvasBundleError(
            f"expected one {pattern} in {folder}, found {len(found)}: reinstall the pinned "
            "streamlit-drawable-canvas (pip install -r requirements.txt)"
        )
    return found[0]


def patched_js(text: str) -> str:
    """The bundle's JavaScript with the freehand debounce set to 0 ms."""
    if text.count(DEBOUNCE) != 1:
        raise CanvasBundleError(
            f"streamlit-drawable-canvas's frontend does not contain {DEBOUNCE!r} exactly once "
            f"(found {text.count(DEBOUNCE)}): this copy was made for version 0.13.0. Install "
            "that version (pip install -r requirements.txt) or update fmnist_app/canvas.py."
        )
    return text.replace(DEBOUNCE, NO_DEBOUNCE)


def _register() -> object:
    folder = bundle_dir()
    js = patched_js(_one(folder, "index-*.js").read_text(encoding="utf-8"))
    css = _one(folder, "index-*.css").read_text(encoding="utf-8")
    # Inline JS and CSS: the element carries the ~400 kB bundle, but Streamlit sends a large
    # unchanged element as a reference to the browser's cached copy, and the browser imports
    # the module once per page (its blob URL is cached by content).
    return st.components.v2.component(COMPONENT, js=js, css=css, html=HTML, isolate_styles=True)


def _with_component(mount: object) -> types.FunctionType:
    """The package's st_canvas, reading ``mount`` instead of its module's ``out``."""
    import streamlit_drawable_canvas as package  # noqa: PLC0415 - needs a running app

    original = package.st_canvas
    names = dict(original.__globals__, out=mount)  # a copy: the package itself is unchanged
    copy = types.FunctionType(
        original.__code__, names, original.__name__, original.__defaults__, original.__closure__
    )
    copy.__kwdefaults__ = original.__kwdefaults__
    return functools.update_wrapper(copy, original)


@functools.cache
def _canvas() -> types.FunctionType:
    return _with_component(_register())  # once per process: components are process-wide


def st_canvas(*args: Any, **kwargs: Any) -> Any:
    """streamlit_drawable_canvas.st_canvas, with no wait before a stroke is sent."""
    return _canvas()(*args, **kwargs)
