"""Cold start in a real browser: from `streamlit run` to the home page drawn, per fresh server.

    .venv/bin/python benchmarks/cold_start.py              # 3 fresh servers, medians
    .venv/bin/python benchmarks/cold_start.py --servers 5 --json

For each fresh server (its own process, a free loopback port, the real dataset, an empty
runs folder) it measures, with Debian's chromium driven by Playwright (launched once before
the servers, so the browser's own start is not counted):

- ``home``: seconds from starting the server process to the home page's title and its three
  page links visible in a fresh browser tab (the browser retries until the server answers),
  of a browser context that never visited the app (nothing cached);
- ``home, returning browser``: the same with another fresh server on the same address, in a
  browser context that has visited it before (a user's next ``make run``: Streamlit's scripts
  come from the browser's cache);
- ``sidebar``: ... to the sidebar's data line (torch imported, the dataset loaded);
- ``warm <page>``: once the server is warm, a new tab on each page (in the browser that
  opened the home page: its cache holds Streamlit's scripts, as a user's browser does):
  seconds from opening the URL to the page's title (its first content) visible;
- ``done <page>``: ... to the end of that page's first script run (everything drawn).

``--repo DIR`` measures the app of another checkout with this same script (e.g. the commit
before the cold-start work: ``git worktree add /tmp/before <commit>``), for a ratio taken
on the same machine at the same time.

Every wait polls a condition with a deadline. Prints each server's figures and the medians;
the goal of issue 19 is a median ``home`` <= 2.0 s and every ``warm`` page < 1 s. On a
machine shared with other work the figures are inflated: the load average is printed too.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

REPO = Path(__file__).resolve().parent.parent
CHROMIUMS = ("/usr/bin/chromium", "/usr/lib/chromium/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--headless=new", "--disable-gpu", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update"]  # fmt: skip
HOME_TITLE = "Watch a CNN learn Fashion-MNIST"
PAGES = {  # URL path -> text of its title (st.title, the first h1 of the main area)
    "/": HOME_TITLE,
    "/Train": "Train",
    "/Confusion_matrix": "Confusion matrix",
    "/Sketch": "Sketch",
    "/Runs": "Runs",
    "/Learning": "How the network learned",
}
DEADLINE_S = 180  # a very busy 2-core machine: torch alone took 15 s to import


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_cmd(port: int) -> list[str]:
    return [sys.executable, "-m", "streamlit", "run", "streamlit_app.py",
            "--server.headless", "true", "--server.port", str(port),
            "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"]  # fmt: skip


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=1) as resp:
            return resp.status == 200
    except OSError:
        return False


def wait_for_server(proc: subprocess.Popen, url: str) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not answers(url):
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited with status {proc.returncode}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"streamlit did not answer within {DEADLINE_S} s")
        time.sleep(0.02)  # the polling interval of a deadline loop


def title(page: Page, text: str):
    return page.get_by_test_id("stMain").get_by_role("heading", level=1, name=text)


def start_server(port: int, runs_dir: Path, repo: Path) -> subprocess.Popen:
    env = dict(os.environ, FMNIST_RUNS_DIR=str(runs_dir), PYTHONUNBUFFERED="1")
    return subprocess.Popen(server_cmd(port), cwd=repo, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip


def stop_server(proc: subprocess.Popen) -> None:
    proc.terminate()
    proc.wait(timeout=30)


def open_home(context: BrowserContext, url: str) -> Page:
    """A new tab on the home page, once its title and three page links are drawn."""
    page = context.new_page()
    page.goto(url, timeout=DEADLINE_S * 1000)
    title(page, HOME_TITLE).wait_for(timeout=DEADLINE_S * 1000)
    for name in ("Train", "Confusion matrix", "Sketch"):
        page.get_by_test_id("stMain").get_by_role("link", name=name).wait_for()
    return page


def measure_server(
    browser: Browser, runs_dir: Path, repo: Path, port: int, returning: BrowserContext
) -> dict[str, float]:
    url = f"http://127.0.0.1:{port}"
    out: dict[str, float] = {}
    t0 = time.perf_counter()
    proc = start_server(port, runs_dir, repo)
    try:
        wait_for_server(proc, url)
        out["health"] = time.perf_counter() - t0
        context = browser.new_context()  # a first visit: nothing cached
        page = open_home(context, url)
        out["home"] = time.perf_counter() - t0
        page.get_by_test_id("stSidebar").get_by_text("train +").wait_for(timeout=DEADLINE_S * 1000)
        out["sidebar"] = time.perf_counter() - t0
        for path, text in PAGES.items():
            out[f"warm {path}"], out[f"done {path}"] = warm_page(context, url + path, text)
        context.close()
    finally:
        stop_server(proc)
    # The same again with a browser that has been to this address before (a user's second
    # `make run`): its cache holds Streamlit's scripts (hashed names, cached for good).
    t0 = time.perf_counter()
    proc = start_server(port, runs_dir, repo)
    try:
        wait_for_server(proc, url)
        open_home(returning, url).close()
        out["home, returning browser"] = time.perf_counter() - t0
    finally:
        stop_server(proc)
    return out


def warm_page(context: BrowserContext, url: str, text: str) -> tuple[float, float]:
    """A new tab of the browser that opened the home page (its cache holds Streamlit's
    scripts, as a user's does) on the warm server: seconds from opening ``url`` to its title
    visible, and to the end of its script run (the next one starts from an idle server)."""
    page = context.new_page()
    t0 = time.perf_counter()
    page.goto(url, timeout=DEADLINE_S * 1000)
    title(page, text).wait_for(timeout=DEADLINE_S * 1000)
    first = time.perf_counter() - t0
    page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]',
                           state="attached", timeout=DEADLINE_S * 1000)  # fmt: skip
    done = time.perf_counter() - t0
    page.close()
    return first, done


def chromium() -> str:
    found = next((p for p in CHROMIUMS if Path(p).exists()), None) or shutil.which("chromium")
    if not found:
        raise SystemExit("no chromium: apt-get install -y chromium (see scripts/ensure_system.sh)")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--servers", type=int, default=3, help="fresh servers (default 3)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--repo", type=Path, default=REPO,
                        help="checkout whose app to serve (default: this one)")  # fmt: skip
    args = parser.parse_args(argv)
    results = []
    with sync_playwright() as pw, tempfile.TemporaryDirectory() as scratch:
        browser = pw.chromium.launch(executable_path=chromium(), args=CHROMIUM_ARGS)
        # One address for every server (as `make run`'s 8501), and a browser context kept
        # open throughout: the "returning" visits find Streamlit's scripts in its cache.
        port, returning = free_port(), browser.new_context()
        proc = start_server(port, Path(scratch), args.repo.resolve())
        try:  # its first visit, not measured: fills the cache
            wait_for_server(proc, f"http://127.0.0.1:{port}")
            open_home(returning, f"http://127.0.0.1:{port}").close()
        finally:
            stop_server(proc)
        for i in range(args.servers):
            results.append(
                measure_server(browser, Path(scratch), args.repo.resolve(), port, returning)
            )
            cells = ", ".join(f"{k} {v:.2f} s" for k, v in results[-1].items())
            print(f"server {i + 1}: {cells}", file=sys.stderr, flush=True)
        browser.close()
    medians = {k: statistics.median(r[k] for r in results) for k in results[0]}
    load = [round(x, 2) for x in os.getloadavg()]
    if args.json:
        print(json.dumps({"servers": results, "median": medians, "load_average": load}))
    else:
        print(f"{os.cpu_count()} CPUs, load average {load[0]} at the end; medians of "
              f"{len(results)} fresh servers:")  # fmt: skip
        for key, value in medians.items():
            spread = ", ".join(f"{r[key]:.2f}" for r in results)
            print(f"  {key:<22} {value:6.2f} s   ({spread})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
