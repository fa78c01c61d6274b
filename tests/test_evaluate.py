"""Confusion matrix, per-class metrics and the images behind a cell, against hand-built cases."""

from __future__ import annotations

import pytest
import torch

from fmnist_core.data import CLASSES
from fmnist_core.evaluate import (
    accuracy,
    cell_images,
    cell_indices,
    confusion_matrix,
    enlarge,
    evaluate_tensors,
    per_class_metrics,
    row_rates,
    top_confusions,
    top_k,
)

# 10 images of classes 0-2: true 0 -> 0,0,0,1 ; true 1 -> 1,1,0 ; true 2 -> 2,1,1
LABELS = torch.tensor([0, 0, 0, 0, 1, 1, 1, 2, 2, 2])
PREDS = torch.tensor([0, 0, 0, 1, 1, 1, 0, 2, 1, 1])


def test_confusion_matrix_counts_rows_true_columns_predicted() -> None:
    cm = confusion_matrix(LABELS, PREDS)
    assert cm.shape == (10, 10)
    assert cm[:3, :3].tolist() == [[3, 1, 0], [1, 2, 0], [0, 2, 1]]
    assert int(cm.sum()) == 10 and int(cm[3:].sum() + cm[:, 3:].sum()) == 0
    assert accuracy(cm) == pytest.approx(6 / 10)


@pytest.mark.parametrize(
    ("labels", "preds", "message"),
    [
        (torch.tensor([0, 12]), torch.tensor([0, 1]), "labels must be class numbers 0-9"),
        (torch.tensor([0, -1]), torch.tensor([0, 1]), "labels must be class numbers 0-9"),
        (torch.tensor([0, 1]), torch.tensor([0, 10]), "predictions must be class numbers"),
        (torch.tensor([0, 1]), torch.tensor([0]), "2 labels but 1 predictions"),
    ],
)
def test_confusion_matrix_refuses_classes_outside_0_to_9(labels, preds, message) -> None:
    with pytest.raises(ValueError, match=message):
        confusion_matrix(labels, preds)


def test_per_class_metrics_match_hand_computed_numbers() -> None:
    rows = per_class_metrics(confusion_matrix(LABELS, PREDS))
    # class 0: tp 3, predicted 4, actual 4; class 1: tp 2, predicted 5, actual 3;
    # class 2: tp 1, predicted 1, actual 3.
    expected = [(3 / 4, 3 / 4, 3 / 4, 4), (2 / 5, 2 / 3, 0.5, 3), (1.0, 1 / 3, 0.5, 3)]
    for row, (precision, recall, f1, support) in zip(rows, expected, strict=False):
        assert row["precision"] == pytest.approx(precision)
        assert row["recall"] == pytest.approx(recall)
        assert row["f1"] == pytest.approx(f1)
        assert row["support"] == support
    assert [row["class"] for row in rows] == list(CLASSES)
    # a class never seen nor predicted: zeros, not NaN
    assert rows[5] == {
        "class": CLASSES[5],
        "precision": 0.0,
        "recall": 0.0,
        "f1": 0.0,
        "support": 0,
    }


def test_row_rates_sum_to_one_and_keep_empty_rows_zero() -> None:
    rates = row_rates(confusion_matrix(LABELS, PREDS))
    assert rates[1, :3].tolist() == pytest.approx([1 / 3, 2 / 3, 0.0])
    assert rates[:3].sum(1).tolist() == pytest.approx([1.0, 1.0, 1.0])
    assert float(rates[7].sum()) == 0.0


def test_top_confusions_largest_off_diagonal_first() -> None:
    cm = confusion_matrix(LABELS, PREDS)
    assert top_confusions(cm, 5) == [(2, 1, 2), (0, 1, 1), (1, 0, 1)]
    assert top_confusions(cm, 1) == [(2, 1, 2)]
    assert top_confusions(torch.eye(10, dtype=torch.long) * 7) == []


