"""How a run learned, read from its saved per-epoch files: no retraining.

    correct = correctness(preds, labels)              # (E, N) bool from each epoch's argmax
    tl = timeline(correct, epochs)                    # learned at / forgotten / never learned
    flips(correct, labels)                            # per epoch: right->wrong, wrong->right
    feats = penultimate_features(model, x)            # (N, D): the head's input
    basis = pca_basis(final_feats); project(feats, basis)   # every epoch on the same axes
    reliability(conf, right); ece(conf, right)        # calibration (Guo et al. 2017)
    fit_temperature(probs, labels)                    # T minimising the NLL of held-out rows

"Learned at" is the first epoch from which an image stays correct to the last epoch; an
image wrong at the last epoch has none (-1). "Forgotten" counts right -> wrong transitions
between consecutive saved epochs (Toneva et al. 2019). "Never learned": wrong at every epoch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from fmnist_core.data import NUM_CLASSES, stratified_subset
from fmnist_core.runs import Run
from fmnist_core.threads import one_thread

NOT_LEARNED = -1  # learned_at of an image wrong at the last epoch
BINS = 15  # reliability bins of equal width over [0, 1] (Guo et al. use 15)
_TINY = 1e-7  # float16 probabilities can be 0: log(0) would be -inf


@dataclass(frozen=True)
class Timeline:
    epochs: tuple[int, ...]
    learned_at: np.ndarray  # (N,) epoch number, NOT_LEARNED if wrong at the last epoch
    forgotten: np.ndarray  # (N,) right -> wrong transitions
    never: np.ndarray  # (N,) bool: wrong at every epoch


def correctness(preds: np.ndarray | torch.Tensor, labels: np.ndarray | torch.Tensor) -> np.ndarray:
    """(E, N) predicted classes and (N,) labels -> (E, N) bool."""
    return np.asarray(preds) == np.asarray(labels)[None, :]


def timeline(correct: np.ndarray, epochs: Sequence[int]) -> Timeline:
    """Learned-at, forgotten count and never-learned of each image from (E, N) correctness."""
    correct = np.asarray(correct, dtype=bool)
    if correct.ndim != 2 or len(correct) != len(epochs) or len(epochs) == 0:
        raise ValueError("correctness needs one row per epoch and at least one epoch")
    # stays[e]: right at e and at every later epoch (a reversed cumulative AND)
    stays = np.logical_and.accumulate(correct[::-1], axis=0)[::-1]
    first = np.argmax(stays, axis=0)  # the first True; 0 where there is none
    learned_at = np.where(stays[-1], np.asarray(epochs)[first], NOT_LEARNED)
    forgotten = (correct[:-1] & ~correct[1:]).sum(axis=0)
    return Timeline(tuple(int(e) for e in epochs), learned_at, forgotten, ~correct.any(axis=0))


def flips(correct: np.ndarray, labels: np.ndarray) -> dict[str, np.ndarray]:
    """Per epoch after the first: right->wrong ("forgot") and wrong->right ("learned") counts,
    in total (E-1,) and per true class (E-1, 10)."""
    correct = np.asarray(correct, dtype=bool)
    labels = np.asarray(labels)
    forgot = correct[:-1] & ~correct[1:]
    learned = ~correct[:-1] & correct[1:]
    onehot = np.eye(NUM_CLASSES, dtype=np.int64)[labels]  # (N, 10)
    return {
        "forgot": forgot.sum(axis=1),
        "learned": learned.sum(axis=1),
        "forgot_per_class": forgot.astype(np.int64) @ onehot,
        "learned_per_class": learned.astype(np.int64) @ onehot,
    }


def learned_at_counts(tl: Timeline, labels: np.ndarray) -> np.ndarray:
    """(10, E + 1) image counts per true class: learned at each epoch, then not learned."""
    columns = [*tl.epochs, NOT_LEARNED]
    out = np.zeros((NUM_CLASSES, len(columns)), dtype=np.int64)
    for j, epoch in enumerate(columns):
        out[:, j] = np.bincount(np.asarray(labels)[tl.learned_at == epoch], minlength=NUM_CLASSES)
    return out


def galleries(tl: Timeline, limit: int = 24) -> dict[str, np.ndarray]:
    """Test indices: never learned, most forgotten (more first), learned last (latest first)."""
    forgotten = np.flatnonzero(tl.forgotten > 0)
    forgotten = forgotten[np.argsort(-tl.forgotten[forgotten], kind="stable")]
    learned = np.flatnonzero(tl.learned_at != NOT_LEARNED)
    late = learned[np.argsort(-tl.learned_at[learned], kind="stable")]
    late = late[tl.learned_at[late] > tl.epochs[0]]  # learned at the first epoch is not "late"
    return {
        "never": np.flatnonzero(tl.never)[:limit],
        "forgotten": forgotten[:limit],
        "late": late[:limit],
    }


def disagreements(right_a: np.ndarray, right_b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Indices one run gets right and the other wrong: (only a right, only b right)."""
    right_a, right_b = np.asarray(right_a, bool), np.asarray(right_b, bool)
    return np.flatnonzero(right_a & ~right_b), np.flatnonzero(right_b & ~right_a)


