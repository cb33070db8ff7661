"""Frozen batch normalisation: a per-channel affine map with fixed statistics.

Detection backbones fine-tuned with small per-GPU batches keep their BatchNorm statistics frozen. The
layer has the same four tensors as ``nn.BatchNorm2d`` (``weight``, ``bias``, ``running_mean``,
``running_var``; no ``num_batches_tracked``) so official checkpoints load by name, but nothing in it is
trained: the tensors are buffers and the layer computes, in every mode,

    y = (x - running_mean) / sqrt(running_var + eps) * weight + bias

Without autograd it calls ``F.batch_norm(training=False)``, the single fused kernel detectron2's
``FrozenBatchNorm2d`` uses, so the numbers match it bit for bit.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class FrozenBatchNorm2d(nn.Module):
    """BatchNorm2d with fixed statistics and affine parameters (all stored as buffers)."""

    def __init__(self, num_features: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.num_features = num_features
        self.eps = eps
        self.register_buffer("weight", torch.ones(num_features))
        self.register_buffer("bias", torch.zeros(num_features))
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features) - eps)

    weight: Tensor
    bias: Tensor
    running_mean: Tensor
    running_var: Tensor

    def forward(self, x: Tensor) -> Tensor:
        if x.requires_grad:
            # Gradients only flow to the input: an explicit affine map avoids the fused op's
            # weight/bias gradient buffers.
            scale = self.weight * (self.running_var + self.eps).rsqrt()
            shift = self.bias - self.running_mean * scale
            return x * scale.reshape(1, -1, 1, 1).to(x.dtype) + shift.reshape(1, -1, 1, 1).to(x.dtype)
        return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, training=False, eps=self.eps)

    def scale_and_shift(self) -> tuple[Tensor, Tensor]:
        """``(scale, shift)`` with ``y = x * scale + shift`` per channel (used to fold into a conv)."""
        scale = self.weight * (self.running_var + self.eps).rsqrt()
        return scale, self.bias - self.running_mean * scale

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}"

    @classmethod
    def convert(cls, module: nn.Module) -> nn.Module:
        """Replace every ``nn.BatchNorm2d`` in ``module`` (recursively) by a frozen copy."""
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            frozen = cls(module.num_features, module.eps)
            if module.affine:
                frozen.weight.copy_(module.weight.detach())
                frozen.bias.copy_(module.bias.detach())
            if module.running_mean is not None and module.running_var is not None:
                frozen.running_mean.copy_(module.running_mean)
                frozen.running_var.copy_(module.running_var)
            return frozen
        for name, child in module.named_children():
            new = cls.convert(child)
            if new is not child:
                module.add_module(name, new)
        return module


def make_norm(kind: str, channels: int) -> nn.Module | None:
    """The normalisation layer detectron2's ``get_norm`` builds for a config string.

    ``"FrozenBN"`` -> :class:`FrozenBatchNorm2d`; ``"BN"``/``"SyncBN"`` -> ``nn.BatchNorm2d``
    (synchronisation is a training-time matter); ``"GN"`` -> ``nn.GroupNorm(32, channels)``;
    ``""`` -> ``None`` (no normalisation).
    """
    if kind == "":
        return None
    if kind == "FrozenBN":
        return FrozenBatchNorm2d(channels)
    if kind in ("BN", "SyncBN"):
        return nn.BatchNorm2d(channels)
    if kind == "GN":
        return nn.GroupNorm(32, channels)
    raise ValueError(f"unknown normalisation {kind!r}; expected one of 'FrozenBN', 'BN', 'SyncBN', 'GN' or ''")
