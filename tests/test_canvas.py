"""The canvas copy that sends a stroke at once (fmnist_app/canvas.py), against the installed
streamlit-drawable-canvas bundle; its mounting is checked on the Sketch page (tests/app)."""

from __future__ import annotations

import pytest

from fmnist_app import canvas


def installed_js() -> str:
    (path,) = canvas.bundle_dir().glob("index-*.js")
    return path.read_text(encoding="utf-8")


def test_the_installed_bundle_waits_200_ms_and_the_copy_does_not():
    text = installed_js()
    assert text.count("Bc = 200") == 1  # the pinned 0.13.0 bundle: the wait this removes
    assert "Nh((c) => Ic(h, c), Bc)" in text  # ... used by the sender that sends a stroke
    patched = canvas.patched_js(text)
    assert "Bc = 200" not in patched and patched.count("Bc = 0, Ar = ") == 1
    assert len(patched) == len(text) - 2  # nothing else changed
    assert patched.replace("Bc = 0, Ar = ", "Bc = 200, Ar = ") == text


@pytest.mark.parametrize(
    "text", ["", "Bc = 150, Ar = (e) => {}", "Bc = 200, Ar = ;Bc = 200, Ar = "]
)
def test_another_bundle_is_refused_with_what_to_do(text):
    with pytest.raises(canvas.CanvasBundleError, match="pip install -r requirements.txt"):
        canvas.patched_js(text)
