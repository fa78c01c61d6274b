"""The CNNs. ``build_model(config)`` picks the architecture named by ``config.arch``.

- ``notebook``: the classic notebook's network (conv 5x5 pad 2 -> ReLU -> maxpool 2, twice,
  then one linear layer), with its channel counts and input size as parameters.
- ``bn3``: three conv blocks with batch-norm, used by the ``strong`` preset.

Every architecture exposes its parts the same way, so explanations (fmnist_core.explain) need
no per-architecture names: ``model.features`` is an ``nn.Sequential`` of conv blocks (each
block's output is one set of activation maps) and ``model.head`` the classifier, with
``model(x) == model.head(model.features(x).flatten(1))`` (tests/test_explain.py checks it).
"""

from __future__ import annotations

import torch
from torch import nn

from fmnist_core.config import TrainConfig
from fmnist_core.data import NUM_CLASSES


class _NotebookBlock(nn.Module):
    """conv -> ReLU -> maxpool 2, on the model's own conv and pool modules."""

    def __init__(self, conv: nn.Conv2d, pool: nn.MaxPool2d) -> None:
        super().__init__()
        self.conv, self.pool = conv, pool

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(torch.relu(self.conv(x)))


class NotebookCNN(nn.Module):
    def __init__(self, conv1: int = 16, conv2: int = 32, image_size: int = 16) -> None:
        super().__init__()
        self.cnn1 = nn.Conv2d(1, conv1, kernel_size=5, padding=2)
        self.cnn2 = nn.Conv2d(conv1, conv2, kernel_size=5, padding=2)
        self.pool = nn.MaxPool2d(2)
        side = image_size // 4
        self.fc1 = nn.Linear(conv2 * side * side, NUM_CLASSES)
        # The blocks wrap the modules above without being registered as submodules, so the
        # state_dict keys (cnn1.*, cnn2.*, fc1.*) of saved runs and assets/ stay the same.
        # .to()/.eval() reach the wrapped modules through their registered names.
        blocks = nn.Sequential(_NotebookBlock(self.cnn1, self.pool),
                               _NotebookBlock(self.cnn2, self.pool))  # fmt: skip
        object.__setattr__(self, "_blocks", blocks)

    @property
    def features(self) -> nn.Sequential:
        return self._blocks

    @property
    def head(self) -> nn.Linear:
        return self.fc1

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (B, 1, S, S)
        x = self.features(x)  # (B, c1, S/2, S/2) after block 0, (B, c2, S/4, S/4) after 1
        return self.fc1(x.flatten(1))  # (B, 10) logits


def _block(c_in: int, c_out: int) -> nn.Sequential:
    """conv 3x3 -> maxpool 2 -> batch-norm -> ReLU.

    Pooling before batch-norm and ReLU (as in fast CIFAR-10 training recipes) lets those
    memory-bound layers touch 4x fewer values: ~1.5x faster per epoch on a CPU than
    conv -> BN -> ReLU -> pool, where they took over half the time. Max-pool commutes with
    ReLU, so this differs from the usual order only in where BN takes its statistics.
    """
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),  # BN's shift replaces the bias
        nn.MaxPool2d(2),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


class BN3CNN(nn.Module):
    """Three batch-norm conv blocks (c1, c2, 2*c2 channels), each halving the image, then one
    linear layer on the flattened features (which keeps where things are: better than a
    global average pool at this size)."""

    def __init__(self, conv1: int = 32, conv2: int = 64, image_size: int = 28) -> None:
        super().__init__()
        self.features = nn.Sequential(
            _block(1, conv1), _block(conv1, conv2), _block(conv2, 2 * conv2)
        )
        side = image_size // 8
        self.head = nn.Linear(2 * conv2 * side * side, NUM_CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (B, 1, S, S)
        x = self.features(x)  # (B, 2*c2, S//8, S//8): 3x3 at 28, 2x2 at 16
        return self.head(x.flatten(1))  # (B, 10) logits


def build_model(config: TrainConfig) -> nn.Module:
    if config.arch == "bn3":
        return BN3CNN(config.conv1, config.conv2, config.image_size)
    return NotebookCNN(config.conv1, config.conv2, config.image_size)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
