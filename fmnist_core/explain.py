"""Inside the network: activation maps, first-layer filters, Grad-CAM and saliency.

    expl = explain(model, tensor, classes=[top, other])   # one forward, one backward per class
    expl.probs          # (10,) class probabilities
    expl.activations    # per conv block: (C, h, w) maps, every channel
    expl.cams           # (len(classes), S, S) Grad-CAM per class, each scaled to [0, 1]
    first_filters(model)                                  # (C, k, k) kernels of the first conv
    saliency(model, tensor, cls)                          # (S, S) |d logit / d input|
    epoch_probabilities(models, tensor)                   # (E, 10): one row per saved epoch

Works on every architecture through ``model.features`` (conv blocks) and ``model.head``
(fmnist_core.model). The blocks are run one by one rather than observed with forward hooks:
a model cached by the app is shared by every session's thread, and a hook registered by one
explanation would fire (and write its captures) in another session's forward. Running the
parts in turn changes nothing in the model, and ``model(x) == head(features(x).flatten(1))``
is checked by the tests for each architecture.

Grad-CAM (Selvaraju et al., 2017): the class score's gradient with respect to the last
block's maps, averaged over each map, weights the maps; the ReLU of the weighted sum, scaled
to the input's size (bilinear) and to [0, 1], shows where the evidence for the class lies.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from fmnist_core.data import NUM_CLASSES
from fmnist_core.threads import one_thread


@dataclass(frozen=True)
class Explanation:
    probs: np.ndarray  # (10,) float32
    activations: list[np.ndarray]  # one (C, h, w) float32 array per conv block
    classes: tuple[int, ...]  # the classes of ``cams``, in order
    cams: np.ndarray  # (len(classes), S, S) float32 in [0, 1]


def _staged(model: nn.Module, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
    """(each block's output, logits) for ``x`` (B, 1, S, S): the model's forward, in parts."""
    maps = []
    for block in model.features:
        x = block(x)
        maps.append(x)
    return maps, model.head(x.flatten(1))


def _device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def _input(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``x`` on the model's device, as a leaf needing a gradient: the maps then have one
    even where the model's weights are frozen (requires_grad=False)."""
    return x.detach().to(_device(model)).clone().requires_grad_(True)


def _cam(maps: torch.Tensor, grads: torch.Tensor, size: int) -> torch.Tensor:
    """Grad-CAM of (B, C, h, w) maps and their gradients -> (B, size, size) in [0, 1]."""
    weights = grads.mean(dim=(2, 3), keepdim=True)  # (B, C, 1, 1)
    cam = torch.relu((weights * maps).sum(dim=1, keepdim=True))  # (B, 1, h, w)
    cam = F.interpolate(cam, size=(size, size), mode="bilinear", align_corners=False)[:, 0]
    top = cam.flatten(1).amax(dim=1).clamp_min(1e-12)[:, None, None]
    return cam / top  # an all-zero map (no evidence anywhere) stays zero


def grad_cam(
    model: nn.Module, x: torch.Tensor, classes: Sequence[int], block: int = -1
) -> torch.Tensor:
    """Grad-CAM maps (B, len(classes), S, S) in [0, 1] for inputs ``x`` (B, 1, S, S) at conv
    block ``block`` (default: the last). Batched: one forward for all inputs."""
    x = _input(model, x)
    with torch.enable_grad():
        maps, logits = _staged(model, x)
        target = maps[block]
        cams = []
        for i, cls in enumerate(classes):
            keep = i < len(classes) - 1  # the graph is needed again for the next class
            (grads,) = torch.autograd.grad(logits[:, cls].sum(), target, retain_graph=keep)
            cams.append(_cam(target.detach(), grads, x.shape[-1]))
    return torch.stack(cams, dim=1).cpu()


def explain(model: nn.Module, tensor: torch.Tensor, classes: Sequence[int]) -> Explanation:
    """Probabilities, every block's maps and Grad-CAM (last block) of ``classes`` for one
    input (1, 1, S, S): one forward pass and one backward pass per class."""
    if not classes:
        raise ValueError("explain needs at least one class for Grad-CAM")
    x = _input(model, tensor)
    with one_thread(), torch.enable_grad():
        maps, logits = _staged(model, x)
        cams = []
        for i, cls in enumerate(classes):
            keep = i < len(classes) - 1
            (grads,) = torch.autograd.grad(logits[0, cls], maps[-1], retain_graph=keep)
            cams.append(_cam(maps[-1].detach(), grads, x.shape[-1])[0])
    probs = torch.softmax(logits.detach(), dim=1)[0]
    return Explanation(
        probs=probs.float().cpu().numpy(),
        activations=[m.detach()[0].float().cpu().numpy() for m in maps],
        classes=tuple(int(c) for c in classes),
        cams=torch.stack(cams).float().cpu().numpy(),
    )


def first_filters(model: nn.Module) -> np.ndarray:
    """The first conv layer's kernels (C_out, k, k) (its input is one grey channel)."""
    conv = next(m for m in model.features.modules() if isinstance(m, nn.Conv2d))
    return conv.weight.detach()[:, 0].float().cpu().numpy()


def saliency(model: nn.Module, tensor: torch.Tensor, cls: int) -> np.ndarray:
    """|d logit[cls] / d input| (S, S) for one input (1, 1, S, S), scaled to [0, 1]."""
    x = _input(model, tensor)
    with one_thread(), torch.enable_grad():
        _, logits = _staged(model, x)
        (grad,) = torch.autograd.grad(logits[0, cls], x)
    grad = grad[0, 0].abs()
    return (grad / grad.max().clamp_min(1e-12)).float().cpu().numpy()


def epoch_probabilities(models: Sequence[nn.Module], tensor: torch.Tensor) -> np.ndarray:
    """Class probabilities (E, 10) of one input (1, 1, S, S) under each model (one per
    saved epoch, in order): how the answer for this image changed as the network learned."""
    rows = []
    with one_thread(), torch.inference_mode():
        for model in models:
            logits = model(tensor.to(_device(model)))
            rows.append(torch.softmax(logits, dim=1)[0].float().cpu())
    if not rows:
        return np.zeros((0, NUM_CLASSES), dtype=np.float32)
    return torch.stack(rows).numpy()
