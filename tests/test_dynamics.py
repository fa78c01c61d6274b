"""Known answers for fmnist_core.dynamics: hand-made prediction sequences, a perfectly
calibrated synthetic set, data with a known principal direction."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from fmnist_core import TrainConfig, build_model
from fmnist_core.dynamics import (
    NOT_LEARNED,
    aligned,
    axis_ranges,
    calibrate,
    calibration_split,
    confidence,
    confidence_histogram,
    correctness,
    disagreements,
    ece,
    fit_temperature,
    flips,
    galleries,
    learned_at_counts,
    most_confident_wrong,
    pca_basis,
    penultimate_features,
    project,
    reliability,
    run_calibration,
    run_predictions,
    scale_probs,
    timeline,
)
from fmnist_core.runs import load_run
from tests.fake_runs import make_run

# Five images over four epochs (1 = right). Known by hand:
#   0: learned at 1, never forgotten        1: learned at 3, forgotten once (right at 1 only)
#   2: never right -> never learned
#   3: right, wrong, right, wrong -> forgotten twice, not learned
#   4: learned at 4 (right only at the last epoch)
CORRECT = np.array(
    [[1, 1, 0, 1, 0],
     [1, 0, 0, 0, 0],
     [1, 1, 0, 1, 0],
     [1, 1, 0, 0, 1]], dtype=bool)  # fmt: skip
EPOCHS = (1, 2, 3, 4)


def test_timeline_known_sequence() -> None:
    tl = timeline(CORRECT, EPOCHS)
    assert tl.learned_at.tolist() == [1, 3, NOT_LEARNED, NOT_LEARNED, 4]
    assert tl.forgotten.tolist() == [0, 1, 0, 2, 0]
    assert tl.never.tolist() == [False, False, True, False, False]


def test_timeline_from_predictions_and_epoch_numbers() -> None:
    labels = np.array([3, 5])
    preds = np.array([[3, 0], [0, 5], [3, 5]])  # image 0: right, wrong, right; image 1: learned 4
    tl = timeline(correctness(preds, labels), (2, 4, 6))  # saved epochs need not start at 1
    assert tl.learned_at.tolist() == [6, 4]
    assert tl.forgotten.tolist() == [1, 0]


def test_timeline_rejects_mismatched_epochs() -> None:
    with pytest.raises(ValueError, match="one row per epoch"):
        timeline(CORRECT, (1, 2))


def test_flips_per_epoch_and_class() -> None:
    labels = np.array([0, 1, 1, 2, 9])
    f = flips(CORRECT, labels)
    # epoch 2: images 1 and 3 forgotten; epoch 3: 1 and 3 learned; epoch 4: 3 forgot, 4 learned
    assert f["forgot"].tolist() == [2, 0, 1]
    assert f["learned"].tolist() == [0, 2, 1]
    assert f["forgot_per_class"][0].tolist() == [0, 1, 1, 0, 0, 0, 0, 0, 0, 0]
    assert f["learned_per_class"][2].tolist() == [0, 0, 0, 0, 0, 0, 0, 0, 0, 1]
    assert f["forgot_per_class"].sum() == CORRECT[:-1].sum() - (CORRECT[:-1] & CORRECT[1:]).sum()


def test_learned_at_counts_and_galleries() -> None:
    labels = np.array([0, 1, 1, 2, 9])
    tl = timeline(CORRECT, EPOCHS)
    counts = learned_at_counts(tl, labels)  # columns: epochs 1..4, then not learned
    assert counts.shape == (10, 5)
    assert counts[0].tolist() == [1, 0, 0, 0, 0]
    assert counts[1].tolist() == [0, 0, 1, 0, 1]  # image 1 at 3, image 2 never
    assert counts[2].tolist() == [0, 0, 0, 0, 1] and counts[9].tolist() == [0, 0, 0, 1, 0]
    g = galleries(tl)
    assert g["never"].tolist() == [2]
    assert g["forgotten"].tolist() == [3, 1]  # forgotten twice first
    assert g["late"].tolist() == [4, 1]  # learned at 4, then at 3 (not image 0: at epoch 1)


def test_disagreements() -> None:
    a, b = np.array([1, 1, 0, 0], bool), np.array([1, 0, 1, 0], bool)
    only_a, only_b = disagreements(a, b)
    assert only_a.tolist() == [1] and only_b.tolist() == [2]


def test_ece_of_a_perfectly_calibrated_set_is_near_zero() -> None:
    rng = np.random.default_rng(0)
    conf = rng.uniform(0.1, 1.0, 200_000)
    right = rng.uniform(size=conf.shape) < conf  # right with probability = confidence
    assert ece(conf, right) < 0.01


def test_ece_of_overconfident_set_is_the_gap() -> None:
    conf = np.full(1000, 0.95)
    right = np.arange(1000) < 650  # 65% accuracy at 95% confidence: gap 0.30
    assert ece(conf, right) == pytest.approx(0.30)
    r = reliability(conf, right)
    used = r["count"] > 0
    assert r["count"].sum() == 1000 and used.sum() == 1
    assert r["accuracy"][used][0] == pytest.approx(0.65)
    assert np.isnan(r["accuracy"][~used]).all()  # empty bins say so, not 0


def test_reliability_bins_include_edges() -> None:
    r = reliability(np.array([0.0, 1.0, 0.5]), np.array([False, True, True]), bins=2)
    assert r["count"].tolist() == [2, 1]  # 0.5 sits in the first bin (0, 0.5]; 1.0 in the last


def test_confidence_histogram_and_confident_mistakes() -> None:
    probs = torch.tensor([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.45, 0.55]])
    conf, right = confidence(probs, torch.tensor([0, 0, 0, 1]))
    assert right.tolist() == [True, False, True, True]
    h = confidence_histogram(conf, right, bins=10)
    assert h["right"].sum() == 3 and h["wrong"].sum() == 1 and h["wrong"][8] == 1
    assert most_confident_wrong(conf, right).tolist() == [1]


def _tempered(t_true: float, n: int = 20_000) -> tuple[torch.Tensor, torch.Tensor]:
    """Probabilities whose labels are drawn from softmax(z), saved as softmax(z * t_true): the
    temperature that calibrates them is t_true."""
    gen = torch.Generator().manual_seed(0)
    z = torch.randn(n, 10, generator=gen) * 2
    labels = torch.multinomial(torch.softmax(z, 1), 1, generator=gen).flatten()
    return torch.softmax(z * t_true, 1), labels


def test_fit_temperature_recovers_the_known_temperature() -> None:
    probs, labels = _tempered(2.5)
    assert fit_temperature(probs, labels) == pytest.approx(2.5, rel=0.05)
    scaled = scale_probs(probs, 2.5)
    assert ece(*confidence(scaled, labels)) < ece(*confidence(probs, labels)) / 3


def test_calibrate_fits_on_one_half_and_judges_the_other() -> None:
    labels = torch.arange(1000) % 10
    fit, held = calibration_split(labels)
    assert len(fit) == 500 and len(held) == 500
    assert not set(fit.tolist()) & set(held.tolist())
    assert torch.bincount(labels[fit]).tolist() == [50] * 10  # stratified
    probs, labels = _tempered(3.0, 4000)
    cal = calibrate(probs, labels)
    assert cal.temperature == pytest.approx(3.0, rel=0.1)
    assert cal.ece_scaled < cal.ece


def test_pca_finds_the_known_direction() -> None:
    gen = torch.Generator().manual_seed(0)
    direction = torch.zeros(20)
    direction[3], direction[7] = 0.6, -0.8  # unit length
    x = torch.randn(2000, 1, generator=gen) * 10 * direction + torch.randn(2000, 20, generator=gen)
    x += 5.0  # PCA centres first
    basis = pca_basis(x)
    first = basis.components[:, 0]
    assert abs(float(first @ direction)) > 0.99
    assert first[7] > 0  # sign fixed: the largest entry (|-0.8|) is positive
    assert torch.allclose(basis.components.T @ basis.components, torch.eye(2), atol=1e-4)
    coords = project(x, basis)
    assert coords.shape == (2000, 2) and abs(coords.mean(0)).max() < 1e-3
    assert coords[:, 0].std() > 5 * coords[:, 1].std()
    assert torch.equal(pca_basis(x).components, basis.components)  # repeatable


@pytest.mark.parametrize("arch", ["notebook", "bn3"])
def test_penultimate_features_are_the_heads_input(arch: str) -> None:
    model = build_model(TrainConfig(arch=arch, image_size=16)).eval()
    x = torch.rand(7, 1, 16, 16)
    feats = penultimate_features(model, x, batch=3)
    assert feats.shape[0] == 7 and feats.shape[1] == model.head.in_features
    with torch.no_grad():
        assert torch.allclose(model.head(feats), model(x), atol=1e-5)


def test_aligned_keeps_directions_and_matches_the_spread() -> None:
    reference = np.array([[2.0, 0.0], [-2.0, 0.0], [0.0, 2.0], [0.0, -2.0]])
    small = reference / 10
    assert np.allclose(aligned(small, reference), reference)
    assert np.allclose(aligned(np.zeros((3, 2)), reference), 0)  # no spread: left as is
    (x_lo, x_hi), (y_lo, y_hi) = axis_ranges(reference, pad=0.25)
    assert (x_lo, x_hi, y_lo, y_hi) == (-3.0, 3.0, -3.0, 3.0)


def test_run_files_to_predictions_and_calibration(runs_dir: Path) -> None:
    run = load_run(runs_dir / make_run(runs_dir, accs=(0.5, 0.8)))
    preds, conf, labels = run_predictions(run)
    assert (
        preds.shape == conf.shape == (2, 200) and labels.tolist() == (np.arange(200) % 10).tolist()
    )
    tl = timeline(correctness(preds, labels), run.epochs)
    assert (tl.learned_at == 1).sum() == 100 and (tl.learned_at == 2).sum() == 60
    assert np.allclose(conf, 0.9, atol=1e-3)
    cals = run_calibration(run)
    _, held = calibration_split(torch.from_numpy(labels))
    right_share = float((held < 100).float().mean())  # epoch 1: images 0-99 right, all at 0.9
    assert len(cals) == 2 and cals[0].ece == pytest.approx(0.9 - right_share, abs=1e-3)


def test_fit_temperature_sharpens_an_underconfident_net() -> None:
    probs, labels = _tempered(0.03, 5000)  # saved far too flat: T = 0.03 calibrates them
    assert fit_temperature(probs, labels) == pytest.approx(0.03, rel=0.1)  # below 0.05
