"""Fashion-MNIST: find it, validate it, and keep it in memory as ready-made tensors.

    ds = load_dataset()                  # raw uint8 images + labels, validated, cached
    tensors = load_tensors(16)           # float images resized once, cached per size

Where the data comes from, in order (the first that has it wins):
1. an explicit directory: the ``data_dir`` argument or the ``FMNIST_DATA_DIR`` variable;
2. the project's ``data/`` folder, in torchvision's layout ``FashionMNIST/raw/<file>``;
3. the Debian/Ubuntu package ``dataset-fashion-mnist`` (unpacked once into ``data/``);
4. torchvision's download into ``data/`` (needs internet; ``FMNIST_OFFLINE=1`` skips it).
"""

from __future__ import annotations

import functools
import hashlib
import os
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from fmnist_core.atomic import atomic_writer
from fmnist_core.safeio import FileRefused, gunzip_chunks, read_regular

CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
NUM_CLASSES = len(CLASSES)
FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
PROJECT_DATA_DIR = Path(__file__).resolve().parent.parent / "data"
SYSTEM_DATA_DIR = Path("/usr/share/datasets/fashion-mnist")
_IMAGE_MAGIC, _LABEL_MAGIC = 2051, 2049
MAX_IMAGES = {"train": 60_000, "test": 10_000}  # Fashion-MNIST's sizes: nothing may be larger
PIXELS = 28 * 28


def max_file_size(name: str) -> int:
    """Bytes the (unpacked) IDX file ``name`` of ``FILES`` can hold at most: header + data."""
    split = "test" if name.startswith("t10k") else "train"
    if "images" in name:
        return 16 + MAX_IMAGES[split] * PIXELS
    return 8 + MAX_IMAGES[split]


class DataError(RuntimeError):
    """The dataset is missing or broken; the message says what to do about it."""


@dataclass(frozen=True)
class Dataset:
    """The raw dataset: uint8 images (N, 28, 28) and int64 labels (N,)."""

    train_images: torch.Tensor
    train_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor
    source: str  # human-readable: where it was found

    @property
    def summary(self) -> str:
        return f"{len(self.train_labels):,} train + {len(self.test_labels):,} test images"


@dataclass(frozen=True)
class Tensors:
    """Float images in [0, 1], shape (N, 1, S, S), resized once; labels int64."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    source: str
    image_size: int


def raw_dir(root: Path) -> Path:
    return Path(root) / "FashionMNIST" / "raw"


def _has_files(directory: Path) -> bool:
    return all((directory / name).is_file() for name in FILES.values())


def _find_in(root: Path) -> Path | None:
    """Accept torchvision's layout, ``root/raw``, or the four files directly in ``root``."""
    for candidate in (raw_dir(root), Path(root) / "raw", Path(root)):
        if _has_files(candidate):
            return candidate
        if all((candidate / f"{name}.gz").is_file() for name in FILES.values()):
            return _unpack(candidate, _unpack_destination(raw_dir(root), candidate))
    return None


def _unpack_destination(preferred: Path, src: Path) -> Path:
    """Where to gunzip ``src``'s .gz files: ``preferred`` if it can be written, else a folder
    of the user's cache, one per source (a read-only share, a system path, a read-only repo)."""
    try:
        preferred.mkdir(parents=True, exist_ok=True)
        if os.access(preferred, os.W_OK):  # False on a read-only file system, even for root
            return preferred
    except OSError:
        pass
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "fmnist"
    fallback = raw_dir(cache / hashlib.sha256(str(src.resolve()).encode()).hexdigest()[:16])
    try:
        fallback.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(
            f"cannot unpack the .gz files of {src}: neither {preferred} nor {fallback} can be "
            f"written ({exc.strerror or exc}). gunzip them into a writable folder and pass "
            "--data-dir DIR (or set FMNIST_DATA_DIR=DIR), or set XDG_CACHE_HOME to a writable "
            "folder"
        ) from exc
    return fallback


