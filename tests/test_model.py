import pytest
import torch
from torch import nn

from fmnist_core.config import TrainConfig, preset
from fmnist_core.model import BN3CNN, NotebookCNN, build_model, count_parameters


def logits(model: nn.Module, size: int, batch: int = 3) -> torch.Tensor:
    with torch.inference_mode():
        return model.eval()(torch.rand(batch, 1, size, size))


@pytest.mark.parametrize("size", [16, 28])
def test_notebook_cnn_shapes_and_parameters(size):
    model = NotebookCNN(16, 32, size)
    assert logits(model, size).shape == (3, 10)
    side = size // 4
    # conv 5x5 1->16, conv 5x5 16->32 (weights + biases), linear 32*side*side -> 10
    expected = (25 * 16 + 16) + (25 * 16 * 32 + 32) + (32 * side * side * 10 + 10)
    assert count_parameters(model) == expected
    assert count_parameters(NotebookCNN(16, 32, 16)) == 18_378  # the notebook's model


@pytest.mark.parametrize("size", [16, 28])
def test_bn3_shapes_and_parameters(size):
    model = BN3CNN(32, 64, size)
    assert logits(model, size).shape == (3, 10)
    assert logits(model, size, batch=1).shape == (1, 10)  # eval mode: BN uses running stats
    side = size // 8
    convs = 9 * 32 + 9 * 32 * 64 + 9 * 64 * 128  # 3x3, no bias (batch-norm shifts instead)
    norms = 2 * (32 + 64 + 128)
    head = 128 * side * side * 10 + 10
    assert count_parameters(model) == convs + norms + head
    assert 50_000 < count_parameters(model) < 200_000  # small: ~0.4 MB of weights


def test_bn3_trains_in_train_mode_and_normalises_per_batch():
    model = BN3CNN(8, 16, 28).train()
    out = model(torch.rand(4, 1, 28, 28))
    out.sum().backward()
    assert out.shape == (4, 10)
    assert all(p.grad is not None for p in model.parameters())
    bn = model.features[0][2]
    assert isinstance(bn, nn.BatchNorm2d) and int(bn.num_batches_tracked) == 1


def test_channels_last_changes_nothing_but_layout():
    torch.manual_seed(0)
    model = BN3CNN(8, 16, 28).eval()
    x = torch.rand(5, 1, 28, 28)
    with torch.inference_mode():
        plain = model(x)
        model = model.to(memory_format=torch.channels_last)
        fast = model(x.contiguous(memory_format=torch.channels_last))
    assert torch.allclose(plain, fast, atol=1e-5)


@pytest.mark.parametrize(("arch", "kind"), [("notebook", NotebookCNN), ("bn3", BN3CNN)])
@pytest.mark.parametrize("size", [16, 28])
def test_build_model_follows_the_config(arch, kind, size):
    cfg = TrainConfig(arch=arch, image_size=size, conv1=8, conv2=12)
    model = build_model(cfg)
    assert type(model) is kind
    assert logits(model, size).shape == (3, 10)
    first = next(m for m in model.modules() if isinstance(m, nn.Conv2d))
    assert first.out_channels == 8


def test_presets_build_their_architectures():
    assert type(build_model(preset("seed"))) is NotebookCNN
    strong = build_model(preset("strong"))
    assert type(strong) is BN3CNN
    assert logits(strong, preset("strong").image_size).shape == (3, 10)
