"""Evaluation from class probabilities: confusion matrix, per-class metrics, mistakes.

Everything here takes plain tensors (labels (N,), probabilities (N, 10)), so the pages can
work from a saved run's predictions without the model or the images.
"""

from __future__ import annotations

import torch
from torch import nn

from fmnist_core.data import CLASSES, NUM_CLASSES
from fmnist_core.train import evaluate_tensors


def predict_probs(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """Class probabilities (N, 10) for float images (N, 1, S, S), in large batches."""
    dummy = torch.zeros(len(images), dtype=torch.long)
    device = next(model.parameters()).device
    return evaluate_tensors(model, images.to(device), dummy.to(device))[2]


def confusion_matrix(labels: torch.Tensor, preds: torch.Tensor) -> torch.Tensor:
    """(10, 10) int64 counts; row = true class, column = predicted class."""
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