# --- feature space ---------------------------------------------------------------------


@torch.no_grad()
def penultimate_features(model: nn.Module, x: torch.Tensor, batch: int = 1000) -> torch.Tensor:
    """The head's input ``features(x).flatten(1)`` (N, D) float32 for images (N, 1, S, S)."""
    device = next(model.parameters()).device
    parts = [model.features(chunk.to(device)).flatten(1).float().cpu() for chunk in x.split(batch)]
    return torch.cat(parts)


@dataclass(frozen=True)
class Basis:
    mean: torch.Tensor  # (D,)
    components: torch.Tensor  # (D, 2), orthonormal columns, sign fixed


def pca_basis(features: torch.Tensor, k: int = 2, seed: int = 0) -> Basis:
    """The top-``k`` principal directions (torch.pca_lowrank, seeded so it is repeatable).

    Each direction's sign is fixed (its largest entry positive): PCA leaves it arbitrary, and
    a flipped axis between two calls would look like the clusters jumped."""
    features = features.float()
    q = min(k + 4, *features.shape)  # a few extra directions make the randomised SVD accurate
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        _, _, v = torch.pca_lowrank(features, q=q, center=True, niter=4)
    v = v[:, :k]
    signs = torch.sign(v.gather(0, v.abs().argmax(0, keepdim=True)))
    return Basis(features.mean(0), v * torch.where(signs == 0, 1.0, signs))


def project(features: torch.Tensor, basis: Basis) -> np.ndarray:
    """(N, D) features -> (N, k) coordinates on ``basis``."""
    return ((features.float() - basis.mean) @ basis.components).numpy()


# --- calibration ------------------------------------------------------------------------


