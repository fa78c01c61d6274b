"""Time to accuracy: the notebook's pipeline against the core's `seed` and `strong` presets.

    .venv/bin/python benchmarks/train_bench.py                       # all three, one table
    .venv/bin/python benchmarks/train_bench.py --only notebook,seed  # issue 2's seed ratio
    .venv/bin/python benchmarks/train_bench.py --json                # one JSON object
    .venv/bin/python benchmarks/train_bench.py --repeat 3            # medians of 3 rounds

All pipelines run in this one process on the same data, one after the other:

- ``notebook``: the classic notebook, as it was written: torchvision's ``FashionMNIST`` with
  ``Resize((16, 16))`` + ``ToTensor()`` (PIL, per image, every epoch), a DataLoader of batch
  100, shuffled, the notebook's CNN (fp32, default memory layout), SGD lr 0.1, 5 epochs, the
  test set evaluated after every epoch (batches of 5000, without autograd).
- ``seed`` and ``strong``: ``fmnist_core.train.train(preset(name))`` on tensors already in
  memory (their one-off preprocessing is timed separately as ``prep s``).

Times are wall-clock seconds from the first training batch; an epoch counts once its
evaluation is done, so "to 90%" is the time until the test accuracy was first measured at
or above 90%. The ratio is total time / the notebook's total time; "cpu" is the process's
CPU time meanwhile (all threads). On a machine shared with other work the times are
inflated and noisy: compare runs of one invocation, or use ``--threads 1`` and the cpu
column.

``strong`` trains once per seed of ``--strong-seeds`` (default 0 and 1: issue 19 asks for
their mean accuracy); each is a row ``strong/seed<N>`` with its own ratio. ``--repeat N``
runs every pipeline N times, alternating them (notebook, seed, strong, notebook, ...) so a
change of the machine's load hits all of them, and prints the median of each figure with its
spread (min-max); each ratio is taken within its round, then the median of those.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fmnist_core.config import preset  # noqa: E402
from fmnist_core.data import FILES, DataError, load_tensors, locate  # noqa: E402
from fmnist_core.model import NotebookCNN  # noqa: E402
from fmnist_core.train import EpochEnd, RunEnd, train  # noqa: E402

PIPELINES = ("notebook", "seed", "strong")
THRESHOLDS = (0.86, 0.90, 0.92)
NOTEBOOK_EPOCHS = 5

OnEpoch = Callable[[str, int, float, float], None]


@dataclass
class Result:
    name: str
    accs: list[float] = field(default_factory=list)  # test accuracy after each epoch
    times: list[float] = field(default_factory=list)  # seconds from the start, per epoch
    total_s: float = 0.0
    cpu_s: float = 0.0  # CPU time of the process meanwhile (all threads): load-independent-ish
    prep_s: float = 0.0  # untimed one-off work: building the dataset / tensors

    @property
    def final_acc(self) -> float:
        return self.accs[-1] if self.accs else float("nan")

    def time_to(self, threshold: float) -> float | None:
        """Seconds until an evaluation first reached ``threshold``; None if never."""
        return next((t for a, t in zip(self.accs, self.times, strict=True) if a >= threshold), None)


def torchvision_root(raw: Path, scratch: Path) -> Path:
    """A root whose ``FashionMNIST/raw`` holds the four files, as torchvision wants."""
    if raw.name == "raw" and raw.parent.name == "FashionMNIST":
        return raw.parent.parent
    linked = scratch / "FashionMNIST" / "raw"
    linked.mkdir(parents=True, exist_ok=True)
    for name in FILES.values():
        if not (linked / name).exists():
            (linked / name).symlink_to(raw / name)
    return scratch


def _notebook_loaders(root: Path) -> tuple[DataLoader, DataLoader]:
    import torchvision.transforms as T  # noqa: N812, PLC0415 - only this pipeline needs it
    from torchvision.datasets import FashionMNIST  # noqa: PLC0415

    transform = T.Compose([T.Resize((16, 16)), T.ToTensor()])
    train_set = FashionMNIST(str(root), train=True, download=False, transform=transform)
    test_set = FashionMNIST(str(root), train=False, download=False, transform=transform)
    return (
        DataLoader(train_set, batch_size=100, shuffle=True),
        DataLoader(test_set, batch_size=5000),
    )


def run_notebook(data_dir: str | None, on_epoch: OnEpoch) -> Result:
    """The notebook's loop: PIL resize per image per epoch, SGD 0.1, batch 100."""
    result = Result("notebook")
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as scratch:
        root = torchvision_root(locate(data_dir)[0], Path(scratch))
        train_loader, test_loader = _notebook_loaders(root)
        result.prep_s = time.perf_counter() - t0
        torch.manual_seed(0)
        model = NotebookCNN(16, 32, 16)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        t0, c0 = time.perf_counter(), time.process_time()
        for epoch in range(1, NOTEBOOK_EPOCHS + 1):
            for x, y in train_loader:
                optimizer.zero_grad()
                loss = F.cross_entropy(model(x), y)
                loss.backward()
                optimizer.step()
            with torch.no_grad():
                correct = sum((model(x).argmax(1) == y).sum().item() for x, y in test_loader)
            result.accs.append(correct / len(test_loader.dataset))
            result.times.append(time.perf_counter() - t0)
            on_epoch("notebook", epoch, result.accs[-1], result.times[-1])
        result.cpu_s = time.process_time() - c0
    result.total_s = result.times[-1]
    return result