def _probs() -> tuple[torch.Tensor, torch.Tensor]:
    """Labels and probabilities where the (1, 0) and (1, 1) cells have known confidences."""
    labels = torch.tensor([1, 1, 1, 1, 1, 0, 1, 1])
    probs = torch.full((8, 10), 0.0)
    conf = [(0, 0.6), (1, 0.7), (0, 0.9), (1, 0.4), (0, 0.75), (0, 0.8), (1, 0.7), (2, 0.5)]
    for i, (pred, p) in enumerate(conf):
        probs[i, pred] = p
        probs[i, (pred + 3) % 10] = 1 - p
    return labels, probs


def test_cell_indices_are_exactly_the_pair_most_confident_mistakes_first() -> None:
    labels, probs = _probs()
    # true 1, predicted 0: indices 0 (0.6), 2 (0.9), 4 (0.75); index 5 is a true 0
    assert cell_indices(labels, probs, 1, 0).tolist() == [2, 4, 0]
    assert cell_indices(labels, probs, 1, 2).tolist() == [7]
    assert cell_indices(labels, probs, 3, 4).tolist() == []


def test_cell_indices_diagonal_least_confident_first_ties_in_index_order() -> None:
    labels, probs = _probs()
    # true 1 predicted 1: indices 1 and 6 (both 0.7: index order); index 3 puts 0.6 on class 4
    assert probs[3].argmax() == 4
    assert cell_indices(labels, probs, 1, 1).tolist() == [1, 6]
    probs[6, 1], probs[6, 4] = 0.55, 0.45
    assert cell_indices(labels, probs, 1, 1).tolist() == [6, 1]


def test_top_k_names_and_probabilities_in_order() -> None:
    row = torch.tensor([0.05, 0.1, 0.6, 0.0, 0.0, 0.0, 0.25, 0.0, 0.0, 0.0])
    assert top_k(row, 3) == [
        ("Pullover", pytest.approx(0.6)),
        ("Shirt", pytest.approx(0.25)),
        ("Trouser", pytest.approx(0.1)),
    ]


def test_enlarge_is_nearest_neighbour() -> None:
    img = torch.tensor([[[1, 2], [3, 4]]], dtype=torch.uint8)
    big = enlarge(img, 3)
    assert big.shape == (1, 6, 6) and big.dtype == torch.uint8
    assert big[0, :3, :3].unique().tolist() == [1] and big[0, 3:, 3:].unique().tolist() == [4]


def test_cell_images_pages_through_the_cell_with_captions() -> None:
    labels, probs = _probs()
    images = torch.arange(8, dtype=torch.uint8).view(8, 1, 1).expand(8, 28, 28).contiguous()
    items, total = cell_images(labels, probs, images, 1, 0, start=1, count=5, scale=4)
    assert total == 3
    assert [item.index for item in items] == [4, 0]
    first = items[0]
    assert first.image.shape == (112, 112) and int(first.image[50, 50]) == 4  # image of index 4
    assert first.caption == "#4 · 75% sure"  # one short line; the rest is in the details
    assert first.details.startswith("Test image #4: true Trouser, predicted T-shirt/top (75%)")
    assert first.top3[0] == ("T-shirt/top", pytest.approx(0.75))
    assert first.top3_text.startswith("T-shirt/top 75%, Dress 25%")


class _LeftHalf(torch.nn.Module):
    """Logits from the left half of the image only: a mirror image gets other logits."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(4 * 2, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, 1, 4, 4)
        return self.lin(x[..., :2].flatten(1))


def test_flip_tta_averages_the_image_and_its_mirror() -> None:
    torch.manual_seed(0)
    model = _LeftHalf()
    x, y = torch.rand(5, 1, 4, 4), torch.tensor([0, 1, 2, 3, 4])
    with torch.no_grad():
        expected = (model(x).softmax(1) + model(x.flip(-1)).softmax(1)) / 2
    loss, acc, probs = evaluate_tensors(model, x, y, tta=True)
    assert torch.allclose(probs, expected, atol=1e-6)
    assert acc == (expected.argmax(1) == y).float().mean().item()
    assert loss == pytest.approx(-expected[torch.arange(5), y].log().mean().item(), rel=1e-5)
    plain = evaluate_tensors(model, x, y)[2]
    assert not torch.allclose(plain, probs)  # the mirror really was evaluated
    with torch.no_grad():
        assert torch.allclose(plain, model(x).softmax(1), atol=1e-6)
