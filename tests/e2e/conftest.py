"""Fixtures for the browser tests: a Streamlit server on a free loopback port, a browser.

The server runs ``streamlit run streamlit_app.py`` from the repository root with its own
small dataset (``FMNIST_DATA_DIR``) and a temporary runs folder (``FMNIST_RUNS_DIR``); it is
stopped at the end of the session whatever happens. The browser is Debian's chromium driven
by Playwright's sync API - never ``playwright install`` (no internet, see shared NOTES).

Every test gets ``page`` (a fresh browser context); when the test ends, each page of the
context is screenshotted into ``tests/e2e/screenshots/`` - pass or fail - for diagnosis.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from conftest import REPO, write_tiny_dataset  # tests/conftest.py (tests/ is on sys.path)
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

from fmnist_core import TrainConfig, start_run
from fmnist_core.gate import ENV as GATE_ENV
from fmnist_core.gate import Gate
from fmnist_core.runs import ACTIVE_FILE, find_run, set_active

# expect() has its own timeout (5 s by default), separate from the contexts' action timeout;
# a loaded 2-core machine needs more for a rerun that loads a model or a widget's code.
EXPECT_TIMEOUT_MS = 30_000
expect.set_options(timeout=EXPECT_TIMEOUT_MS)
SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"
CHROMIUMS = ("/usr/bin/chromium", "/usr/lib/chromium/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless=new",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# The Train page tests use all 2,000 at 28x28 in batches of 16: ~0.6 s per epoch on an idle
# 2-core machine, 3-20 s on a busy one.
N_TRAIN, N_TEST = 2000, 300
# A deliberately weak learner for the pages that browse a run: epoch 1 still makes many
# mistakes (~50 %) and epoch 2 fewer (~60 %), so the confusion matrix has off-diagonal cells and
# changes with the epoch.
BROWSE_CONFIG = TrainConfig(
    epochs=2, lr=0.05, batch_size=100, train_subset=1000, device="cpu", name="e2e"
)
SERVER_START_S = 90  # streamlit + torch import on a loaded 2-core machine
VIEWPORT = {"width": 1400, "height": 1400}  # Streamlit scrolls inside: no full-page shots


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).resolve().parent
    for item in items:
        if here in Path(item.fspath).resolve().parents:
            item.add_marker(pytest.mark.e2e)


@dataclass(frozen=True)
class Server:
    url: str
    data_dir: Path
    runs_dir: Path
    log: Path
    gate: Gate  # holds the server's trainings where a test asks (fmnist_core.gate)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as resp:
            return resp.status == 200
    except OSError:
        return False


def _wait_healthy(proc: subprocess.Popen, url: str, log: Path) -> None:
    deadline = time.monotonic() + SERVER_START_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"streamlit exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        if _healthy(url):
            return
        time.sleep(0.2)  # polling interval of a deadline loop, not a fixed wait
    pytest.fail(f"streamlit not healthy after {SERVER_START_S} s:\n{log.read_text()[-3000:]}")


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def _server_cmd(port: int) -> list[str]:
    # serve.py = the streamlit command, with the test pace (tests/pace.py) applied first.
    return [
        sys.executable, str(Path(__file__).with_name("serve.py")), "run", "streamlit_app.py",
        "--server.headless", "true",
        "--server.port", str(port),
        "--server.address", "127.0.0.1",
        "--browser.gatherUsageStats", "false",
        "--server.fileWatcherType", "none",
        "--server.runOnSave", "false",
    ]  # fmt: skip


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("e2e")
    data_dir = write_tiny_dataset(root / "data", n_train=N_TRAIN, n_test=N_TEST)
    runs = root / "runs"
    runs.mkdir()
    log = root / "streamlit.log"
    gate = Gate(root / "gate")
    env = dict(os.environ, FMNIST_DATA_DIR=str(data_dir), FMNIST_RUNS_DIR=str(runs))
    env[GATE_ENV] = str(gate.folder)
    # One torch thread: on a busy 2-core machine, 2 threads per process spin against each
    # other and an epoch gets ~15x slower; one leaves a core to the browser in CI too.
    env.update(FMNIST_OFFLINE="1", PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1")
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            _server_cmd(port), cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT
        )
        try:
            _wait_healthy(proc, url, log)
            yield Server(url, data_dir, runs, log, gate)
        finally:
            _stop(proc)


@pytest.fixture(autouse=True)
def no_server_traceback(server: Server) -> Iterator[None]:
    """Fail a test during which the server logged a traceback (the page may hide it)."""
    start = server.log.stat().st_size
    yield
    with server.log.open("rb") as log:
        log.seek(start)
        new = log.read().decode(errors="replace")
    assert "Traceback" not in new, f"the server logged an error during this test:\n{new[-4000:]}"


@pytest.fixture(scope="session")
def trained_run_id(server: Server) -> str:
    """A finished 2-epoch run in the server's runs folder, trained here without the UI."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # see OMP_NUM_THREADS above; restored for the other tests
    try:
        rec, events = start_run(BROWSE_CONFIG, server.runs_dir, data_dir=str(server.data_dir))
        for _ in events:
            pass
    finally:
        torch.set_num_threads(threads)
    run = find_run(rec.run_id, server.runs_dir)
    assert run.status == "finished" and run.epochs == [1, 2], run.info
    return run.id


