"""Normalisation layers for channel-first feature maps."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn


class LayerNorm2d(nn.LayerNorm):
    """``nn.LayerNorm`` over the channels of a ``(B, C, H, W)`` map.

    Computes exactly what SeqRank's and PoseSOR's ``LayerNorm2D`` compute: the map is viewed as
    ``(B, H, W, C)``, normalised over ``C`` by a plain ``nn.LayerNorm`` (eps 1e-5, unlike SAM's
    ``LayerNorm2d`` which uses 1e-6 and its own arithmetic), and viewed back. The result is a
    ``(B, C, H, W)`` tensor whose memory is channels-last, as in the official code; convolutions that
    follow keep that layout.

    Parameters are ``weight`` and ``bias`` (the official module nests them as ``norm.weight`` /
    ``norm.bias``; see the neck key maps).
    """

    def __init__(self, num_channels: int, eps: float = 1e-5) -> None:
        super().__init__(num_channels, eps=eps)

    def forward(self, x: Tensor) -> Tensor:
        y = F.layer_norm(x.permute(0, 2, 3, 1), self.normalized_shape, self.weight, self.bias, self.eps)
        return y.permute(0, 3, 1, 2)
