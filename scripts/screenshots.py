"""Screenshots of every page at several widths, to look at before calling a change done.

    .venv/bin/python scripts/screenshots.py [--widths 800,1400] [--out artifacts/screenshots]

Starts the app on a free loopback port with a small generated dataset and three made-up
runs (tests/fake_runs.py: no training), opens each page in Debian's chromium and saves
``<page>-<width>.png``; then ``train-live-<width>.png``: the Train page with a training
held by the test gate after its second epoch (fmnist_core.gate). The output folder is
git-ignored.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]  # tests/e2e/conftest imports "conftest"

from playwright.sync_api import sync_playwright  # noqa: E402

from fmnist_core.gate import ENV as GATE_ENV  # noqa: E402
from fmnist_core.gate import Gate  # noqa: E402
from tests.conftest import write_tiny_dataset  # noqa: E402
from tests.e2e.conftest import (  # noqa: E402
    CHROMIUM_ARGS,
    _chromium,
    _free_port,
    _healthy,
    _server_cmd,
)
from tests.e2e.ui import open_page  # noqa: E402
from tests.fake_runs import make_run  # noqa: E402

PAGES = {"home": "/", "train": "/Train", "runs": "/Runs", "confusion": "/Confusion_matrix",
         "sketch": "/Sketch", "learning": "/Learning"}  # fmt: skip


# Charts and tables load their code lazily: wait until every one has drawn.
DRAWN = """() => {
    const all = (sel, inner) => [...document.querySelectorAll(sel)].every(
        e => e.querySelector(inner));
    return all('[data-testid="stPlotlyChart"]', '.main-svg')
        && all('[data-testid="stVegaLiteChart"]', 'svg')
        && all('[data-testid="stDataFrame"]', 'canvas')
        && !document.querySelector('[data-testid="stSkeletonElement"]');
}"""


SETTLE_MS = 1500


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--widths", default="800,1400")
    parser.add_argument("--out", type=Path, default=REPO / "artifacts" / "screenshots")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="fmnist-shots-"))
    data, runs = write_tiny_dataset(root / "data", 2000, 200), root / "runs"
    runs.mkdir()
    for lr, accs in ((0.1, (0.5, 0.7, 0.75)), (0.02, (0.4, 0.6, 0.8)), (0.05, (0.3, 0.5))):
        make_run(runs, lr=lr, accs=accs)
    gate = Gate(root / "gate")
    gate.hold("epoch", 2)  # the live view's shots: a training held after its second epoch
    env = dict(os.environ, FMNIST_DATA_DIR=str(data), FMNIST_RUNS_DIR=str(runs),
               FMNIST_OFFLINE="1", OMP_NUM_THREADS="1", **{GATE_ENV: str(gate.folder)})  # fmt: skip
    port = _free_port()
    server = subprocess.Popen(_server_cmd(port), cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.STDOUT)  # fmt: skip
    try:
        _wait_healthy(f"http://127.0.0.1:{port}")
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=_chromium(), args=CHROMIUM_ARGS)
            for width in (int(w) for w in args.widths.split(",")):
                ctx = browser.new_context(base_url=f"http://127.0.0.1:{port}",
                                          viewport={"width": width, "height": 1000})  # fmt: skip
                ctx.set_default_timeout(90_000)
                page = ctx.new_page()
                for name, path in PAGES.items():
                    open_page(page, path)
                    page.wait_for_function(DRAWN)
                    page.wait_for_load_state("networkidle")
                    page.wait_for_timeout(SETTLE_MS)  # canvases paint after their elements
                    if os.environ.get("SHOTS_DEBUG"):
                        print(
                            page.evaluate("""() => [...document.querySelectorAll(
                            '[data-testid="stMain"] [data-testid]')].map(e => e.dataset.testid)
                            .filter((v, i, a) => a.indexOf(v) === i).join(' ')""")
                        )
                    shot = args.out / f"{name}-{width}.png"
                    page.screenshot(path=shot, full_page=True)
                    print(shot)
                open_page(page, PAGES["train"])
                train = page.get_by_role("button", name="Train", exact=True)
                if train.is_enabled():  # the first width starts it; it stays held for the next
                    train.click()
                gate.wait_held()
                # The live view the browser draws (fmnist_app.live_feed), its epochs' points in.
                page.locator(".fm-live .fm-points circle").first.wait_for()
                page.wait_for_function(DRAWN)
                page.wait_for_timeout(SETTLE_MS)
                shot = args.out / f"train-live-{width}.png"
                page.screenshot(path=shot, full_page=True)
                print(shot)
                ctx.close()
            browser.close()
    finally:
        gate.release()
        server.terminate()
        server.wait(timeout=30)


def _wait_healthy(url: str, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while not _healthy(url):
        if time.monotonic() > deadline:
            raise SystemExit(f"the app did not start within {timeout_s} s")
        time.sleep(0.2)  # polling interval of a deadline loop


if __name__ == "__main__":
    main()