@pytest.fixture
def active_trained_run(server: Server, trained_run_id: str) -> Iterator[str]:
    """Marks the trained run active for one test, then unmarks it (newest finished wins)."""
    set_active(trained_run_id, server.runs_dir)
    yield trained_run_id
    (server.runs_dir / ACTIVE_FILE).unlink(missing_ok=True)


def _chromium() -> str:
    for path in CHROMIUMS:
        if Path(path).exists():
            return path
    found = shutil.which("chromium")
    if found:
        return found
    if os.environ.get("CI"):
        pytest.fail("CI must have chromium (apt-get install chromium)")
    pytest.skip("chromium not installed (apt-get install chromium)")


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    executable = _chromium()
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


def _slug(nodeid: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", nodeid.split("::", 1)[-1]).strip("_")


def screenshot(page: Page, name: str) -> Path:
    """Full-page screenshot into tests/e2e/screenshots/<name>.png (never fails the test)."""
    SCREENSHOTS.mkdir(exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    with contextlib.suppress(Exception):
        page.screenshot(path=path, full_page=True, timeout=10_000)
    return path


@pytest.fixture
def new_context(
    browser: Browser, server: Server, request: pytest.FixtureRequest
) -> Iterator[Callable[[], BrowserContext]]:
    """Factory of fresh browser contexts (separate sessions).

    At the end each page is screenshotted and the browser's console errors, if any, are
    written next to the screenshots (``<test>.console.txt``), pass or fail.
    """
    contexts: list[BrowserContext] = []
    console: list[str] = []

    def make() -> BrowserContext:
        ctx = browser.new_context(base_url=server.url, viewport=VIEWPORT)
        ctx.set_default_timeout(EXPECT_TIMEOUT_MS)
        n = len(contexts)
        ctx.on("weberror", lambda e: console.append(f"ctx{n} page error: {e.error}"))
        ctx.on(
            "console",
            lambda m: m.type == "error" and console.append(f"ctx{n} console: {m.text}"),
        )
        contexts.append(ctx)
        return ctx

    yield make
    slug = _slug(request.node.nodeid)
    for i, ctx in enumerate(contexts):
        for j, pg in enumerate(ctx.pages):
            screenshot(pg, slug + (f"-ctx{i}" if i else "") + (f"-{j}" if j else ""))
        ctx.close()
    log = SCREENSHOTS / f"{slug}.console.txt"
    log.unlink(missing_ok=True)
    if console:
        log.write_text("\n".join(console) + "\n")


@pytest.fixture
def page(new_context: Callable[[], BrowserContext]) -> Page:
    return new_context().new_page()