def confidence(probs: torch.Tensor, labels: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """(max probability, whether the argmax is the label) per row."""
    conf, pred = probs.float().max(dim=1)
    return conf.numpy(), (pred == labels).numpy()


def reliability(conf: np.ndarray, right: np.ndarray, bins: int = BINS) -> dict[str, np.ndarray]:
    """Per equal-width confidence bin: count, mean confidence, accuracy (NaN where empty)."""
    conf, right = np.asarray(conf, float), np.asarray(right, float)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(conf, edges[1:-1], right=True), 0, bins - 1)
    count = np.bincount(which, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = np.bincount(which, conf, minlength=bins) / count
        acc = np.bincount(which, right, minlength=bins) / count
    return {"edges": edges, "count": count, "confidence": mean_conf, "accuracy": acc}


def ece(conf: np.ndarray, right: np.ndarray, bins: int = BINS) -> float:
    """Expected calibration error: the count-weighted mean |accuracy - confidence| of bins."""
    r = reliability(conf, right, bins)
    used = r["count"] > 0
    gaps = np.abs(r["accuracy"][used] - r["confidence"][used])
    return float((r["count"][used] * gaps).sum() / max(1, r["count"].sum()))


def confidence_histogram(conf: np.ndarray, right: np.ndarray, bins: int = 20) -> dict:
    """Counts of right and of wrong predictions per confidence bin."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    right = np.asarray(right, bool)
    return {
        "edges": edges,
        "right": np.histogram(conf[right], edges)[0],
        "wrong": np.histogram(conf[~right], edges)[0],
    }


def most_confident_wrong(conf: np.ndarray, right: np.ndarray, limit: int = 24) -> np.ndarray:
    wrong = np.flatnonzero(~np.asarray(right, bool))
    return wrong[np.argsort(-np.asarray(conf)[wrong], kind="stable")][:limit]


def scale_probs(probs: torch.Tensor, temperature: float) -> torch.Tensor:
    """Softmax(log p / T): temperature scaling of saved probabilities (log p are the logits
    up to a per-row constant, which softmax ignores)."""
    return torch.softmax(probs.float().clamp_min(_TINY).log() / temperature, dim=1)


def _nll(shifted: np.ndarray, gap: np.ndarray, log_t: float) -> float:
    """Mean NLL of softmax(log p / T), from ``shifted`` = log p - its row maximum (<= 0) and
    ``gap`` = row maximum - log p[label] (>= 0): no max per call, float32 numpy."""
    inv_t = np.float32(np.exp(-log_t))
    return float((np.log(np.exp(shifted * inv_t).sum(axis=1)) + gap * inv_t).mean())


def fit_temperature(probs: torch.Tensor, labels: torch.Tensor) -> float:
    """The T in [0.01, 100] minimising the mean NLL of softmax(log p / T): a golden-section
    search on log T (the NLL is convex in 1/T, so it has one minimum)."""
    logp = probs.float().clamp_min(_TINY).log().numpy()
    top = logp.max(axis=1)
    shifted, gap = logp - top[:, None], top - logp[np.arange(len(logp)), labels.numpy()]
    lo, hi = np.log(0.01), np.log(100.0)  # wide: a barely trained net needs T << 1
    g = (np.sqrt(5) - 1) / 2
    a, b = hi - g * (hi - lo), lo + g * (hi - lo)
    fa, fb = _nll(shifted, gap, a), _nll(shifted, gap, b)
    for _ in range(32):  # the bracket (9.2 in log T) shrinks by 0.618 a step: to ~2e-6
        if fa < fb:
            hi, b, fb = b, a, fa
            a = hi - g * (hi - lo)
            fa = _nll(shifted, gap, a)
        else:
            lo, a, fa = a, b, fb
            b = lo + g * (hi - lo)
            fb = _nll(shifted, gap, b)
    return float(np.exp((lo + hi) / 2))


def calibration_split(labels: torch.Tensor, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A fixed stratified half of the test set to fit T on, and the other half to judge it."""
    fit = stratified_subset(labels, len(labels) // 2, seed=seed)
    rest = torch.ones(len(labels), dtype=torch.bool)
    rest[fit] = False
    return fit, rest.nonzero().flatten()


@dataclass(frozen=True)
class Calibration:
    temperature: float  # fitted on the fit half
    ece: float  # on the evaluation half, as saved
    ece_scaled: float  # on the evaluation half, after temperature scaling


def calibrate(
    probs: torch.Tensor,
    labels: torch.Tensor,
    split: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> Calibration:
    """Fit T on one stratified half of the rows and measure ECE on the other half
    (``split``: calibration_split(labels), computed here when not given)."""
    fit, held = split if split is not None else calibration_split(labels)
    t = fit_temperature(probs[fit], labels[fit])
    raw = ece(*confidence(probs[held], labels[held]))
    scaled = ece(*confidence(scale_probs(probs[held], t), labels[held]))
    return Calibration(t, raw, scaled)


# --- a run's saved files -> the views' inputs -------------------------------------------


@one_thread()
def run_predictions(run: Run) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(predicted class (E, N), confidence (E, N), labels (N,)) from every saved epoch."""
    labels = run.labels()
    preds, confs = [], []
    for epoch in run.epochs:
        conf, pred = run.probs(epoch).float().max(dim=1)
        preds.append(pred.numpy())
        confs.append(conf.numpy())
    return np.stack(preds), np.stack(confs), labels.numpy()


@one_thread()
def run_calibration(run: Run) -> list[Calibration]:
    """Temperature and held-out ECE (before and after) of every saved epoch."""
    labels = run.labels()
    split = calibration_split(labels)
    return [calibrate(run.probs(epoch), labels, split) for epoch in run.epochs]


def run_features(run: Run, epoch: int, x: torch.Tensor) -> torch.Tensor:
    """Penultimate features of ``x`` after ``epoch``. The freshly loaded model is switched to
    channels_last: the same maths, ~1.8x faster on this CPU (converting only the input is not)."""
    model = run.load_model(epoch).to(memory_format=torch.channels_last)
    with torch.inference_mode():
        return penultimate_features(model, x.contiguous(memory_format=torch.channels_last))


def feature_sample(labels: torch.Tensor, n: int = 2000) -> torch.Tensor:
    """The fixed stratified sample of test indices the feature view shows (all if fewer)."""
    return stratified_subset(labels, n, seed=0)


def aligned(coords: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """``coords`` scaled to the overall spread (RMS distance from the centre) of
    ``reference``: an early epoch's features are smaller or larger, not elsewhere."""
    spread = np.sqrt((coords**2).sum(1).mean())
    target = np.sqrt((reference**2).sum(1).mean())
    return coords * (target / spread if spread > 0 else 1.0)


def axis_ranges(reference: np.ndarray, pad: float = 0.15) -> tuple[tuple[float, float], ...]:
    """Fixed axis ranges around ``reference`` (N, 2): the final epoch's points, padded."""
    lo, hi = reference.min(0), reference.max(0)
    width = np.maximum(hi - lo, 1e-6)
    return tuple(
        (float(a - pad * w), float(b + pad * w)) for a, b, w in zip(lo, hi, width, strict=True)
    )
