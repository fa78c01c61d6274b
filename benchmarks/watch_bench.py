"""What watching costs a training: the seed preset by the CLI vs on the Train page watched.

    .venv/bin/python benchmarks/watch_bench.py                  # 3 rounds, one table
    .venv/bin/python benchmarks/watch_bench.py --rounds 1 --json

Each round trains the seed preset twice, one after the other, on this machine's data:

- ``cli``: ``python -m fmnist_core train --preset seed`` in its own process;
- ``watched``: ``streamlit run streamlit_app.py`` with a headless Chromium on the Train page,
  Train clicked, the page left to poll (live chart, batch loss, progress) until the end.

The time compared is each run's own ``train_s`` from its record (first batch to the end,
testing included): starting the server or the CLI, loading data and pages do not count.
"ratio" is the median watched time / the median CLI time (acceptance: at most 1.10). The
watched page also counts its chart's updates (a MutationObserver over the chart's marks) until
the record's "end" line: "updates/s" and the longest gap between two (each epoch's test, with
no batch in it, is one), so a cheap but stale chart cannot pass.
A shared machine inflates and scatters both: compare rounds of one invocation; each round's
own ratio (CLI and watched run one after the other) and their median are printed too, with
the browser's CPU use (in cores, over the watched run) and the load average: CPU time is far
less sensitive to other work on the machine than wall-clock time.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fmnist_core.events import EVENTS_FILE  # noqa: E402
from fmnist_core.record import Replay  # noqa: E402
from fmnist_core.runs import list_runs  # noqa: E402

CHROMIUMS = ("/usr/bin/chromium", "/usr/lib/chromium/chromium")
RUN_LIMIT_S = 900  # one seed run on a slow, busy machine
# Every change of the chart's lines or points, with the time it was seen (the page's clock, ms),
# from the first line drawn on: the empty chart shown while the training process starts and
# loads its data (several seconds on a busy machine) is no stale chart.
OBSERVE = """() => {
    window.__updates = [];
    let last = '';
    const d = p => ((p || {getAttribute: () => ''}).getAttribute('d') || '').length;
    new MutationObserver(() => {
        // The live view the browser draws (fmnist_app.live_feed), or a Vega-Lite chart
        // (FMNIST_LIVE_VIEW=server).
        const live = document.querySelector('.fm-live .fm-chart');
        const chart = live || document.querySelector('[data-testid="stVegaLiteChart"]');
        if (!chart) return;
        const lengths = live
            ? Array.from(live.querySelectorAll('path.fm-line, g.fm-points'),
                e => [e.childElementCount, d(e)])
            : Array.from(chart.querySelectorAll('g.role-mark'),
                g => [g.childElementCount, d(g.querySelector('path'))]);
        if (!lengths.some(([, n]) => n > 0)) return;
        const key = lengths.join(',');
        if (key !== last) { last = key; window.__updates.push(Date.now()); }
    }).observe(document.body, {subtree: true, childList: true, attributes: true});
}"""
LIVE_CHART = '.fm-live .fm-chart, [data-testid="stVegaLiteChart"]'
TICK_S = 1 / os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of these processes (Linux /proc), 0 for those already gone."""
    total = 0.0
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        total += (int(fields[11]) + int(fields[12])) * TICK_S
    return total


def descendants(root: int) -> dict[int, str]:
    """Every process under ``root`` (Linux /proc), with its command name."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = {}, list(children.get(root, []))
    while todo:
        pid = todo.pop()
        todo += children.get(pid, [])
        try:
            found[pid] = Path(f"/proc/{pid}/comm").read_text().strip()
        except OSError:
            continue
    return found


def chromium_pids() -> list[int]:
    """This process's chromium descendants (the browser watching the page)."""
    return [pid for pid, name in descendants(os.getpid()).items() if "chrom" in name]


def children_cpu() -> float:
    """User + system CPU seconds of this process's waited-for children (the CLI runs)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def newest_end_time(runs_dir: Path) -> float:
    """time.time() of the newest run's "end" line: when its record said it was over."""
    lines = (list_runs(runs_dir)[0].path / EVENTS_FILE).read_text().splitlines()
    return next(json.loads(line)["time"] for line in reversed(lines) if '"type":"end"' in line)


def newest_train_s(runs_dir: Path) -> float:
    runs = list_runs(runs_dir)
    if not runs:
        raise SystemExit(f"no run was saved in {runs_dir}")
    state = Replay(runs[0].path).read()
    if state.train_s is None:
        raise SystemExit(f"run {runs[0].id} did not finish: {state.status} {state.reason}")
    return state.train_s


