"""Reliability of data loading: a missing, truncated or corrupt dataset gives an actionable
message naming the problem (CLI included), never a traceback, and never a half-made run."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import numpy as np
import pytest

from fmnist_core import cli, data
from tests.conftest import write_idx, write_tiny_dataset


def _cli(argv: list[str], capsys: pytest.CaptureFixture) -> tuple[int, str]:
    code = cli.main(argv)
    out = capsys.readouterr()
    return code, out.out + out.err


def test_cli_train_without_any_dataset_says_how_to_get_it(nowhere, tmp_path, capsys):
    runs = tmp_path / "runs"
    code, text = _cli(["train", "--epochs", "1", "--runs-dir", str(runs)], capsys)
    assert code == 1
    assert "Fashion-MNIST was not found" in text
    assert "apt-get install dataset-fashion-mnist" in text and "--data-dir" in text
    assert "Traceback" not in text
    assert not runs.exists() or not any(runs.iterdir())  # no half-made run folder


def test_cli_explicit_empty_data_dir_is_named(nowhere, tmp_path, capsys):
    empty = tmp_path / "my-data"
    empty.mkdir()
    code, text = _cli(["train", "--data-dir", str(empty), "--runs-dir", str(tmp_path)], capsys)
    assert code == 1 and str(empty) in text and "Traceback" not in text


def test_cli_truncated_idx_names_the_file(tmp_path, capsys):
    root = write_tiny_dataset(tmp_path / "data", n_train=50, n_test=20)
    path = data.raw_dir(root) / data.FILES["train_images"]
    path.write_bytes(path.read_bytes()[:5000])  # a download cut short
    code, text = _cli(["train", "--data-dir", str(root), "--runs-dir", str(tmp_path)], capsys)
    assert code == 1
    assert str(path) in text and "truncated" in text
    assert "Traceback" not in text


def _labels(n: int, value: int | None = None) -> np.ndarray:
    return np.full(n, value) if value is not None else np.arange(n) % 10


# name -> (file key, writer(path)) : each a different way a dataset file can be broken
CORRUPTIONS = {
    "empty file": ("train_labels", lambda p: p.write_bytes(b"")),
    "header only": ("test_images", lambda p: p.write_bytes(p.read_bytes()[:16])),
    "extra bytes": ("test_labels", lambda p: p.write_bytes(p.read_bytes() + b"\0" * 7)),
    "html page": ("train_images", lambda p: p.write_bytes(b"<html>404</html>" * 8)),
    "labels swapped in": (
        "train_images",
        lambda p: shutil.copy(p.parent / data.FILES["train_labels"], p),
    ),
    "27x28 images": (
        "test_images",
        lambda p: write_idx(p, np.zeros((20, 27, 28)), images=True),
    ),
    "label 10": ("test_labels", lambda p: write_idx(p, _labels(20, 10), images=False)),
}


@pytest.mark.parametrize("case", list(CORRUPTIONS))
def test_broken_idx_file_is_refused_and_named(case, tmp_path):
    key, corrupt = CORRUPTIONS[case]
    root = write_tiny_dataset(tmp_path, n_train=50, n_test=20)
    path = data.raw_dir(root) / data.FILES[key]
    corrupt(path)
    with pytest.raises(data.DataError) as err:
        data.load_dataset(root)
    assert data.FILES[key] in str(err.value)


def test_image_and_label_counts_must_match(tmp_path):
    root = write_tiny_dataset(tmp_path, n_train=50, n_test=20)
    write_idx(data.raw_dir(root) / data.FILES["train_labels"], _labels(49), images=False)
    with pytest.raises(data.DataError, match="50 images but 49 labels"):
        data.load_dataset(root)


def _gzip_dataset(src: Path, dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    for name in data.FILES.values():
        with gzip.open(dest / f"{name}.gz", "wb") as f:
            f.write((data.raw_dir(src) / name).read_bytes())


@pytest.mark.parametrize("damage", ["cut short", "bits flipped", "not gzip"])
def test_corrupt_system_package_names_the_gz_file(damage, nowhere, tmp_path, capsys):
    _gzip_dataset(write_tiny_dataset(tmp_path / "src", n_train=300, n_test=20), nowhere)
    gz = nowhere / f"{data.FILES['train_images']}.gz"
    blob = gz.read_bytes()
    if damage == "cut short":
        blob = blob[: len(blob) // 2]
    elif damage == "bits flipped":
        blob = blob[:40] + bytes(b ^ 0x55 for b in blob[40:200]) + blob[200:]
    else:
        blob = b"this is not a gzip file" * 4
    gz.write_bytes(blob)
    code, text = _cli(["train", "--runs-dir", str(tmp_path / "runs")], capsys)
    assert code == 1 and str(gz) in text and "Traceback" not in text
    leftovers = list(data.PROJECT_DATA_DIR.rglob("*"))
    assert not [p for p in leftovers if p.is_file() and "train-images" in p.name]
