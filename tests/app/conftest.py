"""Fixtures for the AppTest page tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import streamlit as st

from fmnist_app.jobs import MODE_ENV, JobManager, job_manager
from fmnist_app.live_feed import ENV as LIVE_ENV
from fmnist_core.gate import ENV, Gate

JOB_WAIT = 90  # seconds for a stopped job's thread to end


@pytest.fixture
def gate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Gate]:
    """The test gate of the job manager made by ``jobs`` (see fmnist_core.gate)."""
    monkeypatch.setenv(ENV, str(tmp_path / "gate"))
    gate = Gate.from_env()
    yield gate
    gate.release()


@pytest.fixture
def jobs(tiny_env, gate: Gate, monkeypatch: pytest.MonkeyPatch) -> Iterator[JobManager]:
    """A fresh process-wide job manager (and data status) on the tiny data; stopped after.

    It obeys ``gate``: a test that needs its training still running holds it there. It trains
    in a thread of the test's process (the test pace applies; the app's child process is
    tests/test_jobs_process.py's and the browser tests')."""
    monkeypatch.setenv(MODE_ENV, "thread")
    monkeypatch.setenv(LIVE_ENV, "server")  # AppTest runs no JavaScript (fmnist_app.live_feed)
    st.cache_resource.clear()
    manager = job_manager()
    yield manager
    manager.stop()
    assert manager.join(JOB_WAIT)
    st.cache_resource.clear()
