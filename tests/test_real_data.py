"""Real Fashion-MNIST: installed by .ci/run, so these never skip in CI."""

import json

import pytest

from fmnist_core.data import load_dataset
from tests.test_cli import run_cli

pytestmark = pytest.mark.real_data


def test_real_dataset_is_complete(real_data):
    ds = load_dataset()
    assert ds.train_images.shape == (60_000, 28, 28) and ds.test_images.shape == (10_000, 28, 28)
    assert ds.train_labels.bincount().tolist() == [6000] * 10


def test_seed_preset_reproduces_the_notebook(real_data, runs_dir):
    out = run_cli("train", "--preset", "seed", "--json", "--runs-dir", str(runs_dir)).stdout
    rows = [json.loads(line) for line in out.splitlines()]
    costs = [r["cost"] for r in rows[:-1]]
    assert len(costs) == 5
    assert 420 < costs[0] < 520 and 190 < costs[-1] < 250  # the notebook: ~473 -> ~218
    assert costs == sorted(costs, reverse=True)
    assert rows[-1]["status"] == "finished" and rows[-1]["final_val_acc"] >= 0.855
