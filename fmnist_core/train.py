"""The training loop, as a generator of small events: the loop reports, others display.

    stop = threading.Event()
    for event in train(preset("seed"), stop=stop):
        ...  # Started, BatchProgress (every batch), EpochEnd (every epoch), then one RunEnd

    target = EpochTarget(cfg.epochs)             # another thread may raise it while it runs:
    events = train(cfg, stop=stop, epochs=target)
    target.extend()                              # "one more epoch": an Extended event, then
                                                 # the loop goes on to the new total

``RunEnd.status`` is "finished", "stopped" (the stop flag, honoured before every batch) or
"failed" (a non-finite or exploding loss, or any error, with a readable ``reason``). The
generator never raises for a training problem. Same config and seed on the same machine give
the same numbers.

Under torchrun, ``train(cfg, ctx=distributed.from_env())`` trains one model with
DistributedDataParallel (see distributed.py for how the work is split); every rank yields the
same events, but only rank 0's ``EpochEnd`` carries the predictions and weights.
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

from fmnist_core import distributed
from fmnist_core.config import RANGES, TrainConfig
from fmnist_core.data import Tensors, load_tensors, stratified_subset
from fmnist_core.distributed import Dist
from fmnist_core.evaluate import autocast, evaluate_tensors
from fmnist_core.events import BatchProgress, EpochEnd, Event, Extended, RunEnd, Started
from fmnist_core.model import build_model, count_parameters
from fmnist_core.sketchdraw import DrawingStopped, drawings_of, with_drawings

# The events live in events.py (a log reader needs no torch); re-exported for old imports.
__all__ = [
    "BatchProgress",
    "EpochEnd",
    "EpochTarget",
    "Event",
    "Extended",
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
MAX_EPOCHS = int(RANGES["epochs"][1])  # a config never holds more (config.json is rewritten)


class EpochTarget:
    """How many epochs a training aims at; another thread may raise it while it runs.

    The loop re-reads it before every batch (and reports a raise as an ``Extended`` event, so
    the run's record says the new total) and asks ``more_after`` at each epoch's end. Once the
    loop has decided that its last epoch is done, the target is closed: a late ``extend``
    returns None instead of being silently ignored.
    """

    def __init__(self, epochs: int, limit: int = MAX_EPOCHS) -> None:
        self._lock = threading.Lock()
        self._epochs, self.limit, self._closed = epochs, limit, False

    @property
    def epochs(self) -> int:
        return self._epochs

    def extend(self, n: int = 1) -> int | None:
        """Raise the target by ``n``; the new total, or None (closed, or over ``limit``)."""
        with self._lock:
            if self._closed or self._epochs + n > self.limit:
                return None
            self._epochs += n
            return self._epochs

    def close(self) -> None:
        with self._lock:
            self._closed = True

    def more_after(self, epoch: int) -> bool:
        """Whether an epoch follows ``epoch``; closes the target when none does."""
        with self._lock:
            self._closed = self._closed or epoch >= self._epochs
            return epoch < self._epochs


def why_not_extend(cfg: TrainConfig, epochs: int) -> str:
    """Why a run of ``cfg`` now aiming at ``epochs`` cannot get one more epoch; "" when it can."""
    if cfg.schedule == "onecycle":
        return "the one-cycle schedule plans its learning rate for the epochs set at the start"
    if epochs >= MAX_EPOCHS:
        return f"{MAX_EPOCHS} epochs is the most a run can have"
    return ""


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
    ctx: Dist | None = None,
    epochs: EpochTarget | None = None,
) -> Iterator[Event]:
    """Train ``cfg``; yields events, ending with exactly one ``RunEnd``.

    ``ctx``: this process's place in a torchrun group (``distributed.from_env()``); the group
    is joined here and left when the generator ends. ``epochs`` (default: ``cfg.epochs``,
    fixed) lets another thread raise the total while the training runs; the loop reports each
    raise as ``Extended`` before its next batch."""
    t0 = time.perf_counter()
    state = {"epochs_done": 0, "acc": None}
    target = epochs or EpochTarget(cfg.epochs)
    if why_not_extend(cfg, 0):  # onecycle: its schedule's steps are fixed at the start
        target.close()
    try:
        yield from _train(cfg, tensors, stop or threading.Event(), data_dir, t0, state, ctx, target)
    except Exception as exc:  # noqa: BLE001 - reported as a failed run, logged in full
        log.exception("training failed")
        reason = str(exc) or type(exc).__name__
        if ctx is not None and isinstance(exc, torch.distributed.DistError):
            reason = distributed.DIED.format(error=distributed.short(exc))
        yield RunEnd("failed", reason, state["epochs_done"], state["acc"], _since(t0))
    finally:  # stopped, failed or closed early: a late "one more epoch" is refused, not lost
        target.close()
        if ctx is not None:
            distributed.close()


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
    model: nn.Module  # what trains: the network, or DDP around it
    net: nn.Module  # the network itself (evaluation, weights)
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler | None
    amp: bool
    gen: torch.Generator  # shuffling (the same on every rank) and, single-process, augmentation
    aug_gen: torch.Generator  # augmentation: each rank its own
    batches: int  # per epoch
    source: str  # where the data came from
    ctx: Dist | None = None  # the torchrun group, joined (backend set); None: one process
    drawn: torch.Tensor | None = None  # uint8 (versions, N, 28, 28): the sketch preset's drawings


def _prepare(
    cfg: TrainConfig,
    tensors: Tensors | None,
    data_dir: str | None,
    ctx: Dist | None,
    stop: threading.Event | None = None,
) -> _Setup:
    device = distributed.device_for(ctx, cfg.device) if ctx else resolve_device(cfg.device)
    tensors = tensors or load_tensors(cfg.image_size, data_dir)
    idx = stratified_subset(tensors.train_y, cfg.train_subset, cfg.seed)
    torch.manual_seed(cfg.seed)  # the same initial weights on every rank
    # channels_last: same maths, ~30% faster convolutions on this kind of CPU.
    net = build_model(cfg).to(device, memory_format=torch.channels_last)
    model, gen = net, torch.Generator().manual_seed(cfg.seed)
    aug_gen = gen
    if ctx is not None:
        ctx = distributed.init(ctx, device)
        model = _wrap_ddp(net, ctx, device)
        aug_gen = torch.Generator().manual_seed(cfg.seed + 7919 * (ctx.rank + 1))
    optimizer = make_optimizer(model, cfg)
    batches = math.ceil(len(idx) / cfg.batch_size)
    scheduler = None
    if cfg.schedule == "onecycle":
        scheduler = torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=cfg.lr, total_steps=cfg.epochs * batches
        )
    return _Setup(
        cfg=cfg, device=device, train_x=tensors.train_x[idx].to(device),
        train_y=tensors.train_y[idx].to(device), test_x=tensors.test_x.to(device),
        test_y=tensors.test_y.to(device), model=model, net=net, optimizer=optimizer,
        scheduler=scheduler, amp=_use_amp(cfg, device), gen=gen, aug_gen=aug_gen,
        batches=batches, source=tensors.source, ctx=ctx,
        drawn=_drawings(tensors.train_x[idx], tensors.train_y[idx], ctx, device, stop)
        if cfg.sketch_augment else None,
    )  # fmt: skip


def _drawings(
    x: torch.Tensor,
    y: torch.Tensor,
    ctx: Dist | None,
    device: torch.device,
    stop: threading.Event | None,
) -> torch.Tensor:
    """The sketch preset's drawings of the photos ``x``, on ``device``. Under torchrun the
    first process of each machine (local rank 0) makes them, or reads them from the cache,
    while the others wait, then the others read its cache: drawn by every process at once,
    their worker pools would share the machine's cores N ways. A stop while they are drawn
    (DrawingStopped) ends every rank."""
    asked = stop.is_set if stop else None
    if ctx is None:
        return drawings_of(x, y, stop=asked).to(device)
    drawn, stopped = None, 0.0
    if ctx.local_rank == 0:
        try:
            drawn = drawings_of(x, y, stop=asked)
        except DrawingStopped:
            stopped = 1.0
    if distributed.all_sum([stopped], device)[0] > 0:
        raise DrawingStopped("stopped while making the drawings")
    if drawn is None:  # from the cache just made (drawn here only where it could not be written)
        drawn = drawings_of(x, y, stop=asked)
    return drawn.to(device)


def _wrap_ddp(net: nn.Module, ctx: Dist, device: torch.device) -> nn.Module:
    """DDP around ``net``. SyncBatchNorm (batch statistics over all ranks) only with NCCL:
    gloo does not support it, so on the CPU each rank normalises with its own images'."""
    from torch.nn.parallel import DistributedDataParallel  # noqa: PLC0415 - DDP runs only

    if ctx.backend == "nccl":
        net = nn.SyncBatchNorm.convert_sync_batchnorm(net)
    ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(net, device_ids=ids)


def _step(run: _Setup, take: torch.Tensor) -> tuple[float, torch.Tensor]:
    """One SGD step on the images ``take`` (the global batch); returns the batch loss and how
    many of the images the forward pass got right (the running train accuracy's count: no
    extra forward pass; a tensor where the model lives, read once per epoch, not per step). A
    diverged loss (see ``_diverged``) is returned without updating the weights."""
    ctx, n = run.ctx, len(take)
    if ctx is not None:  # this rank's share of the global batch
        take = take[ctx.rank :: ctx.world_size]
    x = run.train_x[take]
    if run.drawn is not None:
        x = with_drawings(x, run.drawn, take, run.gen)
    if run.cfg.augment:
        x = augment(x, run.aug_gen)
    with autocast(run.device, run.amp):
        logits = run.model(x.contiguous(memory_format=torch.channels_last))
        y = run.train_y[take]
        loss = F.cross_entropy(
            logits, y, label_smoothing=run.cfg.label_smoothing,
            reduction="mean" if ctx is None else "sum",
        )  # fmt: skip
    right = (logits.detach().argmax(1) == y).sum()
    run.optimizer.zero_grad(set_to_none=True)
    if ctx is None:
        loss.backward()
        loss_value = loss.item()
    else:  # DDP averages the ranks' gradients: so scaled, they are the global mean's
        (loss * (ctx.world_size / n)).backward()
        # every rank gets the same loss, so all agree on a divergence; summed on the device,
        # read once (the one host sync per step, which the progress needs anyway)
        both = distributed.all_sum_(torch.stack([loss.detach().double(), right.double()]))
        loss_value, right = both[0].item() / n, both[1]
    if not _diverged(loss_value):
        run.optimizer.step()
        if run.scheduler:
            run.scheduler.step()
    return loss_value, right


def _diverged(loss_value: float) -> bool:
    return not math.isfinite(loss_value) or loss_value > DIVERGED_LOSS


def _stopped(run: _Setup, stop: threading.Event) -> bool:
    """The stop flag; under torchrun, set on any rank (all ranks then stop together)."""
    if run.ctx is None:
        return stop.is_set()
    return distributed.all_sum([float(stop.is_set())], run.device)[0] > 0


def _evaluate(run: _Setup) -> tuple[float, float, torch.Tensor | None]:
    """(val loss, val acc, probabilities); under torchrun rank 0 measures and tells the
    others (their probabilities are None)."""
    if run.ctx is None:
        return evaluate_tensors(run.net, run.test_x, run.test_y, run.amp, tta=run.cfg.tta)
    loss, acc, probs = math.nan, math.nan, None
    if run.ctx.main:
        loss, acc, probs = evaluate_tensors(
            run.net, run.test_x, run.test_y, run.amp, tta=run.cfg.tta
        )
    loss, acc = distributed.from_main([loss, acc], run.device)
    return loss, acc, probs


def _started(run: _Setup) -> Started:
    where = f"{run.device} (bf16)" if run.amp else str(run.device)
    ctx = run.ctx
    return Started(
        device=where, n_train=len(run.train_y), n_test=len(run.test_y),
        batches_per_epoch=run.batches, parameters=count_parameters(run.net),
        data_source=run.source, world_size=ctx.world_size if ctx else 1,
        backend=ctx.backend if ctx else "",
    )  # fmt: skip


def _train(cfg, tensors, stop, data_dir, t0, state, ctx, target) -> Iterator[Event]:
    try:
        run = _prepare(cfg, tensors, data_dir, ctx, stop)
    except DrawingStopped:  # the sketch preset's first run: stopped while drawing
        yield RunEnd("stopped", "stopped by the user", 0, None, _since(t0))
        return
    n, batches = len(run.train_y), run.batches
    yield _started(run)
    step, train_time, epoch, total = 0, 0.0, 0, cfg.epochs
    while target.more_after(epoch):
        epoch += 1
        run.model.train()
        epoch_t0 = time.perf_counter()
        order = torch.randperm(n, generator=run.gen).to(run.device)
        cost, right = 0.0, 0
        for b in range(batches):
            if _stopped(run, stop):
                yield RunEnd("stopped", "stopped by the user", epoch - 1, state["acc"], _since(t0))
                return
            if target.epochs != total:  # "one more epoch": the record says the new total
                total = target.epochs
                yield Extended(total)
            loss_value, ok = _step(run, order[b * cfg.batch_size : (b + 1) * cfg.batch_size])
            if _diverged(loss_value):
                reason = f"diverged at epoch {epoch}, batch {b + 1} (loss {loss_value})"
                yield RunEnd("failed", reason + LOWER_LR, epoch - 1, state["acc"], _since(t0))
                return
            cost += loss_value
            right += ok
            step += 1
            seconds = train_time + time.perf_counter() - epoch_t0
            rate = step / seconds if seconds > 0 else 0.0
            yield BatchProgress(
                epoch, b + 1, batches, loss_value, rate * cfg.batch_size,
                (total * batches - step) / rate if rate else 0.0, _since(t0),
            )  # fmt: skip
        train_time += time.perf_counter() - epoch_t0
        val_loss, val_acc, probs = _evaluate(run)
        if not math.isfinite(val_loss):  # the last update overflowed: never save NaN weights
            reason = f"diverged at epoch {epoch} (validation loss {val_loss})"
            yield RunEnd("failed", reason + LOWER_LR, epoch - 1, state["acc"], _since(t0))
            return
        weights = None
        if run.ctx is None or run.ctx.main:
            weights = {k: v.detach().cpu().clone() for k, v in run.net.state_dict().items()}
        state.update(epochs_done=epoch, acc=val_acc)
        yield EpochEnd(
            epoch, total, cost, cost / batches, val_loss, val_acc,
            time.perf_counter() - epoch_t0, _since(t0), probs, weights, train_acc=int(right) / n,
        )  # fmt: skip
    yield RunEnd("finished", "", epoch, state["acc"], _since(t0))