def _unpack(src: Path, dest: Path) -> Path:
    """gunzip ``src/<file>.gz`` into ``dest/<file>`` (torchvision's layout), atomically.

    Streamed in chunks and stopped as soon as a file unpacks to more than Fashion-MNIST's
    size (a "zip bomb" costs one chunk of memory and leaves no partial file).
    """
    dest.mkdir(parents=True, exist_ok=True)
    for name in FILES.values():
        target = dest / name
        if target.is_file():
            continue
        try:
            with atomic_writer(target) as out:
                for chunk in gunzip_chunks(src / f"{name}.gz", max_file_size(name)):
                    out.write(chunk)
        except FileRefused as exc:
            raise DataError(f"{exc}: it is not a Fashion-MNIST file - remove it") from exc
        except (OSError, EOFError, zlib.error) as exc:  # cut short, bits flipped, not gzip
            raise DataError(
                f"could not unpack {src / (name + '.gz')}: {exc}; the file is damaged - "
                "download or reinstall it"
            ) from exc
    return dest


def _download(root: Path) -> Path | None:
    if os.environ.get("FMNIST_OFFLINE") == "1":
        return None
    import torchvision  # noqa: PLC0415 - only needed for this rare path

    try:
        torchvision.datasets.FashionMNIST(str(root), train=True, download=True)
        torchvision.datasets.FashionMNIST(str(root), train=False, download=True)
    except Exception:  # noqa: BLE001 - any network failure means "not this way"
        return None
    return raw_dir(root) if _has_files(raw_dir(root)) else None


def how_to_get_data(data_dir: Path | None = None) -> str:
    tried = f"  - the directory {data_dir}\n" if data_dir else ""
    return (
        "Fashion-MNIST was not found. Looked in, in order:\n"
        f"{tried}"
        f"  - {PROJECT_DATA_DIR}/FashionMNIST/raw (torchvision's layout)\n"
        f"  - {SYSTEM_DATA_DIR} (Debian/Ubuntu package dataset-fashion-mnist)\n"
        "  - torchvision's download (needs internet; off when FMNIST_OFFLINE=1)\n"
        "To get it: `sudo apt-get install dataset-fashion-mnist`, or run once with internet, "
        "or put the four *-ubyte files (or .gz) in a folder and pass --data-dir DIR / set "
        "FMNIST_DATA_DIR=DIR."
    )


def locate(data_dir: str | Path | None = None) -> tuple[Path, str]:
    """Return (directory holding the four raw files, description of the source)."""
    explicit = data_dir or os.environ.get("FMNIST_DATA_DIR")
    if explicit:
        root = Path(explicit).expanduser()
        found = _find_in(root) or _download(root)
        if found:
            return found, f"folder {root}"
        raise DataError(how_to_get_data(root))
    if found := _find_in(PROJECT_DATA_DIR):
        return found, f"project folder {PROJECT_DATA_DIR}"
    if _find_in(SYSTEM_DATA_DIR) is not None or all(
        (SYSTEM_DATA_DIR / f"{n}.gz").is_file() for n in FILES.values()
    ):
        found = _unpack_system()
        return found, f"Debian package dataset-fashion-mnist ({SYSTEM_DATA_DIR})"
    if found := _download(PROJECT_DATA_DIR):
        return found, "torchvision download"
    raise DataError(how_to_get_data())


def _unpack_system() -> Path:
    if _has_files(SYSTEM_DATA_DIR):
        return SYSTEM_DATA_DIR
    dest = _unpack_destination(raw_dir(PROJECT_DATA_DIR), SYSTEM_DATA_DIR)
    return _unpack(SYSTEM_DATA_DIR, dest)


