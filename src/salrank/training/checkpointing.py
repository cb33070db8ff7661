"""Training checkpoints: atomic writes, keep-last-k, exact resume, and the final salrank weights.

A run directory holds::

    checkpoints/model_0005000.pth     periodic training checkpoints (the last ``keep_last`` are kept)
    checkpoints/model_final.pth       at the end of training
    checkpoints/last_checkpoint       name of the newest checkpoint (what ``--resume`` loads)
    checkpoints/best.pth              model weights with the best evaluation metric so far
    model_final.safetensors (+ .json) the trained model as salrank weights (config in the metadata)

Every file is written to a temporary file beside its target and renamed over it, so an interrupted run
never leaves a truncated checkpoint. A training checkpoint holds everything :func:`restore_training_state`
needs to continue *exactly*: the model, optimiser, LR scheduler and gradient scaler states, the iteration
(which fixes the sampler position, see :mod:`salrank.training.samplers`) and every process's RNG states
(Python, NumPy, torch CPU and CUDA). It is saved with plain tensors and numbers only, so it loads with
``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import io
import logging
import random
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from salrank.errors import CheckpointError
from salrank.utils.io import atomic_write, safe_torch_load

logger = logging.getLogger(__name__)

__all__ = ["Checkpointer", "capture_rng_state", "restore_rng_state", "unwrap"]

_PERIODIC = re.compile(r"^model_(\d{7})\.pth$")


def unwrap(model: nn.Module) -> nn.Module:
    """The module inside a ``DistributedDataParallel`` wrapper (or the module itself)."""
    return model.module if hasattr(model, "module") and isinstance(model, nn.parallel.DistributedDataParallel) else model


def capture_rng_state() -> dict[str, Any]:
    """This process's RNG states as tensors and plain numbers (``weights_only``-loadable)."""
    _kind, keys, pos, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "python": _python_state_to_tensor(random.getstate()),
        "numpy": {"keys": torch.from_numpy(np.asarray(keys, np.int64)), "pos": int(pos), "has_gauss": int(has_gauss), "cached": float(cached)},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Inverse of :func:`capture_rng_state`."""
    random.setstate(_python_state_from_tensor(state["python"]))
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), int(n["pos"]), int(n["has_gauss"]), float(n["cached"])))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _python_state_to_tensor(state: tuple) -> dict[str, Any]:
    version, internal, gauss = state
    return {"version": int(version), "internal": torch.tensor(internal, dtype=torch.int64), "gauss": gauss if gauss is None else float(gauss)}


def _python_state_from_tensor(data: dict[str, Any]) -> tuple:
    return (int(data["version"]), tuple(int(v) for v in data["internal"].tolist()), data["gauss"])


class Checkpointer:
    """Writes and finds the checkpoints of one run directory (rank 0 writes; every rank may read).

    Args:
        run_dir: the run directory.
        keep_last: periodic checkpoints to keep (older ones are deleted after a new one is written).
        is_main: whether this process writes.
    """

    def __init__(self, run_dir: str | Path, keep_last: int = 3, is_main: bool = True) -> None:
        self.dir = Path(run_dir) / "checkpoints"
        self.keep_last = keep_last
        self.is_main = is_main

    # ------------------------------------------------------------------ writing
    def save(self, name: str, state: dict[str, Any], update_last: bool = True) -> Path | None:
        """Write ``state`` atomically as ``checkpoints/<name>`` (rank 0 only); returns the path."""
        if not self.is_main:
            return None
        path = self.dir / name
        buffer = io.BytesIO()
        torch.save(state, buffer)
        with atomic_write(path, "wb") as fh:
            fh.write(buffer.getbuffer())
        if update_last:
            with atomic_write(self.dir / "last_checkpoint", "w") as fh:
                fh.write(name + "\n")
            self._prune()
        logger.info("checkpoint written: %s", path)
        return path

    def _prune(self) -> None:
        if self.keep_last <= 0:
            return
        periodic = sorted(p for p in self.dir.iterdir() if _PERIODIC.match(p.name))
        last = self.last_name()
        for old in periodic[: -self.keep_last]:
            if old.name != last:
                old.unlink(missing_ok=True)

    # ------------------------------------------------------------------ reading
    def last_name(self) -> str | None:
        pointer = self.dir / "last_checkpoint"
        if not pointer.is_file():
            return None
        name = pointer.read_text().strip()
        return name or None

    def last(self) -> Path | None:
        """The newest training checkpoint, or ``None``."""
        name = self.last_name()
        if name and (self.dir / name).is_file():
            return self.dir / name
        periodic = sorted(p for p in self.dir.glob("model_*.pth"))
        return periodic[-1] if periodic else None

    @staticmethod
    def load(path: str | Path) -> dict[str, Any]:
        state = safe_torch_load(path)
        if not isinstance(state, dict) or "model" not in state:
            raise CheckpointError("not a salrank training checkpoint (no 'model' entry)", path)
        return state


def training_state(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    scaler: Any,
    iteration: int,
    rng_states: list[dict[str, Any]],
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Everything needed to continue training after ``iteration`` completed steps."""
    return {
        "model": unwrap(model).state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "scaler": scaler.state_dict() if scaler is not None else {},
        "iteration": int(iteration),
        "rng": rng_states,
        "world_size": len(rng_states),
        **(extra or {}),
    }


def restore_training_state(
    state: dict[str, Any], model: nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any, scaler: Any, rank: int, world_size: int
) -> int:
    """Load a :func:`training_state` into the live objects; returns the iteration to continue from."""
    unwrap(model).load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    if scaler is not None and state.get("scaler"):
        scaler.load_state_dict(state["scaler"])
    rng = state.get("rng") or []
    if len(rng) == world_size:
        restore_rng_state(rng[rank])
    else:
        logger.warning(
            "the checkpoint was written by %d processes and this run has %d: RNG states are not restored "
            "(the data order is; training continues, but not bit-identically)",
            len(rng),
            world_size,
        )
    return int(state["iteration"])
