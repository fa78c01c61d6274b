"""Time of the run listing every page uses, at 500 runs of 30 epochs.

    .venv/bin/python benchmarks/listing_bench.py              # 500 runs, 30 epochs, 7 repeats
    .venv/bin/python benchmarks/listing_bench.py --runs 100 --repeats 3

Creates synthetic run folders in a temp folder, written the way the recorder writes them
(config.json, status.json, events.jsonl with one batch line per 0.1 s of a ~30 s epoch and
an epoch line per epoch, empty stand-ins for the weights and predictions files, which the
listing only checks exist). Reports the median of the repeats: the old full scan (every
folder read and replayed), the cached listing cold (first call) and warm (nothing changed),
and warm after one run's log grew. Goal: warm under 50 ms.
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fmnist_core import runs  # noqa: E402
from fmnist_core.config import TrainConfig  # noqa: E402
from fmnist_core.events import append_event  # noqa: E402

LINES_PER_EPOCH = 300  # one batch line per 0.1 s of a 30 s epoch


def _make_run(root: Path, i: int, epochs: int) -> Path:
    folder = root / f"20260101-{i:06d}-bench-beef"
    folder.mkdir()
    cfg = TrainConfig(epochs=epochs, name="bench")
    (folder / "config.json").write_text(json.dumps(cfg.to_dict()))
    status = {"status": "finished", "reason": "", "pid": 1, "host": socket.gethostname()}
    (folder / "status.json").write_text(json.dumps(status))
    lines = [json.dumps({"type": "started", "time": 0.0, "device": "cpu", "n_train": 60000,
                         "n_test": 10000, "batches": 600, "parameters": 1000,
                         "data_source": "bench"})]  # fmt: skip
    for e in range(1, epochs + 1):
        for k in range(1, LINES_PER_EPOCH + 1):
            lines.append(json.dumps({"type": "batch", "epoch": e, "batch": 2 * k, "batches": 600,
                                     "losses": [0.5, 0.4], "images_per_s": 2000.0, "eta_s": 1.0,
                                     "elapsed_s": 1.0}, separators=(",", ":")))  # fmt: skip
        row = {"epoch": e, "cost": 1.0, "train_loss": 0.5, "val_loss": 0.4, "val_acc": 0.8,
               "seconds": 30.0, "elapsed_s": 30.0 * e}  # fmt: skip
        lines.append(json.dumps({"type": "epoch", **row}))
        (folder / f"epoch_{e:03d}.pt").touch()
        (folder / f"probs_{e:03d}.pt").touch()
    lines.append(json.dumps({"type": "end", "status": "finished", "reason": ""}))
    (folder / "events.jsonl").write_text("\n".join(lines) + "\n")
    (folder / "labels.pt").touch()
    return folder


def _median_ms(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1000 * statistics.median(times)


def _full_scan(root: Path) -> None:
    """The listing as it was: every folder read again at every call."""
    for child in sorted(root.iterdir(), reverse=True):
        runs.load_run(child)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=500)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        folders = [_make_run(root, i, args.epochs) for i in range(args.runs)]
        full = _median_ms(lambda: _full_scan(root), max(1, args.repeats // 2))

        def cold() -> None:
            runs.clear_cache()
            runs.scan_runs(root)

        cold_ms = _median_ms(cold, max(1, args.repeats // 2))
        found, warnings = runs.scan_runs(root)
        assert len(found) == args.runs and not warnings, warnings
        warm = _median_ms(lambda: runs.scan_runs(root), args.repeats)

        def one_changed() -> None:
            append_event(folders[0], {"type": "note", "text": "changed"})
            runs.scan_runs(root)

        changed = _median_ms(one_changed, args.repeats)
    print(f"{args.runs} runs x {args.epochs} epochs (median of repeats)")
    print(f"  full scan (every folder re-read): {full:8.1f} ms")
    print(f"  cached listing, cold:             {cold_ms:8.1f} ms")
    print(f"  cached listing, warm:             {warm:8.1f} ms  (goal < 50 ms)")
    print(f"  warm, one run's log grew:         {changed:8.1f} ms")
    print(f"  full scan / warm listing:         {full / warm:8.1f}x")


if __name__ == "__main__":
    main()
