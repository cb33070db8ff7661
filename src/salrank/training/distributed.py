"""Multi-process training on an existing engine: ``torchrun`` + ``DistributedDataParallel``.

Launch with ``torchrun --nproc_per_node=G salrank-train ...`` (or ``python -m torch.distributed.run``;
multi-node: ``--nnodes N --node_rank R --rdzv_endpoint HOST:PORT``). :func:`init_distributed` reads the
environment torchrun sets (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``/``PORT``), picks NCCL
on GPUs and gloo on CPUs, and pins each process to its local GPU. Without those variables it is a
single process and nothing is initialised.

Only rank 0 logs, writes metrics and checkpoints; evaluation is sharded (rank ``r`` predicts images
``r, r + W, ...``) and the predictions are gathered on rank 0 with :func:`all_gather_objects`.
"""

from __future__ import annotations

import datetime
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

logger = logging.getLogger(__name__)

__all__ = [
    "DistInfo",
    "all_gather_objects",
    "all_processes",
    "average_gradients",
    "barrier",
    "broadcast_object",
    "cleanup_distributed",
    "init_distributed",
    "reduce_mean",
    "wrap_ddp",
]


@dataclass
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    backend: str | None = None

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def _choose_device(preference: str, local_rank: int) -> torch.device:
    if preference == "cuda" or (preference == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            from salrank.errors import InputError

            raise InputError("device: cuda was asked for but no CUDA device is available")
        torch.cuda.set_device(local_rank)
        return torch.device("cuda", local_rank)
    return torch.device("cpu")


def init_distributed(device: str = "auto", timeout_minutes: int = 30) -> DistInfo:
    """Initialise the process group when launched by torchrun (``WORLD_SIZE`` > 1); see the module docstring."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    dev = _choose_device(device, local)
    if world <= 1:
        return DistInfo(0, 1, 0, dev, None)
    backend = "nccl" if dev.type == "cuda" else "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend=backend, init_method="env://", timeout=datetime.timedelta(minutes=timeout_minutes))
    return DistInfo(dist.get_rank(), dist.get_world_size(), local, dev, backend)


def cleanup_distributed() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def barrier() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def all_gather_objects(obj: Any) -> list[Any]:
    """Every process's ``obj``, in rank order (``[obj]`` in a single process)."""
    if not (dist.is_available() and dist.is_initialized()):
        return [obj]
    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def broadcast_object(obj: Any, src: int = 0) -> Any:
    """Rank ``src``'s ``obj`` on every process."""
    if not (dist.is_available() and dist.is_initialized()):
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def all_processes(flag: bool, device: torch.device) -> bool:
    """Whether ``flag`` holds on every process (itself when not distributed).

    Lets all processes take the same branch around collective operations, e.g. skip a step together
    when one of them has nothing to compute (otherwise the others would wait for it forever).
    """
    if not (dist.is_available() and dist.is_initialized()):
        return bool(flag)
    t = torch.tensor([1 if flag else 0], dtype=torch.int32, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MIN)
    return bool(t.item())


def average_gradients(parameters: Iterable[nn.Parameter]) -> None:
    """Average the gradients over processes by hand (what DDP does in the backward of a synced step).

    For a step whose last micro-batch was skipped by every process, so DDP never synchronised the
    accumulated gradients. Parameters without a gradient are left alone (they have none anywhere:
    every process ran the same micro-batches of the same model).
    """
    if not (dist.is_available() and dist.is_initialized()):
        return
    world = dist.get_world_size()
    for p in parameters:
        if p.grad is not None:
            dist.all_reduce(p.grad)
            p.grad.div_(world)


def reduce_mean(values: dict[str, float], device: torch.device) -> dict[str, float]:
    """The mean over processes of a dict of numbers (for logging)."""
    if not (dist.is_available() and dist.is_initialized()) or not values:
        return values
    keys = sorted(values)
    t = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64, device=device)
    dist.all_reduce(t)
    t /= dist.get_world_size()
    return dict(zip(keys, t.tolist()))


def wrap_ddp(module: nn.Module, info: DistInfo, find_unused_parameters: bool = True) -> nn.Module:
    """``DistributedDataParallel(module)`` when distributed, else ``module`` unchanged.

    ``find_unused_parameters`` is on by default: the official SeqRank gate and PoseSOR's inactive heads
    have parameters that take no part in the loss.
    """
    if not info.distributed:
        return module
    ids = [info.device.index] if info.device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(module, device_ids=ids, find_unused_parameters=find_unused_parameters)
