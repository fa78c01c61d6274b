"""Memory of the Streamlit server over many trainings started from the Train page.

    .venv/bin/python benchmarks/server_memory.py                  # 50 trainings, 5-30 min
    .venv/bin/python benchmarks/server_memory.py --trainings 12 --env MALLOC_ARENA_MAX=8

Starts the real server (``tests/e2e/serve.py run streamlit_app.py``, as the browser tests do)
on a generated dataset as large as Fashion-MNIST (60,000 + 10,000 synthetic images, see
tests/conftest.py) and a temporary runs folder,
opens the Train page in headless Debian chromium (Playwright; never ``playwright install``),
picks the "Quick look" preset (3 epochs of 6,000 images at 16x16) and clicks Train N times
(torch with its default threads, as ``make run`` has it; ``--env`` adds server variables),
each time waiting for the run to finish on the page. After each training it reads the
server's resident memory (VmRSS of the process and its children, from /proc) and prints it;
at the end: RSS after the warm-up trainings, after the last one, and the growth per training
(a least-squares slope over the trainings after the warm-up). Goal (issue 12, item 8): 50
trainings grow the server by less than 100 MB in all after the warm-up. Exit status 1 when
they grow it by more than ``--limit-mb``.

Only memory is measured: on a shared CPU the trainings just take longer.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from playwright.sync_api import Page, sync_playwright  # noqa: E402

from fmnist_core.config import PRESET_NOTES  # noqa: E402
from tests.conftest import write_tiny_dataset  # noqa: E402

CHROMIUMS = ("/usr/bin/chromium", "/usr/lib/chromium/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--headless=new", "--disable-gpu", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]  # fmt: skip
# As many images as Fashion-MNIST: what a training copies and keeps scales with them.
N_TRAIN, N_TEST = 60_000, 10_000
START_S, LOAD_S, TRAIN_S = 180, 120, 600  # deadlines on a busy 2-core machine
APP_IDLE = '[data-testid="stApp"][data-test-script-state="notRunning"]'
PRESET_LABELS = {"seed": "Seed notebook", "quick": "Quick look", "strong": "Strong"}  # the page's
SAVED = re.compile(r"Saved as run (\S+),")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid: int) -> float:
    """Resident memory of ``pid`` and all its descendants, in MB (from /proc)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # the process ended meanwhile
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        todo += children.get(p, [])
        try:
            status = Path(f"/proc/{p}/status").read_text()
        except OSError:
            continue
        total += int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1))
    return total / 1024


def start_server(
    root: Path, extra_env: dict[str, str], sizes: tuple[int, int]
) -> tuple[subprocess.Popen, str]:
    data = write_tiny_dataset(root / "data", *sizes)
    runs = root / "runs"
    runs.mkdir()
    # torch's default threads (one per core), as `make run` has them: with one thread
    # (OMP_NUM_THREADS=1, as the browser tests run) the server did not grow even before the fix.
    env = dict(os.environ, FMNIST_DATA_DIR=str(data), FMNIST_RUNS_DIR=str(runs),
               FMNIST_OFFLINE="1", PYTHONUNBUFFERED="1")  # fmt: skip
    env.pop("OMP_NUM_THREADS", None)
    env.update(extra_env)
    port = free_port()
    cmd = [sys.executable, "tests/e2e/serve.py", "run", "streamlit_app.py",
           "--server.headless", "true", "--server.port", str(port),
           "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false",
           "--server.fileWatcherType", "none", "--server.runOnSave", "false"]  # fmt: skip
    log = (root / "server.log").open("wb")
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + START_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"the server exited: {(root / 'server.log').read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2):
                return proc, url
        except OSError:
            time.sleep(0.5)  # polling interval of a deadline loop
    proc.kill()
    sys.exit(f"the server was not healthy after {START_S} s")


def open_train_page(page: Page, url: str, preset: str) -> None:
    """Open the Train page and choose ``preset``; waits for the preset's note under it."""
    page.goto(f"{url}/Train")
    page.wait_for_selector(APP_IDLE, state="attached", timeout=LOAD_S * 1000)
    page.get_by_test_id("stSelectbox").filter(has_text="Preset").click()
    page.get_by_role("option", name=PRESET_LABELS[preset]).click()
    note = PRESET_NOTES[preset]
    page.get_by_text(note[:1].upper() + note[1:]).wait_for(timeout=LOAD_S * 1000)
    page.wait_for_selector(APP_IDLE, state="attached", timeout=LOAD_S * 1000)