def run_cli(runs_dir: Path, preset: str = "seed") -> tuple[float, float]:
    """(train_s, the CLI process's CPU seconds, data loading and start included)."""
    cmd = [
        sys.executable,
        "-m",
        "fmnist_core",
        "train",
        "--preset",
        preset,
        "--runs-dir",
        str(runs_dir),
    ]
    cpu0 = children_cpu()
    subprocess.run(
        cmd,
        cwd=ROOT,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        timeout=RUN_LIMIT_S,
    )  # its progress line would flood the report
    return newest_train_s(runs_dir), children_cpu() - cpu0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(runs_dir: Path, log: Path, mode: str, root: Path = ROOT) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    cmd = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        "streamlit_app.py",
        "--server.headless",
        "true",
        "--server.port",
        str(port),
        "--server.address",
        "127.0.0.1",
        "--server.fileWatcherType",
        "none",
    ]
    env = {**os.environ, "FMNIST_RUNS_DIR": str(runs_dir), "FMNIST_TRAIN_MODE": mode}
    proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2):
                return proc, url
        except OSError:
            time.sleep(0.2)  # the poll interval of a deadline loop
    proc.kill()
    raise SystemExit(f"streamlit did not start:\n{log.read_text()[-2000:]}")


def run_watched(
    runs_dir: Path, scratch: Path, preset: str = "seed", mode: str = "process", root: Path = ROOT
) -> dict:
    """The preset trained by the server (``mode``: in a child process or a thread) while
    Chromium watches: train_s, the chart's update times, and the CPU seconds (over the watched
    run) of the browser, the server process and the training child (none in thread mode: the
    server's seconds then include the training's)."""
    from playwright.sync_api import sync_playwright

    chromium = next((p for p in CHROMIUMS if Path(p).exists()), None)
    if chromium is None:
        raise SystemExit("chromium not installed (apt-get install chromium)")
    proc, url = _serve(runs_dir, scratch / "server.log", mode, root)
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path=chromium, args=["--no-sandbox", "--headless=new", "--disable-gpu"]
            )
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"{url}/Train")
            if preset != "seed":  # the page starts on the seed preset
                pick_preset(page, preset)
            page.get_by_role("button", name="Train", exact=True).click()
            page.wait_for_selector(LIVE_CHART, timeout=120_000)
            page.evaluate(OBSERVE)
            chromium, t0 = chromium_pids(), time.monotonic()
            training = list(descendants(proc.pid))  # the child, if any (started by the click)
            cpu0 = [cpu_seconds(chromium), cpu_seconds([proc.pid]), cpu_seconds(training)]
            page.get_by_test_id("stAlertContentSuccess").wait_for(timeout=RUN_LIMIT_S * 1000)
            outcome_at = time.time()
            # The child has exited by now: its seconds are in the server's "children" fields.
            cpu1 = [cpu_seconds(chromium), cpu_seconds([proc.pid]), children_of(proc.pid)]
            span = time.monotonic() - t0
            updates = page.evaluate("() => window.__updates")
            browser.close()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    browser_s, server_s, training_s = (b - a for a, b in zip(cpu0, cpu1, strict=True))
    ended = newest_end_time(runs_dir)
    return {
        "train_s": newest_train_s(runs_dir),
        # While the run trained: the page's last redraw after the end is no chart news.
        "updates": [t / 1000 for t in updates if t / 1000 <= ended],
        # From the record's "end" line to the page's "Finished" (the page's rerun).
        "outcome_lag_s": outcome_at - ended,
        "browser_cpu_s": browser_s,
        "server_cpu_s": server_s,
        "training_cpu_s": training_s,
        "span_s": span,
    }


def children_of(pid: int) -> float:
    """CPU seconds of the waited-for children of ``pid`` (its stat's cutime + cstime)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[13]) + int(fields[14])) * TICK_S


def pick_preset(page, preset: str) -> None:
    """Choose ``preset`` in the Train page's Preset box; wait until the form shows it."""
    from fmnist_app.train_form import PRESET_LABELS
    from fmnist_core.config import PRESETS

    page.get_by_test_id("stSelectbox").filter(has_text="Preset").click()
    page.get_by_role("option", name=PRESET_LABELS[preset]).click()
    epochs = PRESETS[preset].epochs
    page.get_by_text(f"in {epochs} epochs").wait_for(timeout=60_000)


