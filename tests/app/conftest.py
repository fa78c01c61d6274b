"""Fixtures for the AppTest page tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import streamlit as st

from fmnist_app.jobs import JobManager, job_manager

JOB_WAIT = 90  # seconds for a stopped job's thread to end


@pytest.fixture
def jobs(tiny_env) -> Iterator[JobManager]:
    """A fresh process-wide job manager (and data status) on the tiny data; stopped after."""
    st.cache_resource.clear()
    manager = job_manager()
    yield manager
    manager.stop()
    assert manager.join(JOB_WAIT)
    st.cache_resource.clear()
