"""Training configuration: one frozen, typed object, its allowed ranges and the presets.

    cfg = TrainConfig(epochs=3, lr=0.05)        # raises ConfigError on a bad value
    cfg = preset("seed").replace(epochs=2)
    TrainConfig.from_dict(json.load(f))         # round-trips to_dict()

The CLI maps flags onto it and the Train page builds it from widgets; every range below is
the single source for both (``RANGES`` / ``CHOICES``).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

OPTIMIZERS = ("sgd", "momentum", "adam", "adamw")
OPTIMIZER_LABELS = {
    "sgd": "SGD",
    "momentum": "SGD + momentum",
    "adam": "Adam",
    "adamw": "AdamW",
}
ARCHS = ("notebook", "bn3")
SCHEDULES = ("constant", "onecycle")
DEVICES = ("auto", "cpu", "cuda")
IMAGE_SIZES = (16, 28)
MAX_TRAIN = 60_000


class ConfigError(ValueError):
    """A configuration value outside its allowed range; the message says what is allowed."""


# field -> (low, high, explanation). Inclusive bounds.
RANGES: dict[str, tuple[float, float, str]] = {
    "epochs": (1, 30, "number of passes over the training set"),
    "lr": (1e-4, 1.0, "learning rate (step size of the optimizer)"),
    "batch_size": (16, 1024, "images per gradient step"),
    "conv1": (1, 128, "filters in the first conv layer"),
    "conv2": (1, 256, "filters in the second conv layer"),
    "momentum": (0.0, 0.99, "momentum of SGD + momentum (beta1 for Adam)"),
    "weight_decay": (0.0, 0.1, "L2 weight decay"),
    "label_smoothing": (0.0, 0.3, "label smoothing of the cross-entropy"),
    "seed": (0, 2**31 - 1, "random seed (same seed, same numbers)"),
    "train_subset": (100, MAX_TRAIN, "training images used, stratified by class (0 = all)"),
}
CHOICES: dict[str, tuple[Any, ...]] = {
    "optimizer": OPTIMIZERS,
    "image_size": IMAGE_SIZES,
    "device": DEVICES,
    "arch": ARCHS,
    "schedule": SCHEDULES,
}

FRACTIONAL = ("lr", "momentum", "weight_decay", "label_smoothing")  # the rest are whole numbers
# on/off fields -> explanation
SWITCHES: dict[str, str] = {
    "augment": "random flips and 2-pixel shifts of the training images",
    "amp": "bf16 mixed precision where the CPU/GPU has native bf16: faster, numbers differ",
    "tta": "evaluate each test image and its mirror image, average the two predictions",
    "sketch_augment": "half the training images shown as drawings of them (outlines, fills, "
    "the marks people draw, framed as the Sketch page frames drawings), so drawings are "
    "recognised; made once (~3 min on 2 cores), then cached",
}


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 5
    lr: float = 0.1
    batch_size: int = 100
    image_size: int = 16  # 16 = the notebook's resize; 28 = the original images
    conv1: int = 16  # channels of the first conv layer
    conv2: int = 32  # channels of the second conv layer
    optimizer: str = "sgd"  # one of OPTIMIZERS
    momentum: float = 0.9  # only used by "momentum" (and as Adam's beta1)
    weight_decay: float = 0.0
    seed: int = 0
    train_subset: int = 0  # 0 = all 60,000 training images
    device: str = "auto"  # "auto" picks CUDA when available
    arch: str = "notebook"  # "notebook" = the seed CNN; "bn3" = 3 conv blocks + batch-norm
    schedule: str = "constant"  # learning-rate schedule over the whole run
    label_smoothing: float = 0.0
    augment: bool = False  # random shifts/flips on tensors, on the training set only
    # bf16 mixed precision (autocast): ~1.6x faster convolutions where bf16 is native (CPUs
    # with AVX512-BF16/AMX, recent GPUs); elsewhere training stays fp32. Off for the notebook.
    amp: bool = False
    # Flip test-time augmentation: the test set's predictions average each image's and its
    # left-right mirror's (two forward passes per evaluation); pays off with augment's flips.
    tta: bool = False
    # Half of each batch shown as framed drawings of the photos (fmnist_core/sketchdraw.py).
    sketch_augment: bool = False
    name: str = field(default="custom", compare=False)  # preset it came from, for display

    def __post_init__(self) -> None:
        errors = validation_errors(self)
        if errors:
            raise ConfigError("; ".join(errors))

    def replace(self, **changes: Any) -> TrainConfig:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Build from a saved dict; unknown keys are ignored, missing ones take defaults."""
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


# The Train page's label of each field: its errors name the controls the user sees.
LABELS: dict[str, str] = {
    "epochs": "Epochs",
    "lr": "Learning rate",
    "batch_size": "Batch size",
    "image_size": "Image size",
    "conv1": "conv1 channels",
    "conv2": "conv2 channels",
    "optimizer": "Optimizer",
    "momentum": "Momentum",
    "weight_decay": "Weight decay",
    "seed": "Random seed",
    "train_subset": "Training images",
    "device": "Device",
    "arch": "Architecture",
    "schedule": "LR schedule",
    "label_smoothing": "Label smoothing",
    "augment": "Augment",
    "amp": "bf16 mixed precision",
    "tta": "Flip test-time augmentation",
    "sketch_augment": "Drawing-like images",
}


