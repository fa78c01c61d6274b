"""Evaluation from class probabilities: confusion matrix, per-class metrics, mistakes.

Everything here takes plain tensors (labels (N,), probabilities (N, 10)), so the pages can
work from a saved run's predictions without the model or the images.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from fmnist_core.data import CLASSES, NUM_CLASSES

# Images per forward pass when evaluating. Measured on the 2-core CPU (strong preset's model,
# bf16, 10,000 test images, one pass): 0.54 s in batches of 256 or 500, 0.69 s of 1000,
# 0.80 s of 2000, 0.85 s of 5000 - small batches keep the activations in the cache.
EVAL_BATCH = 500


def autocast(device: torch.device, enabled: bool) -> torch.autocast:
    """bf16 mixed precision on ``device`` when ``enabled`` (no GradScaler needed for bf16)."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=enabled)


@torch.inference_mode()
def evaluate_tensors(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, amp: bool = False, tta: bool = False
) -> tuple:
    """(mean loss, accuracy, probabilities (N, 10) on the CPU) in large batches.

    ``tta``: flip test-time augmentation - the probabilities are the mean of the image's and
    its left-right mirror's (a model trained with random flips has seen both)."""
    was_training = model.training
    model.eval()
    losses, probs = 0.0, []
    for start in range(0, len(x), EVAL_BATCH):
        batch = x[start : start + EVAL_BATCH]
        with autocast(x.device, amp):
            logits = model(batch).float()
            mirrored = model(batch.flip(-1)).float() if tta else None
        p = logits.softmax(1)
        if mirrored is None:
            nll = F.cross_entropy(logits, y[start : start + EVAL_BATCH], reduction="sum")
        else:
            p = (p + mirrored.softmax(1)) / 2
            nll = F.nll_loss(
                p.clamp_min(1e-30).log(), y[start : start + EVAL_BATCH], reduction="sum"
            )
        losses += nll.item()
        probs.append(p.cpu())
    model.train(was_training)
    p = torch.cat(probs)
    acc = (p.argmax(1) == y.cpu()).float().mean().item()
    return losses / len(x), acc, p