def _gap(updates: list[float]) -> float:
    return max((b - a for a, b in zip(updates, updates[1:], strict=False)), default=float("nan"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="CLI + watched pairs (default 3)")
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    parser.add_argument(
        "--preset",
        default="seed",
        help="train this preset instead (e.g. quick: ~1/15 of the work, for a loaded machine)",
    )
    parser.add_argument(
        "--modes",
        default="process",
        help="the app's training modes to watch, alternated in each round: process (the "
        "default: a child process), thread (FMNIST_TRAIN_MODE=thread), or process,thread",
    )
    parser.add_argument(
        "--baseline",
        type=Path,
        help="another checkout of the app (e.g. `git worktree add /tmp/base COMMIT`, with its "
        ".venv and data): its page is watched too, as mode 'baseline', for a before/after",
    )
    args = parser.parse_args(argv)
    modes = args.modes.split(",") + (["baseline"] if args.baseline else [])
    cli: list[float] = []
    cli_cpu: list[float] = []
    watched: dict[str, list[dict]] = {m: [] for m in modes}
    with tempfile.TemporaryDirectory(prefix="watch-bench-") as tmp:
        for i in range(args.rounds):
            seconds, cpu = run_cli(Path(tmp) / f"cli-{i}", args.preset)
            cli.append(seconds)
            cli_cpu.append(cpu)
            line = f"round {i + 1}: cli {seconds:.1f} s ({cpu:.1f} CPU s)"
            for mode in modes if i % 2 == 0 else modes[::-1]:
                root = args.baseline.resolve() if mode == "baseline" else ROOT
                w = run_watched(Path(tmp) / f"{mode}-{i}", Path(tmp), args.preset,
                                "thread" if mode == "baseline" else mode, root)  # fmt: skip
                watched[mode].append(w)
                line += (
                    f"; {mode}: {w['train_s']:.1f} s (ratio {w['train_s'] / seconds:.2f}), "
                    f"chart {len(w['updates']) / w['train_s']:.2f}/s, gap "
                    f"{_gap(w['updates']):.2f} s, outcome {w['outcome_lag_s']:.2f} s after the "
                    f"end, CPU s browser {w['browser_cpu_s']:.1f} "
                    f"server {w['server_cpu_s']:.1f} training {w['training_cpu_s']:.1f}"
                )
            print(line, file=sys.stderr)
    result = {
        "cli_s": statistics.median(cli),
        "cli_cpu_s": statistics.median(cli_cpu),
        "rounds_cli_s": cli,
        "load_average": os.getloadavg(),
        "cpus": os.cpu_count(),
    }
    for mode, runs in watched.items():
        times = [w["train_s"] for w in runs]
        result[mode] = {
            "watched_s": statistics.median(times),
            "ratio": statistics.median(times) / statistics.median(cli),
            "pair_ratio_median": statistics.median(w / c for w, c in zip(times, cli, strict=True)),
            "updates_per_s": statistics.median(len(w["updates"]) / w["train_s"] for w in runs),
            "longest_gap_s": max(_gap(w["updates"]) for w in runs),
            "outcome_lag_s": max(w["outcome_lag_s"] for w in runs),
            **{k: statistics.median(w[k] for w in runs)
               for k in ("browser_cpu_s", "server_cpu_s", "training_cpu_s", "span_s")},
            "rounds_watched_s": times,
        }  # fmt: skip
    if args.json:
        print(json.dumps(result))
        return 0
    print(
        f"{args.preset} preset, medians of {args.rounds}: CLI {result['cli_s']:.1f} s "
        f"({result['cli_cpu_s']:.1f} CPU s); load average {result['load_average'][0]:.1f}"
    )
    for mode in modes:
        r = result[mode]
        print(
            f"  watched ({mode}): {r['watched_s']:.1f} s, ratio {r['ratio']:.3f} (median of the "
            f"pairs' ratios {r['pair_ratio_median']:.3f}); chart {r['updates_per_s']:.2f} "
            f"updates/s, longest gap {r['longest_gap_s']:.2f} s, outcome shown at most "
            f"{r['outcome_lag_s']:.2f} s after the record's end; CPU seconds over "
            f"{r['span_s']:.0f} s: browser {r['browser_cpu_s']:.1f}, server "
            f"{r['server_cpu_s']:.1f}, training child {r['training_cpu_s']:.1f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
