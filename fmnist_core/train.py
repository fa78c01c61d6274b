"""The training loop, as a generator of small events: the loop reports, others display.

    stop = threading.Event()
    for event in train(preset("seed"), stop=stop):
        ...  # Started, BatchProgress (every batch), EpochEnd (every epoch), then one RunEnd

``RunEnd.status`` is "finished", "stopped" (the stop flag, honoured before every batch) or
"failed" (a non-finite or exploding loss, or any error, with a readable ``reason``). The
generator never raises for a training problem. Same config and seed on the same machine give
the same numbers.
"""

from __future__ import annotations

import functools
import logging
import math
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from fmnist_core.config import TrainConfig
from fmnist_core.data import Tensors, load_tensors, stratified_subset
from fmnist_core.evaluate import autocast, evaluate_tensors
from fmnist_core.events import BatchProgress, EpochEnd, Event, RunEnd, Started
from fmnist_core.model import build_model, count_parameters

# The events live in events.py (a log reader needs no torch); re-exported for old imports.
__all__ = [
    "BatchProgress",
    "EpochEnd",
    "Event",
    "RunEnd",
    "Started",
    "evaluate_tensors",
    "train",
]

log = logging.getLogger(__name__)
# A batch loss this far above chance (ln 10 = 2.3) means the weights blew up: a healthy run
# never puts e^-230 on the true class on average. Adam at lr 1 spikes to ~4e4, then collapses.
DIVERGED_LOSS = 100 * math.log(10)
LOWER_LR = " - lower the learning rate"


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' was asked for but no CUDA GPU is available; use 'auto'")
    return torch.device(name)


def make_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    params = model.parameters()
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "momentum":
        return torch.optim.SGD(
            params, lr=cfg.lr, momentum=cfg.momentum, nesterov=True, weight_decay=cfg.weight_decay
        )
    betas = (cfg.momentum, 0.999)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, betas=betas, weight_decay=cfg.weight_decay)
    return torch.optim.Adam(params, lr=cfg.lr, betas=betas, weight_decay=cfg.weight_decay)


def augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Random horizontal flips and shifts of up to 2 pixels, per image, on tensors."""
    b, _, h, w = x.shape
    flip = torch.rand(b, generator=gen) < 0.5
    x = torch.where(flip.view(b, 1, 1, 1).to(x.device), x.flip(-1), x)
    padded = F.pad(x, (2, 2, 2, 2))[:, 0]  # (B, H+4, W+4); the images have one channel
    dy, dx = (torch.randint(0, 5, (2, b), generator=gen)).to(x.device)
    rows = (dy[:, None] + torch.arange(h, device=x.device))[:, :, None]  # (B, H, 1)
    cols = (dx[:, None] + torch.arange(w, device=x.device))[:, None, :]  # (B, 1, W)
    batch = torch.arange(b, device=x.device)[:, None, None]
    return padded[batch, rows, cols].unsqueeze(1)  # (B, 1, H, W)


@functools.cache
def bf16_is_fast(device_type: str) -> bool:
    """Whether bf16 autocast speeds training up here: a CUDA GPU with bf16, or a CPU with
    AVX512-BF16 / AMX instructions. Elsewhere bf16 is emulated (slower than fp32)."""
    if device_type == "cuda":
        return torch.cuda.is_bf16_supported()
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:  # not Linux: no cheap way to know, stay with fp32
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def train(
    cfg: TrainConfig,
    tensors: Tensors | None = None,
    stop: threading.Event | None = None,
    data_dir: str | None = None,
) -> Iterator[Event]:
    """Train ``cfg``; yields events, ending with exactly one ``RunEnd``."""
    t0 = time.perf_counter()
    state = {"epochs_done": 0, "acc": None}
    try:
        yield from _train(cfg, tensors, stop or threading.Event(), data_dir, t0, state)
    except Exception as exc:  # noqa: BLE001 - reported as a failed run, logged in full
        log.exception("training failed")
        reason = str(exc) or type(exc).__name__
        yield RunEnd("failed", reason, state["epochs_done"], state["acc"], _since(t0))


def _use_amp(cfg: TrainConfig, device: torch.device) -> bool:
    """cfg.amp where bf16 is fast; elsewhere fp32 (emulated bf16 would be slower)."""
    if cfg.amp and not bf16_is_fast(device.type):
        log.info("amp asked for, but bf16 is not fast on this %s: training in fp32", device)
        return False
    return cfg.amp


def _since(t0: float) -> float:
    return time.perf_counter() - t0


@dataclass
class _Setup:
    """Everything one training needs, on its device."""

    cfg: TrainConfig
    device: torch.device
    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler | None
    amp: bool
    gen: torch.Generator  # shuffling and augmentation
    batches: int  # per epoch
    source: str  # where the data came from


def _prepare(cfg: TrainConfig, tensors: Tensors | None, data_dir: str | None) -> _Setup:
    device = resolve_device(cfg.device)
    tensors = tensors or load_tensors(cfg.image_size, data_dir)
    idx = stratified_subset(tensors.train_y, cfg.train_subset, cfg.seed)
    torch.manual_seed(cfg.seed)
    # channels_last: same maths, ~30% faster convolutions on this kind of CPU.
    model = build_model(cfg).to(device, memory_format=torch.channels_last)
    optimizer = make_optimizer(model, cfg)
    batches = math.ceil(len(idx) / cfg.batch_size)
    scheduler = None
    if cfg.schedule == "onecycle":
        scheduler = torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=cfg.lr, total_steps=cfg.epochs * batches
        )
    return _Setup(
        cfg, device, tensors.train_x[idx].to(device), tensors.train_y[idx].to(device),
        tensors.test_x.to(device), tensors.test_y.to(device), model, optimizer, scheduler,
        _use_amp(cfg, device), torch.Generator().manual_seed(cfg.seed), batches, tensors.source,
    )  # fmt: skip


def _step(run: _Setup, take: torch.Tensor) -> float:
    """One SGD step on the images ``take``; returns the batch loss. A diverged loss (see
    ``_diverged``) is returned without updating the weights."""
    x = run.train_x[take]
    if run.cfg.augment:
        x = augment(x, run.gen)
    with autocast(run.device, run.amp):
        logits = run.model(x.contiguous(memory_format=torch.channels_last))
        loss = F.cross_entropy(logits, run.train_y[take], label_smoothing=run.cfg.label_smoothing)
    run.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    loss_value = loss.item()
    if not _diverged(loss_value):
        run.optimizer.step()
        if run.scheduler:
            run.scheduler.step()
    return loss_value


def _diverged(loss_value: float) -> bool:
    return not math.isfinite(loss_value) or loss_value > DIVERGED_LOSS


def _train(cfg, tensors, stop, data_dir, t0, state) -> Iterator[Event]:
    run = _prepare(cfg, tensors, data_dir)
    n, batches = len(run.train_y), run.batches
    where = f"{run.device} (bf16)" if run.amp else str(run.device)
    yield Started(where, n, len(run.test_y), batches, count_parameters(run.model), run.source)
    step, train_time = 0, 0.0
    for epoch in range(1, cfg.epochs + 1):
        run.model.train()
        epoch_t0 = time.perf_counter()
        order = torch.randperm(n, generator=run.gen).to(run.device)
        cost = 0.0
        for b in range(batches):
            if stop.is_set():
                yield RunEnd("stopped", "stopped by the user", epoch - 1, state["acc"], _since(t0))
                return
            loss_value = _step(run, order[b * cfg.batch_size : (b + 1) * cfg.batch_size])
            if _diverged(loss_value):
                reason = f"diverged at epoch {epoch}, batch {b + 1} (loss {loss_value})"
                yield RunEnd("failed", reason + LOWER_LR, epoch - 1, state["acc"], _since(t0))
                return
            cost += loss_value
            step += 1
            seconds = train_time + time.perf_counter() - epoch_t0
            rate = step / seconds if seconds > 0 else 0.0
            yield BatchProgress(
                epoch, b + 1, batches, loss_value, rate * cfg.batch_size,
                (cfg.epochs * batches - step) / rate if rate else 0.0, _since(t0),
            )  # fmt: skip
        train_time += time.perf_counter() - epoch_t0
        val_loss, val_acc, probs = evaluate_tensors(
            run.model, run.test_x, run.test_y, run.amp, tta=cfg.tta
        )
        if not math.isfinite(val_loss):  # the last update overflowed: never save NaN weights
            reason = f"diverged at epoch {epoch} (validation loss {val_loss})"
            yield RunEnd("failed", reason + LOWER_LR, epoch - 1, state["acc"], _since(t0))
            return
        weights = {k: v.detach().cpu().clone() for k, v in run.model.state_dict().items()}
        state.update(epochs_done=epoch, acc=val_acc)
        yield EpochEnd(
            epoch, cfg.epochs, cost, cost / batches, val_loss, val_acc,
            time.perf_counter() - epoch_t0, _since(t0), probs, weights,
        )  # fmt: skip
    yield RunEnd("finished", "", cfg.epochs, state["acc"], _since(t0))