def predict_probs(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """Class probabilities (N, 10) for float images (N, 1, S, S), in large batches."""
    dummy = torch.zeros(len(images), dtype=torch.long)
    device = next(model.parameters()).device
    return evaluate_tensors(model, images.to(device), dummy.to(device))[2]


def confusion_matrix(labels: torch.Tensor, preds: torch.Tensor) -> torch.Tensor:
    """(10, 10) int64 counts; row = true class, column = predicted class.

    Raises ValueError (not a bincount shape error) for classes outside 0-9 or unequal lengths.
    """
    if len(labels) != len(preds):
        raise ValueError(f"{len(labels)} labels but {len(preds)} predictions")
    for name, values in (("labels", labels), ("predictions", preds)):
        if len(values) and (int(values.min()) < 0 or int(values.max()) >= NUM_CLASSES):
            raise ValueError(f"{name} must be class numbers 0-{NUM_CLASSES - 1}")
    flat = labels.long() * NUM_CLASSES + preds.long()
    return torch.bincount(flat, minlength=NUM_CLASSES**2).view(NUM_CLASSES, NUM_CLASSES)


def accuracy(cm: torch.Tensor) -> float:
    total = int(cm.sum())
    return float(cm.trace()) / total if total else 0.0


def per_class_metrics(cm: torch.Tensor) -> list[dict[str, float | str | int]]:
    """One row per class: precision, recall, F1 and support (true count); 0 when undefined."""
    cm = cm.double()
    tp = cm.diag()
    predicted, actual = cm.sum(0), cm.sum(1)
    precision = torch.where(predicted > 0, tp / predicted.clamp(min=1), 0.0)
    recall = torch.where(actual > 0, tp / actual.clamp(min=1), 0.0)
    denom = precision + recall
    f1 = torch.where(denom > 0, 2 * precision * recall / denom.clamp(min=1e-12), 0.0)
    return [
        {
            "class": CLASSES[i],
            "precision": float(precision[i]),
            "recall": float(recall[i]),
            "f1": float(f1[i]),
            "support": int(actual[i]),
        }
        for i in range(NUM_CLASSES)
    ]


def top_confusions(cm: torch.Tensor, k: int = 5) -> list[tuple[int, int, int]]:
    """The ``k`` largest off-diagonal cells as (true, predicted, count), count > 0."""
    off = cm.clone()
    off.fill_diagonal_(0)
    counts, flat = off.flatten().sort(descending=True)
    return [
        (int(i) // NUM_CLASSES, int(i) % NUM_CLASSES, int(c))
        for c, i in zip(counts[:k], flat[:k], strict=True)
        if c > 0
    ]


def cell_indices(labels: torch.Tensor, probs: torch.Tensor, true: int, pred: int) -> torch.Tensor:
    """Test indices with this (true, predicted) pair, ordered for inspection.

    Off the diagonal: most confident mistakes first. On the diagonal: the least confident
    correct predictions first (the borderline cases). Ties keep index order.
    """
    predicted = probs.argmax(1)
    idx = ((labels == true) & (predicted == pred)).nonzero().flatten()
    confidence = probs[idx, pred]
    order = torch.argsort(confidence, descending=(true != pred), stable=True)
    return idx[order]


def top_k(probs: torch.Tensor, k: int = 3) -> list[tuple[str, float]]:
    """The ``k`` most likely classes of one probability row, as (name, probability)."""
    values, classes = probs.topk(k)
    return [(CLASSES[int(c)], float(v)) for v, c in zip(values, classes, strict=True)]


def row_rates(cm: torch.Tensor) -> torch.Tensor:
    """Row-normalised matrix (float64): each row sums to 1, an empty row stays 0."""
    cm = cm.double()
    return cm / cm.sum(1, keepdim=True).clamp(min=1)


def enlarge(images: torch.Tensor, scale: int) -> torch.Tensor:
    """Nearest-neighbour upscaling of (..., H, W) images: every pixel becomes scale x scale."""
    return images.repeat_interleave(scale, -2).repeat_interleave(scale, -1)


@dataclass(frozen=True)
class CellImage:
    """One test image behind a confusion-matrix cell, ready to show."""

    index: int  # position in the test set
    image: torch.Tensor  # (28 * scale, 28 * scale) uint8
    true: str
    pred: str
    prob: float  # the model's probability of ``pred``
    top3: tuple[tuple[str, float], ...]

    @property
    def caption(self) -> str:
        """One short line under the image (its cell's classes are in the gallery's heading)."""
        return f"#{self.index} · {self.prob:.0%} sure"

    @property
    def details(self) -> str:
        """Everything else about it, for a tooltip."""
        return (f"Test image #{self.index}: true {self.true}, predicted {self.pred} "
                f"({self.prob:.0%}). Top-3: {self.top3_text}.")  # fmt: skip

    @property
    def top3_text(self) -> str:
        return ", ".join(f"{name} {p:.0%}" for name, p in self.top3)


def cell_images(
    labels: torch.Tensor,
    probs: torch.Tensor,
    images: torch.Tensor,
    true: int,
    pred: int,
    start: int = 0,
    count: int = 24,
    scale: int = 4,
) -> tuple[list[CellImage], int]:
    """(up to ``count`` images of the cell from position ``start``, the cell's total).

    ``images`` are the test set's uint8 images (N, 28, 28), in the order of ``labels``.
    The order is ``cell_indices``'s: most confident mistakes / least confident hits first.
    """
    idx = cell_indices(labels, probs, true, pred)
    chosen = idx[start : start + count]
    big = enlarge(images[chosen], scale)
    items = [
        CellImage(
            index=int(i),
            image=big[n],
            true=CLASSES[true],
            pred=CLASSES[pred],
            prob=float(probs[i, pred]),
            top3=tuple(top_k(probs[i], 3)),
        )
        for n, i in enumerate(chosen.tolist())
    ]
    return items, len(idx)
