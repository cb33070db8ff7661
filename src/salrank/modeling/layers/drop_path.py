"""Stochastic depth (drop path) for residual branches."""

from __future__ import annotations

from torch import Tensor, nn


def drop_path(x: Tensor, p: float, training: bool) -> Tensor:
    """Zero the whole residual branch of each sample with probability ``p`` (and rescale the rest).

    Same semantics as timm's ``DropPath`` used by the official Swin: one Bernoulli draw per sample
    (first dimension), survivors are divided by ``1 - p``. Identity in eval mode or when ``p == 0``.
    """
    if p <= 0.0 or not training:
        return x
    keep = 1.0 - p
    shape = (x.shape[0],) + (1,) * (x.ndim - 1)
    mask = x.new_empty(shape).bernoulli_(keep)
    return x * mask.div_(keep)


class DropPath(nn.Module):
    """Module form of :func:`drop_path`."""

    def __init__(self, p: float = 0.0) -> None:
        super().__init__()
        self.p = float(p)

    def forward(self, x: Tensor) -> Tensor:
        return drop_path(x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}"