def read_idx(path: Path, *, images: bool, max_count: int = MAX_IMAGES["train"]) -> np.ndarray:
    """Parse one IDX file of at most ``max_count`` items, checking its header against its
    size; errors name the file. Only a regular file is read (never a FIFO)."""
    limit = (16 + max_count * PIXELS) if images else (8 + max_count)
    try:
        blob = read_regular(path, limit)
    except FileRefused as exc:
        raise DataError(f"{exc}: not a Fashion-MNIST file - remove it") from exc
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc}") from exc
    ndim = 3 if images else 1
    header = 4 + 4 * ndim
    if len(blob) < header:
        raise DataError(f"{path} is truncated or not an IDX file ({len(blob)} bytes)")
    magic, *dims = np.frombuffer(blob[:header], dtype=">u4").tolist()
    expected_magic = _IMAGE_MAGIC if images else _LABEL_MAGIC
    if magic != expected_magic:
        raise DataError(
            f"{path} is not a Fashion-MNIST {'image' if images else 'label'} file "
            f"(magic number {magic}, expected {expected_magic}); re-download or reinstall it"
        )
    if images and dims[1:] != [28, 28]:
        raise DataError(f"{path} holds {dims[1]}x{dims[2]} images; Fashion-MNIST is 28x28")
    expected = int(np.prod(dims))
    if len(blob) - header != expected:
        raise DataError(
            f"{path} is truncated or corrupt: header promises {expected:,} bytes of data, "
            f"file has {len(blob) - header:,}; delete it and get the dataset again"
        )
    return np.frombuffer(blob, dtype=np.uint8, offset=header).reshape(dims)


def _read_split(directory: Path, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    most = MAX_IMAGES[split]
    x = read_idx(directory / FILES[f"{split}_images"], images=True, max_count=most)
    y = read_idx(directory / FILES[f"{split}_labels"], images=False, max_count=most)
    if len(x) != len(y) or len(x) == 0:
        raise DataError(
            f"{directory}: {split} set has {len(x)} images but {len(y)} labels; files mismatch"
        )
    if y.max() >= NUM_CLASSES:
        raise DataError(f"{directory / FILES[f'{split}_labels']} has labels outside 0-9")
    return torch.from_numpy(x.copy()), torch.from_numpy(y.astype(np.int64))


@functools.lru_cache(maxsize=4)
def _load(directory: Path, source: str) -> Dataset:
    train_x, train_y = _read_split(directory, "train")
    test_x, test_y = _read_split(directory, "test")
    return Dataset(train_x, train_y, test_x, test_y, source)


def load_dataset(data_dir: str | Path | None = None) -> Dataset:
    """Locate, read and validate the dataset; cached in the process."""
    directory, source = locate(data_dir)
    return _load(directory.resolve(), source)


def resize(images: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 (N, 28, 28) -> float (N, 1, size, size) in [0, 1], antialiased like PIL."""
    x = images.unsqueeze(1).float().div_(255)
    if size == x.shape[-1]:
        return x
    out = torch.cat(
        [
            F.interpolate(chunk, size=(size, size), mode="bilinear", antialias=True)
            for chunk in x.split(10_000)
        ]
    )
    return out.clamp_(0, 1)


@functools.lru_cache(maxsize=8)
def _tensors(directory: Path, source: str, size: int) -> Tensors:
    ds = _load(directory, source)
    return Tensors(
        resize(ds.train_images, size),
        ds.train_labels,
        resize(ds.test_images, size),
        ds.test_labels,
        source,
        size,
    )


def load_tensors(image_size: int = 16, data_dir: str | Path | None = None) -> Tensors:
    """Train and test tensors at ``image_size``, preprocessed once per process and size."""
    directory, source = locate(data_dir)
    return _tensors(directory.resolve(), source, int(image_size))


def stratified_subset(labels: torch.Tensor, n: int, seed: int = 0) -> torch.Tensor:
    """Indices of ``n`` samples with the class proportions of ``labels`` (sorted)."""
    if n <= 0 or n >= len(labels):
        return torch.arange(len(labels))
    gen = torch.Generator().manual_seed(seed)
    counts = torch.bincount(labels, minlength=NUM_CLASSES)
    # Largest-remainder allocation so the per-class counts add up to exactly n.
    share = counts.double() * n / len(labels)
    take = share.floor().long()
    remainder = n - int(take.sum())
    take[torch.argsort(share - take, descending=True)[:remainder]] += 1
    picked = []
    for cls in range(NUM_CLASSES):
        members = (labels == cls).nonzero().flatten()
        picked.append(members[torch.randperm(len(members), generator=gen)[: take[cls]]])
    return torch.cat(picked).sort().values