def describe_range(name: str, labels: dict[str, str] | None = None) -> str:
    """'lr must be between 0.0001 and 1 (learning rate ...)' - used in every error message.

    ``labels`` (e.g. ``LABELS``) names the field as a form shows it instead of by its name."""
    label = (labels or {}).get(name, name)
    if name in RANGES:
        low, high, what = RANGES[name]
        extra = " or 0 for all" if name == "train_subset" else ""
        return f"{label} must be between {low:g} and {high:g}{extra} ({what})"
    return f"{label} must be one of {', '.join(map(str, CHOICES[name]))}"


def validation_errors(cfg: TrainConfig, labels: dict[str, str] | None = None) -> list[str]:
    """Every problem with ``cfg``, each explaining the allowed values; empty when valid.

    ``labels``: see ``describe_range`` (the CLI keeps the field names, its flags' names)."""
    name_of = (labels or {}).get
    errors = []
    for name, (low, high, _) in RANGES.items():
        value = getattr(cfg, name)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            errors.append(f"{describe_range(name, labels)}; got {value!r}")
            continue
        if name == "train_subset" and value == 0:
            continue
        if not math.isfinite(value) or not low <= value <= high:
            errors.append(f"{describe_range(name, labels)}; got {value!r}")
        elif name not in FRACTIONAL and value != int(value):
            errors.append(f"{name_of(name, name)} must be a whole number; got {value!r}")
    for name, allowed in CHOICES.items():
        if getattr(cfg, name) not in allowed:
            errors.append(f"{describe_range(name, labels)}; got {getattr(cfg, name)!r}")
    for name in SWITCHES:
        value = getattr(cfg, name)
        if not isinstance(value, bool):
            errors.append(
                f"{name_of(name, name)} must be true or false ({SWITCHES[name]}); got {value!r}"
            )
    if not errors and cfg.train_subset and cfg.train_subset < cfg.batch_size:
        sub, batch = name_of("train_subset", "train_subset"), name_of("batch_size", "batch_size")
        errors.append(f"{sub} ({cfg.train_subset}) must be at least {batch} ({cfg.batch_size})")
    return errors


PRESETS: dict[str, TrainConfig] = {
    # The classic notebook, exactly: 16x16, 16/32 channels, SGD lr 0.1, batch 100, 5 epochs.
    "seed": TrainConfig(name="seed"),
    # A one-minute look at learning: 1/10 of the data, 3 epochs.
    "quick": TrainConfig(name="quick", epochs=3, train_subset=6000),
    # ~93.1% test accuracy (seeds 0, 1) in ~2.4-2.7x the notebook pipeline's time, 2-core CPU
    # (README: Presets, what was tried). 28x28 input, 3 conv blocks with batch-norm (pool
    # first: fast on CPUs), narrow first block (16: a 3x3 filter of one channel has only 9
    # weights) and wide last two (96, 192: at 14x14 and 7x7 they cost little), SGD + Nesterov
    # with a one-cycle schedule, label smoothing, flips + 2-pixel shifts, bf16 autocast, and
    # flip test-time augmentation.
    "strong": TrainConfig(
        name="strong",
        epochs=13,
        lr=0.2,
        batch_size=256,
        image_size=28,
        conv1=16,
        conv2=96,
        optimizer="momentum",
        momentum=0.9,
        weight_decay=5e-4,
        arch="bn3",
        schedule="onecycle",
        label_smoothing=0.1,
        augment=True,
        amp=True,
        tta=True,
    ),
    # The Sketch page's default model: the strong recipe, 20 epochs, with half of each batch
    # shown as drawings of the photos (README: Sketch model, how it was measured).
    "sketch": TrainConfig(
        name="sketch",
        epochs=20,
        lr=0.2,
        batch_size=256,
        image_size=28,
        conv1=32,
        conv2=64,
        optimizer="momentum",
        momentum=0.9,
        weight_decay=5e-4,
        arch="bn3",
        schedule="onecycle",
        label_smoothing=0.1,
        augment=True,
        amp=True,
        sketch_augment=True,
    ),
}


# What each preset gives, as measured here on a 2-core CPU (README: Presets, and how).
PRESET_NOTES: dict[str, str] = {
    "seed": "the classic notebook exactly: 86.65% test accuracy in ~15 s on a 2-core CPU",
    "quick": "a first look: 6,000 images, 3 epochs: ~71% in ~3 s",
    "strong": "the best here: ~93.1% (seeds 0 and 1) in ~2.4-2.7x the notebook's time on a "
    "2-core CPU with native bf16 (AVX512-BF16/AMX; about 1.5-2x longer without)",
    "sketch": "recognises drawings as well as photos (the Sketch page's default model); "
    "measured figures in the README",
}


def preset(name: str) -> TrainConfig:
    try:
        return PRESETS[name]
    except KeyError:
        raise ConfigError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}") from None
