"""The `strong` preset (bn3 model, bf16 autocast) and its time-to-accuracy benchmark."""

import importlib.util
import json
import sys
from pathlib import Path

import pytest
import torch

from fmnist_core import runs
from fmnist_core.config import ConfigError, TrainConfig, preset
from fmnist_core.data import FILES, load_tensors
from fmnist_core.model import BN3CNN
from fmnist_core.train import EpochEnd, RunEnd, train

train_module = sys.modules["fmnist_core.train"]  # the package re-exports train() by that name

BENCH_PATH = Path(__file__).resolve().parent.parent / "benchmarks" / "train_bench.py"
# The strong recipe, shrunk for the tiny dataset (600 images): same model, amp, augmentation.
TINY_STRONG = preset("strong").replace(epochs=2, batch_size=50, conv1=8, conv2=16)


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("train_bench", BENCH_PATH)
    module = importlib.util.module_from_spec(spec)
    sys.modules["train_bench"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    yield module
    del sys.modules["train_bench"]


def epoch_ends(events):
    return [e for e in events if isinstance(e, EpochEnd)]


def test_amp_must_be_a_switch():
    assert TrainConfig().amp is False and preset("seed").amp is False
    with pytest.raises(ConfigError, match="amp must be true or false"):
        TrainConfig(amp="yes")
    # A run saved before the field existed still loads (missing keys take defaults).
    old = {k: v for k, v in preset("strong").to_dict().items() if k != "amp"}
    assert TrainConfig.from_dict(old).amp is False


@pytest.mark.learns
def test_amp_changes_the_numbers_and_still_learns(tiny_data_dir, monkeypatch):
    monkeypatch.setattr(train_module, "bf16_is_fast", lambda device_type: True)
    tensors = load_tensors(28, tiny_data_dir)
    fp32 = list(train(TINY_STRONG.replace(amp=False), tensors))
    bf16 = list(train(TINY_STRONG, tensors))
    assert (fp32[0].device, bf16[0].device) == ("cpu", "cpu (bf16)")
    fp32, bf16 = epoch_ends(fp32), epoch_ends(bf16)
    assert [e.cost for e in bf16] != [e.cost for e in fp32]  # autocast really is on
    assert bf16[-1].val_acc > 0.5 and fp32[-1].val_acc > 0.5
    assert bf16[-1].probs.dtype == torch.float32 and torch.isfinite(bf16[-1].probs).all()


def test_amp_falls_back_to_fp32_where_bf16_is_slow(tiny_data_dir, monkeypatch):
    monkeypatch.setattr(train_module, "bf16_is_fast", lambda device_type: False)
    cfg = TINY_STRONG.replace(epochs=1)
    tensors = load_tensors(28, tiny_data_dir)
    asked = list(train(cfg, tensors))
    fp32 = list(train(cfg.replace(amp=False), tensors))
    assert asked[0].device == "cpu"
    assert [e.cost for e in epoch_ends(asked)] == [e.cost for e in epoch_ends(fp32)]


def test_saved_strong_run_rebuilds_its_model(tiny_data_dir, runs_dir):
    rec, events = runs.start_run(TINY_STRONG, runs_dir, data_dir=tiny_data_dir)
    events = list(events)
    assert events[-1].status == "finished"
    run = runs.find_run(rec.run_id, runs_dir)
    assert run.config == TINY_STRONG and run.config.arch == "bn3" and run.config.amp
    model = run.load_model()
    assert isinstance(model, BN3CNN) and not model.training
    reference = BN3CNN(8, 16, 28)
    reference.load_state_dict(epoch_ends(events)[-1].state)
    x = load_tensors(28, tiny_data_dir).test_x[:20]
    with torch.inference_mode():
        assert torch.equal(model(x), reference.eval()(x))
    assert run.probs().shape == (200, 10)


def test_time_to_threshold(bench):
    result = bench.Result("x", accs=[0.8, 0.87, 0.85, 0.91], times=[1.0, 2.0, 3.0, 4.0])
    assert result.time_to(0.86) == 2.0  # the first time it was reached, not the last
    assert result.time_to(0.90) == 4.0
    assert result.time_to(0.92) is None
    assert "not reached" in bench.table([result])


def test_torchvision_root_links_a_flat_folder(bench, tiny_data_dir, tmp_path):
    raw = tiny_data_dir / "FashionMNIST" / "raw"
    assert bench.torchvision_root(raw, tmp_path) == tiny_data_dir  # already the right layout
    flat = tmp_path / "flat"
    flat.mkdir()
    for name in FILES.values():
        (flat / name).symlink_to(raw / name)
    root = bench.torchvision_root(flat, tmp_path / "scratch")
    assert all((root / "FashionMNIST" / "raw" / n).is_file() for n in FILES.values())


@pytest.mark.learns
def test_benchmark_runs_notebook_and_seed_on_the_same_data(bench, tiny_data_dir, capsys):
    assert bench.main(["--only", "notebook,seed", "--json", "--data-dir", str(tiny_data_dir)]) == 0
    report = json.loads(capsys.readouterr().out)
    notebook, seed = report["results"]
    assert [notebook["name"], seed["name"]] == ["notebook", "seed"]
    assert len(notebook["accs"]) == len(seed["accs"]) == 5
    assert notebook["ratio_to_notebook"] == 1.0
    assert seed["ratio_to_notebook"] == pytest.approx(seed["total_s"] / notebook["total_s"])
    assert notebook["final_acc"] > 0.5 and seed["final_acc"] > 0.5  # both learn the tiny set
    assert set(seed["time_to"]) == {"0.86", "0.90", "0.92"}


def test_benchmark_rejects_unknown_pipelines(bench, capsys):
    with pytest.raises(SystemExit) as exc:
        bench.main(["--only", "seed,turbo"])
    assert exc.value.code == 2 and "turbo" in capsys.readouterr().err


@pytest.mark.learns
def test_strong_preset_reaches_92_5_percent(real_data):
    """The README's claim (93.16% with seed 0 measured here; bf16 kernels and thread counts
    move it by ~0.1-0.3%, hence the margin); CI checks accuracy, not time."""
    events = list(train(preset("strong")))
    end = events[-1]
    assert isinstance(end, RunEnd) and end.status == "finished", end
    assert end.final_val_acc >= 0.925, [round(e.val_acc, 4) for e in epoch_ends(events)]


def test_median_table_takes_each_ratio_within_its_round(bench):
    def rounds_of(notebook_s, seed_s):
        return [bench.Result("notebook", accs=[0.86], times=[notebook_s], total_s=notebook_s),
                bench.Result("seed", accs=[0.87], times=[seed_s], total_s=seed_s)]  # fmt: skip

    # Round 2 ran on a machine twice as slow: its ratio is still 0.30.
    text = bench.median_table([rounds_of(40.0, 12.0), rounds_of(80.0, 24.0), rounds_of(50.0, 20.0)])
    seed_row = next(line for line in text.splitlines() if line.startswith("seed"))
    assert "24.0 (12.0-24.0)" not in seed_row  # the median of 12, 24, 20 is 20
    assert "20.0 (12.0-24.0)" in seed_row and "0.30 (0.30-0.40)" in seed_row
    assert "87.00%" in seed_row


def test_strong_mean_averages_the_strong_seeds_only(bench):
    results = [bench.Result("notebook", accs=[0.5]), bench.Result("strong/seed0", accs=[0.93]),
               bench.Result("strong/seed1", accs=[0.92])]  # fmt: skip
    assert bench.strong_mean(results) == pytest.approx(0.925)
    assert bench.strong_mean(results[:1]) is None


def test_benchmark_repeats_rounds_and_names_the_strong_seeds(bench, tiny_data_dir, capsys):
    args = ["--only", "seed", "--repeat", "2", "--json", "--data-dir", str(tiny_data_dir)]
    assert bench.main(args) == 0
    report = json.loads(capsys.readouterr().out)
    assert [[r["name"] for r in one] for one in report["rounds"]] == [["seed"], ["seed"]]
    parsed = bench.parse_args(["--strong-seeds", "3,4"])
    assert parsed.strong_seeds == [3, 4] and parsed.repeat == 1
    for bad in (["--repeat", "0"], ["--strong-seeds", "x"], ["--strong-seeds", ","]):
        with pytest.raises(SystemExit):
            bench.parse_args(bad)
