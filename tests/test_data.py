import gzip
import shutil

import numpy as np
import pytest
import torch

from fmnist_core import data
from tests.conftest import write_idx, write_tiny_dataset


@pytest.fixture
def no_default_sources(nowhere):
    """(empty project data folder, empty system package folder)."""
    return data.PROJECT_DATA_DIR, nowhere


def test_explicit_dir_wins(no_default_sources, tiny_data_dir, tmp_path):
    project, _ = no_default_sources
    write_tiny_dataset(project, n_train=20, n_test=10)
    found, source = data.locate(tiny_data_dir)
    assert found == data.raw_dir(tiny_data_dir)
    assert str(tiny_data_dir) in source


def test_env_var_is_an_explicit_dir(no_default_sources, tiny_data_dir, monkeypatch):
    monkeypatch.setenv("FMNIST_DATA_DIR", str(tiny_data_dir))
    assert data.locate()[0] == data.raw_dir(tiny_data_dir)


def test_project_folder_before_system_package(no_default_sources):
    project, system = no_default_sources
    write_tiny_dataset(project, n_train=20, n_test=10)
    _gzip_files(write_tiny_dataset(system / "src", 30, 10), system)
    found, source = data.locate()
    assert found == data.raw_dir(project) and "project folder" in source


def _gzip_files(root, dest):
    for name in data.FILES.values():
        with open(data.raw_dir(root) / name, "rb") as f, gzip.open(dest / f"{name}.gz", "wb") as g:
            shutil.copyfileobj(f, g)


def test_system_package_is_unpacked_into_project_layout(no_default_sources):
    project, system = no_default_sources
    _gzip_files(write_tiny_dataset(system / "src", 30, 10), system)
    found, source = data.locate()
    assert found == data.raw_dir(project)
    assert "dataset-fashion-mnist" in source
    ds = data.load_dataset()
    assert len(ds.train_labels) == 30 and ds.test_images.shape == (10, 28, 28)


def test_nothing_found_names_every_way(no_default_sources):
    with pytest.raises(data.DataError) as err:
        data.locate()
    message = str(err.value)
    for needle in ("FashionMNIST/raw", "dataset-fashion-mnist", "download", "FMNIST_DATA_DIR"):
        assert needle in message


def test_truncated_file_is_named(tmp_path):
    root = write_tiny_dataset(tmp_path, n_train=20, n_test=10)
    path = data.raw_dir(root) / data.FILES["train_images"]
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(data.DataError, match="train-images-idx3-ubyte is truncated"):
        data.read_idx(path, images=True)


def test_foreign_file_and_bad_labels_refused(tmp_path):
    root = write_tiny_dataset(tmp_path, n_train=20, n_test=10)
    raw = data.raw_dir(root)
    (raw / data.FILES["test_images"]).write_bytes(b"<html>not found</html>" * 10)
    with pytest.raises(data.DataError, match="t10k-images-idx3-ubyte is not a Fashion-MNIST"):
        data.read_idx(raw / data.FILES["test_images"], images=True)
    write_idx(raw / data.FILES["train_labels"], np.full(20, 12), images=False)
    with pytest.raises(data.DataError, match="labels outside 0-9"):
        data._read_split(raw, "train")


def test_wrong_image_shape_refused(tmp_path):
    path = tmp_path / "imgs"
    write_idx(path, np.zeros((5, 32, 32)), images=True)
    with pytest.raises(data.DataError, match="32x32"):
        data.read_idx(path, images=True)


def test_tensors_are_resized_once_and_cached(tiny_data_dir):
    t16 = data.load_tensors(16, tiny_data_dir)
    assert t16.train_x.shape == (600, 1, 16, 16) and t16.train_x.dtype == torch.float32
    assert float(t16.train_x.min()) >= 0 and float(t16.train_x.max()) <= 1
    assert data.load_tensors(16, tiny_data_dir) is t16
    t28 = data.load_tensors(28, tiny_data_dir)
    raw = data.load_dataset(tiny_data_dir).train_images
    assert torch.equal(t28.train_x[:, 0], raw.float() / 255)


def test_resize_matches_pil_bilinear():
    from PIL import Image
    from torchvision.transforms.functional import pil_to_tensor, resize

    rng = np.random.default_rng(0)
    img = torch.from_numpy(rng.integers(0, 256, (1, 28, 28), dtype=np.uint8))
    ours = data.resize(img, 16)[0, 0]
    pil = resize(Image.fromarray(img[0].numpy()), [16, 16])  # the notebook's transform
    theirs = pil_to_tensor(pil)[0].float() / 255
    assert (ours - theirs).abs().max() < 0.02


def test_stratified_subset_keeps_class_balance():
    labels = torch.arange(1000) % 10
    idx = data.stratified_subset(labels, 300, seed=1)
    assert len(idx) == 300 and len(set(idx.tolist())) == 300
    assert torch.bincount(labels[idx], minlength=10).tolist() == [30] * 10
    assert torch.equal(idx, data.stratified_subset(labels, 300, seed=1))
    assert len(data.stratified_subset(labels, 0)) == 1000
