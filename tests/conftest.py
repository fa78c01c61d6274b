"""Shared fixtures: a tiny, learnable Fashion-MNIST written as real IDX files.

The tiny dataset goes through the real loading code (torchvision's folder layout, IDX
parsing, validation). Every class is a bright bar at its own place plus noise, so a CNN
learns it in one or two epochs.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from fmnist_core import data
from tests import pace

REPO = Path(__file__).resolve().parent.parent
REAL_DATA = [data.PROJECT_DATA_DIR, data.SYSTEM_DATA_DIR]
# Tests must never reach the network.
os.environ.setdefault("FMNIST_OFFLINE", "1")
PACE = pytest.StashKey[str | None]()


@pytest.fixture(scope="session", autouse=True)
def drawings_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Drawings made for training (fmnist_core.sketchdraw) go to this session's folder."""
    before = os.environ.get("FMNIST_CACHE_DIR")
    folder = tmp_path_factory.mktemp("drawings")
    os.environ["FMNIST_CACHE_DIR"] = str(folder)
    yield folder
    if before is None:
        os.environ.pop("FMNIST_CACHE_DIR", None)
    else:
        os.environ["FMNIST_CACHE_DIR"] = before


def pytest_configure(config: pytest.Config) -> None:
    config.stash[PACE] = pace.apply()  # FMNIST_TEST_PACE: slow or fast training steps


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.stash.get(PACE, None) != "fast":
        return
    skip = pytest.mark.skip(reason="FMNIST_TEST_PACE=fast: training steps are no-ops")
    for item in items:
        if "learns" in item.keywords:
            item.add_marker(skip)


def write_idx(path: Path, array: np.ndarray, *, images: bool) -> None:
    magic = 2051 if images else 2049
    header = struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def make_images(labels: np.ndarray, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 40, size=(len(labels), 28, 28))
    for i, label in enumerate(labels):
        row = 2 + 2 * int(label)
        images[i, row : row + 4, 4:24] = 230  # class = vertical position of a bar
    return images


def write_tiny_dataset(root: Path, n_train: int = 600, n_test: int = 200) -> Path:
    """Write train/test IDX files in torchvision's layout under ``root``; returns root."""
    raw = data.raw_dir(root)
    raw.mkdir(parents=True, exist_ok=True)
    for split, n, seed in (("train", n_train, 1), ("test", n_test, 2)):
        labels = np.arange(n) % 10
        write_idx(raw / data.FILES[f"{split}_images"], make_images(labels, seed), images=True)
        write_idx(raw / data.FILES[f"{split}_labels"], labels, images=False)
    return root


@pytest.fixture(scope="session")
def tiny_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_dataset(tmp_path_factory.mktemp("tiny-fmnist"))


@pytest.fixture
def runs_dir(tmp_path: Path) -> Path:
    path = tmp_path / "runs"
    path.mkdir()
    return path


@pytest.fixture
def tiny_env(tiny_data_dir: Path, runs_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point the library (and an app started from here) at the tiny data and a temp runs dir."""
    monkeypatch.setenv("FMNIST_DATA_DIR", str(tiny_data_dir))
    monkeypatch.setenv("FMNIST_RUNS_DIR", str(runs_dir))
    return tiny_data_dir


@pytest.fixture
def nowhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No dataset anywhere: empty project and system folders, no env var, no download."""
    project, system = tmp_path / "project-data", tmp_path / "system"
    project.mkdir()
    system.mkdir()
    monkeypatch.setattr(data, "PROJECT_DATA_DIR", project)
    monkeypatch.setattr(data, "SYSTEM_DATA_DIR", system)
    monkeypatch.delenv("FMNIST_DATA_DIR", raising=False)
    monkeypatch.setenv("FMNIST_OFFLINE", "1")
    data._load.cache_clear()
    data._tensors.cache_clear()
    return system


def real_data_available() -> bool:
    try:
        data.locate()
    except data.DataError:
        return False
    return True


@pytest.fixture(scope="session")
def real_data() -> None:
    """Real-data tests: skip on a machine without the dataset, but never in CI."""
    if not real_data_available():
        if os.environ.get("CI"):
            pytest.fail("CI needs the real Fashion-MNIST: apt-get install dataset-fashion-mnist")
        pytest.skip("real Fashion-MNIST not installed")
