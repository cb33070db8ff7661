"""Optimiser, parameter groups, gradient clipping and the learning-rate schedule of the official recipes.

**Parameter groups** (SeqRank/PoseSOR ``train_net.py::build_optimizer``, detectron2's defaults for PPA):
every trainable parameter gets

* ``lr = base_lr x backbone_multiplier`` when its module's name contains ``backbone``, else ``base_lr``;
* ``weight_decay = 0`` for Swin's ``relative_position_bias_table`` and ``absolute_pos_embed``;
  ``weight_decay_norm`` (0) for the parameters of normalisation layers (BatchNorm, GroupNorm,
  InstanceNorm, LayerNorm and subclasses such as ``LayerNorm2d``); ``weight_decay_embed`` (0) for
  ``nn.Embedding`` weights; ``weight_decay`` (1e-4) for everything else.

Parameters with equal settings share one group (the official code makes one group per tensor; the
update is the same, AdamW and SGD being per-element). Shared tensors are counted once.

**Optimisers**: AdamW (betas 0.9/0.999, eps 1e-8; SeqRank, PoseSOR) or SGD with momentum 0.9 (PPA).
**Clipping**: the gradients of the whole model are rescaled to an L2 norm of at most ``clip_grad_norm``
(5.0) before each step (the official ``FullModelGradientClippingOptimizer``).
**Schedule**: :class:`WarmupMultiStepLR`, detectron2's: a linear warm-up from ``warmup_factor`` to 1 over
``warmup_iters``, then x ``gamma`` at each of ``steps``. The official SeqRank/PoseSOR recipes use
``warmup_factor 1.0``, i.e. no real warm-up.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from typing import Any

import torch
from torch import nn

from salrank.training.config import SolverSection

__all__ = ["NORM_TYPES", "WarmupMultiStepLR", "build_lr_scheduler", "build_optimizer", "clip_gradients", "parameter_groups"]

NORM_TYPES: tuple[type[nn.Module], ...] = (
    nn.BatchNorm1d,
    nn.BatchNorm2d,
    nn.BatchNorm3d,
    nn.SyncBatchNorm,
    nn.GroupNorm,
    nn.InstanceNorm1d,
    nn.InstanceNorm2d,
    nn.InstanceNorm3d,
    nn.LayerNorm,
    nn.LocalResponseNorm,
)
NO_DECAY_NAMES = ("relative_position_bias_table", "absolute_pos_embed")


def parameter_groups(
    model: nn.Module,
    base_lr: float,
    weight_decay: float,
    weight_decay_norm: float = 0.0,
    weight_decay_embed: float = 0.0,
    backbone_multiplier: float = 1.0,
) -> list[dict[str, Any]]:
    """The official per-parameter ``lr``/``weight_decay`` rules, grouped (see the module docstring).

    Each group also carries ``names``, the parameter names it holds (for tests and logs).
    """
    groups: dict[tuple[float, float], dict[str, Any]] = {}
    seen: set[int] = set()
    for module_name, module in model.named_modules():
        for param_name, param in module.named_parameters(recurse=False):
            if not param.requires_grad or id(param) in seen:
                continue
            seen.add(id(param))
            lr = base_lr * (backbone_multiplier if "backbone" in module_name else 1.0)
            wd = weight_decay
            if any(n in param_name for n in NO_DECAY_NAMES):
                wd = 0.0
            if isinstance(module, NORM_TYPES):
                wd = weight_decay_norm
            if isinstance(module, nn.Embedding):
                wd = weight_decay_embed
            group = groups.setdefault((lr, wd), {"params": [], "names": [], "lr": lr, "weight_decay": wd})
            group["params"].append(param)
            group["names"].append(f"{module_name}.{param_name}" if module_name else param_name)
    return list(groups.values())


def build_optimizer(model: nn.Module, solver: SolverSection) -> torch.optim.Optimizer:
    """AdamW or SGD over :func:`parameter_groups` of ``model``."""
    groups = parameter_groups(
        model, solver.base_lr, solver.weight_decay, solver.weight_decay_norm, solver.weight_decay_embed, solver.backbone_multiplier
    )
    clean = [{k: v for k, v in g.items() if k != "names"} for g in groups]
    if solver.optimizer == "adamw":
        return torch.optim.AdamW(clean, lr=solver.base_lr, betas=tuple(solver.betas), eps=1e-8, weight_decay=solver.weight_decay)
    return torch.optim.SGD(clean, lr=solver.base_lr, momentum=solver.momentum, weight_decay=solver.weight_decay)


def clip_gradients(parameters: Iterable[nn.Parameter], max_norm: float) -> torch.Tensor | None:
    """Full-model L2 gradient clipping (no-op when ``max_norm <= 0``); returns the norm before clipping."""
    if max_norm <= 0:
        return None
    return torch.nn.utils.clip_grad_norm_([p for p in parameters if p.grad is not None], max_norm)


class WarmupMultiStepLR(torch.optim.lr_scheduler.LRScheduler):
    """detectron2's ``WarmupMultiStepLR``: ``lr(i) = base_lr x warmup(i) x gamma ^ #{s in steps : s <= i}``.

    ``warmup(i)`` for ``i < warmup_iters`` is ``warmup_factor`` (``constant``) or
    ``warmup_factor x (1 - i / warmup_iters) + i / warmup_iters`` (``linear``), else 1.
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        steps: Sequence[int],
        gamma: float = 0.1,
        warmup_factor: float = 1.0,
        warmup_iters: int = 0,
        warmup_method: str = "linear",
        last_epoch: int = -1,
    ) -> None:
        self.steps = list(steps)
        self.gamma = gamma
        self.warmup_factor = warmup_factor
        self.warmup_iters = warmup_iters
        self.warmup_method = warmup_method
        super().__init__(optimizer, last_epoch)

    def factor(self, iteration: int) -> float:
        warm = 1.0
        if iteration < self.warmup_iters:
            if self.warmup_method == "constant":
                warm = self.warmup_factor
            else:
                alpha = iteration / self.warmup_iters
                warm = self.warmup_factor * (1 - alpha) + alpha
        return warm * self.gamma ** bisect.bisect_right(self.steps, iteration)

    def get_lr(self) -> list[float]:  # type: ignore[override]
        f = self.factor(self.last_epoch)
        return [base * f for base in self.base_lrs]


def build_lr_scheduler(optimizer: torch.optim.Optimizer, solver: SolverSection) -> WarmupMultiStepLR:
    return WarmupMultiStepLR(optimizer, solver.steps, solver.gamma, solver.warmup_factor, solver.warmup_iters, solver.warmup_method)