def train_once(page: Page, previous: str | None) -> str:
    """Click Train and wait until the page says a new run finished; returns its id."""
    train = page.get_by_test_id("stMain").get_by_role("button", name="Train", exact=True)
    train.wait_for(timeout=LOAD_S * 1000)
    page.wait_for_function("b => !b.disabled", arg=train.element_handle(), timeout=LOAD_S * 1000)
    train.click()
    success = page.get_by_test_id("stAlertContentSuccess")
    deadline = time.monotonic() + TRAIN_S
    while time.monotonic() < deadline:
        errors = page.get_by_test_id("stAlertContentError").all_inner_texts()
        if errors:
            sys.exit(f"the page shows an error: {errors}")
        texts = success.all_inner_texts()
        found = SAVED.search(texts[0].replace("`", "")) if texts else None
        if found and found.group(1) != previous:
            page.wait_for_selector(APP_IDLE, state="attached", timeout=LOAD_S * 1000)
            return found.group(1)
        time.sleep(0.5)  # polling interval of a deadline loop
    sys.exit(f"no finished training after {TRAIN_S} s")


def slope(ys: list[float]) -> float:
    n = len(ys)
    if n < 2:
        return 0.0
    mx, my = (n - 1) / 2, sum(ys) / n
    return sum((i - mx) * (y - my) for i, y in enumerate(ys)) / sum((i - mx) ** 2 for i in range(n))


def chromium() -> str:
    for path in CHROMIUMS:
        if Path(path).exists():
            return path
    sys.exit("chromium not found: apt-get install chromium")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--trainings", type=int, default=50)
    ap.add_argument("--warmup", type=int, default=3, help="trainings before the baseline")
    ap.add_argument("--limit-mb", type=float, default=100.0, help="allowed growth after warm-up")
    ap.add_argument("--env", action="append", default=[], metavar="KEY=VALUE",
                    help="extra environment variable for the server (repeatable)")  # fmt: skip
    ap.add_argument("--n-train", type=int, default=N_TRAIN, help="generated training images")
    ap.add_argument("--n-test", type=int, default=N_TEST, help="generated test images")
    ap.add_argument("--preset", default="quick", choices=PRESET_LABELS, help="what to train")
    ap.add_argument("--json", action="store_true", help="print one JSON object at the end")
    args = ap.parse_args()
    extra = dict(item.split("=", 1) for item in args.env)
    with tempfile.TemporaryDirectory(prefix="fmnist-mem-") as tmp:
        proc, url = start_server(Path(tmp), extra, (args.n_train, args.n_test))
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=chromium(), args=CHROMIUM_ARGS)
                page = browser.new_page(viewport={"width": 1400, "height": 1400})
                open_train_page(page, url, args.preset)
                print(f"server pid {proc.pid}, RSS after the first page load: "
                      f"{rss_mb(proc.pid):.0f} MB {extra or ''}", flush=True)  # fmt: skip
                rss, run_id, t0 = [], None, time.monotonic()
                for i in range(1, args.trainings + 1):
                    run_id = train_once(page, run_id)
                    rss.append(rss_mb(proc.pid))
                    print(f"training {i:3d} ({run_id}): RSS {rss[-1]:7.1f} MB  "
                          f"[{time.monotonic() - t0:5.0f} s]", flush=True)  # fmt: skip
                browser.close()
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    base = rss[args.warmup - 1] if len(rss) >= args.warmup else rss[0]
    growth = rss[-1] - base
    per = slope(rss[args.warmup - 1 :])
    result = {"trainings": args.trainings, "warmup": args.warmup, "env": extra,
              "rss_after_warmup_mb": round(base, 1), "rss_end_mb": round(rss[-1], 1),
              "growth_mb": round(growth, 1), "growth_per_training_mb": round(per, 2),
              "rss_mb": [round(r, 1) for r in rss]}  # fmt: skip
    print(f"RSS after training {args.warmup}: {base:.0f} MB; after training {args.trainings}: "
          f"{rss[-1]:.0f} MB; growth {growth:+.0f} MB ({per:+.2f} MB per training, "
          f"limit {args.limit_mb:.0f} MB in all)")  # fmt: skip
    if args.json:
        print(json.dumps(result))
    return 0 if growth < args.limit_mb else 1


if __name__ == "__main__":
    sys.exit(main())
