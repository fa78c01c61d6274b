"""One model trained by several processes: PyTorch's DistributedDataParallel under torchrun.

    torchrun --standalone --nproc-per-node 2 -m fmnist_core train --preset quick

torchrun starts the processes and sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` and the
rendezvous variables; ``from_env()`` reads them (``None`` outside torchrun: a plain single
process) and ``init()`` joins the process group: gloo on the CPU, NCCL on CUDA GPUs (one GPU
per process, ``cuda:LOCAL_RANK``).

How the work is split (train.py does it with these helpers):
- every rank draws the same shuffled order of each epoch (the same seeded generator) and
  takes its share of each global batch: images ``rank, rank + world, ...`` of it. The global
  batch stays the config's ``batch_size``; each process computes ``batch_size / world``.
- each rank's loss is its images' summed loss over the global batch's size, times the world
  size: DDP averages the gradients over the ranks, which then equal a single process's
  gradient of the mean loss over the same global batch (up to float summation order).
- the stop flag and the batch loss are all-reduced every step, so a stop on any rank, or a
  diverged loss, ends every rank before the same next batch.
- rank 0 evaluates the whole test set (the weights are the same on every rank) and alone
  writes the run; it broadcasts what it measured so every rank ends the same way.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import os
import sys
from dataclasses import dataclass
from typing import NoReturn

import torch
import torch.distributed as dist

# A peer that died shows up as a broken connection at once; this only bounds a hung peer, or
# rank 0 making the sketch preset's drawings while the others wait (~3 min on 2 cores, once).
TIMEOUT = datetime.timedelta(minutes=30)
DIED = (
    "a process of the torchrun group failed or died ({error}); see torchrun's output for "
    "which rank and why"
)


_joined = False  # init() was called in this process (see end_process)


class DistError(RuntimeError):
    """The process group cannot be joined; the message says what to check."""


@dataclass(frozen=True)
class Dist:
    """This process's place in the group."""

    rank: int
    world_size: int
    local_rank: int
    backend: str = ""  # set by init(): "gloo" or "nccl"

    @property
    def main(self) -> bool:
        """Rank 0: it alone prints, records the run and evaluates."""
        return self.rank == 0


def from_env() -> Dist | None:
    """This process's place when torchrun started it with 2+ processes, else None."""
    try:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        local = int(os.environ.get("LOCAL_RANK", str(rank)))
    except ValueError as exc:
        why = f"WORLD_SIZE/RANK/LOCAL_RANK must be whole numbers (torchrun sets them): {exc}"
        raise DistError(why) from None
    if world <= 1:
        return None
    if not 0 <= rank < world:
        raise DistError(f"RANK {rank} is outside 0..{world - 1} (WORLD_SIZE {world})")
    return Dist(rank, world, local)


def device_for(ctx: Dist, device_name: str) -> torch.device:
    """One GPU per process on CUDA (``cuda:LOCAL_RANK``); every process on the CPU otherwise."""
    if device_name == "auto":
        device_name = "cuda" if torch.cuda.is_available() else "cpu"
    if device_name == "cpu":
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise DistError("device 'cuda' was asked for but no CUDA GPU is available; use 'auto'")
    if ctx.local_rank >= torch.cuda.device_count():
        raise DistError(
            f"local rank {ctx.local_rank} has no GPU: this machine has "
            f"{torch.cuda.device_count()}; start at most that many processes per node"
        )
    torch.cuda.set_device(ctx.local_rank)
    return torch.device("cuda", ctx.local_rank)


def init(ctx: Dist, device: torch.device) -> Dist:
    """Join the process group (once per process): NCCL for CUDA, gloo for the CPU."""
    global _joined
    backend = "nccl" if device.type == "cuda" else "gloo"
    _joined = True
    if not dist.is_initialized():
        try:
            dist.init_process_group(backend, timeout=TIMEOUT, device_id=_device_id(device))
        except Exception as exc:  # noqa: BLE001 - any rendezvous failure: one readable line
            raise DistError(
                f"cannot join the torchrun process group ({backend}): {exc}; check "
                "--nnodes/--rdzv-endpoint and that every node can reach the endpoint"
            ) from exc
    return Dist(ctx.rank, ctx.world_size, ctx.local_rank, backend)


def _device_id(device: torch.device) -> torch.device | None:
    return device if device.type == "cuda" else None


def close() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def joined() -> bool:
    """Whether this process has joined a process group (it then ends with ``end_process``)."""
    return _joined


def end_process(code: int) -> NoReturn:
    """Exit with ``code`` now, without the interpreter's finalization.

    A process that trained under DDP must not finalize: DDP keeps the process group alive after
    ``destroy_process_group()`` (torch 2.x), so gloo's worker threads outlive it, and one that
    still holds the last reference to a collective's tensor when the interpreter finalizes must
    take the GIL to free it, which aborts the process ("terminate called without an active
    exception", SIGABRT). It happens when the worker lags the main thread - on a loaded machine,
    to a rank that ends right after its last all-reduce. Everything the run writes is written
    (atomically) by then; this flushes what is buffered and leaves."""
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe: nothing can reach it
            stream.flush()
    os._exit(code)


def all_sum(values: list[float], device: torch.device) -> list[float]:
    """The sum over all ranks of each of ``values`` (float64: counts stay exact)."""
    return all_sum_(torch.tensor(values, dtype=torch.float64, device=device)).tolist()


def all_sum_(t: torch.Tensor) -> torch.Tensor:
    """Sum ``t`` over all ranks, in place, where it lives (no copy to the host)."""
    try:
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    except Exception as exc:  # noqa: BLE001 - gloo/NCCL raise several types for a dead peer
        raise DistError(DIED.format(error=short(exc))) from exc
    return t


def from_main(values: list[float], device: torch.device) -> list[float]:
    """Rank 0's ``values`` on every rank."""
    t = torch.tensor(values, dtype=torch.float64, device=device)
    try:
        dist.broadcast(t, src=0)
    except Exception as exc:  # noqa: BLE001 - as above
        raise DistError(DIED.format(error=short(exc))) from exc
    return t.tolist()


def short(exc: Exception) -> str:
    """The first line of a backend's error (gloo's messages run over several lines)."""
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:200]