def run_preset(
    name: str, data_dir: str | None, on_epoch: OnEpoch, seed: int | None = None
) -> Result:
    """``train(preset(name))`` on tensors prepared beforehand (their preparation is prep_s);
    ``seed`` replaces the preset's seed (the row is then called ``name/seed<N>``)."""
    cfg = preset(name) if seed is None else preset(name).replace(seed=seed)
    label = name if seed is None else f"{name}/seed{seed}"
    result = Result(label)
    t0 = time.perf_counter()
    tensors = load_tensors(cfg.image_size, data_dir)
    result.prep_s = time.perf_counter() - t0
    c0 = time.process_time()
    for event in train(cfg, tensors):
        if isinstance(event, EpochEnd):
            result.accs.append(event.val_acc)
            result.times.append(event.elapsed_s)
            on_epoch(label, event.epoch, event.val_acc, event.elapsed_s)
        elif isinstance(event, RunEnd):
            if event.status != "finished":
                raise RuntimeError(f"the {name} preset's training {event.status}: {event.reason}")
            result.total_s = event.train_s
    result.cpu_s = time.process_time() - c0
    return result


def _seconds(value: float | None) -> str:
    return "not reached" if value is None else f"{value:.1f} s"


def table(results: list[Result]) -> str:
    base = next((r.total_s for r in results if r.name == "notebook"), None)
    heads = ["pipeline", "epochs", "final acc"]
    heads += [f"to {t:.0%}" for t in THRESHOLDS] + ["total", "vs notebook", "cpu", "prep"]
    rows = [heads]
    for r in results:
        ratio = f"{r.total_s / base:.2f}" if base else "n/a"
        rows.append(
            [r.name, str(len(r.accs)), f"{r.final_acc:.2%}"]
            + [_seconds(r.time_to(t)) for t in THRESHOLDS]
            + [_seconds(r.total_s), ratio, _seconds(r.cpu_s), _seconds(r.prep_s)]
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(heads))]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in
                       enumerate(zip(row, widths, strict=True))) for row in rows]  # fmt: skip
    return "\n".join([lines[0], "-" * len(lines[0]), *lines[1:]])


def environment() -> dict:
    return {
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpus": os.cpu_count(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def to_json(results: list[Result]) -> dict:
    base = next((r.total_s for r in results if r.name == "notebook"), None)
    out = []
    for r in results:
        row = asdict(r) | {"final_acc": r.final_acc}
        row["time_to"] = {f"{t:.2f}": r.time_to(t) for t in THRESHOLDS}
        row["ratio_to_notebook"] = r.total_s / base if base else None
        out.append(row)
    return {"environment": environment(), "results": out}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", default=",".join(PIPELINES),
                        help=f"comma-separated subset of {', '.join(PIPELINES)}")  # fmt: skip
    parser.add_argument("--data-dir", help="folder holding Fashion-MNIST (else searched)")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    parser.add_argument("--repeat", type=int, default=1,
                        help="rounds of every pipeline, alternated; medians reported")  # fmt: skip
    parser.add_argument("--strong-seeds", default="0,1",
                        help="comma-separated seeds the strong preset trains with")  # fmt: skip
    args = parser.parse_args(argv)
    try:
        args.strong_seeds = [int(x) for x in args.strong_seeds.split(",") if x.strip()]
    except ValueError:
        parser.error(f"--strong-seeds takes whole numbers; got {args.strong_seeds!r}")
    if not args.strong_seeds:
        parser.error("--strong-seeds needs at least one seed")
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    args.only = [p.strip() for p in args.only.split(",") if p.strip()]
    unknown = [p for p in args.only if p not in PIPELINES]
    if unknown or not args.only:
        parser.error(f"--only takes a subset of {', '.join(PIPELINES)}; got {unknown or 'none'}")
    if args.threads is not None and args.threads < 1:
        parser.error("--threads must be at least 1")
    return args


def one_round(args: argparse.Namespace, progress: OnEpoch) -> list[Result]:
    results = []
    for name in [p for p in PIPELINES if p in args.only]:
        if name == "notebook":
            results.append(run_notebook(args.data_dir, progress))
        elif name == "strong":
            results += [run_preset(name, args.data_dir, progress, s) for s in args.strong_seeds]
        else:
            results.append(run_preset(name, args.data_dir, progress))
    return results


def _ratios(results: list[Result]) -> dict[str, float]:
    base = next((r.total_s for r in results if r.name == "notebook"), None)
    return {r.name: r.total_s / base for r in results} if base else {}


def _spread(values: list[float], fmt: str) -> str:
    median = statistics.median(values)
    if len(values) == 1:
        return format(median, fmt)
    return f"{format(median, fmt)} ({format(min(values), fmt)}-{format(max(values), fmt)})"


def median_table(rounds: list[list[Result]]) -> str:
    """One row per pipeline: the median of each figure over the rounds, (min-max)."""
    heads = ["pipeline", "final acc", "total s", "vs notebook", "cpu s"]
    rows = [heads]
    ratios = [_ratios(results) for results in rounds]
    for i, first in enumerate(rounds[0]):
        runs = [results[i] for results in rounds]
        ratio = [r[first.name] for r in ratios if first.name in r]
        rows.append([
            first.name,
            _spread([r.final_acc for r in runs], ".2%"),
            _spread([r.total_s for r in runs], ".1f"),
            _spread(ratio, ".2f") if ratio else "n/a",
            _spread([r.cpu_s for r in runs], ".1f"),
        ])  # fmt: skip
    widths = [max(len(row[i]) for row in rows) for i in range(len(heads))]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in
                       enumerate(zip(row, widths, strict=True))) for row in rows]  # fmt: skip
    return "\n".join([lines[0], "-" * len(lines[0]), *lines[1:]])


def strong_mean(results: list[Result]) -> float | None:
    """Mean final accuracy of the strong preset's seeds in one round (issue 19's figure)."""
    accs = [r.final_acc for r in results if r.name.startswith("strong")]
    return sum(accs) / len(accs) if accs else None


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    def progress(name: str, epoch: int, acc: float, seconds: float) -> None:
        print(f"{name:>8} epoch {epoch:2d}: {acc:.2%} at {seconds:6.1f} s", file=sys.stderr)

    rounds = []
    try:
        for i in range(args.repeat):
            if args.repeat > 1:
                print(f"round {i + 1} of {args.repeat}", file=sys.stderr)
            rounds.append(one_round(args, progress))
    except (DataError, RuntimeError) as exc:
        print(f"benchmark failed: {exc}", file=sys.stderr)
        return 2
    if args.json:
        report = to_json(rounds[-1]) | {"rounds": [to_json(r)["results"] for r in rounds]}
        print(json.dumps(report))
        return 0
    env = environment()
    print(f"torch {env['torch']}, {env['threads']} threads on {env['cpus']} CPUs, "
          f"load average {env['load_average'][0]} at the end")  # fmt: skip
    for i, results in enumerate(rounds, 1):
        if args.repeat > 1:
            print(f"\nround {i}:")
        print(table(results))
        if (mean := strong_mean(results)) is not None:
            print(f"strong: mean final accuracy over seeds {args.strong_seeds}: {mean:.2%}")
    if args.repeat > 1:
        print(f"\nmedians of {args.repeat} rounds (min-max):")
        print(median_table(rounds))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
