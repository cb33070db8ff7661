"""Positional encodings for feature maps."""

from __future__ import annotations

import re

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class LearnablePE(nn.Module):
    """A learned ``(C, S, S)`` positional map, bilinearly resized to each feature map's size.

    SeqRank's ``LearnablePE`` and PoseSOR's ``PositionEmbeddingLearnable`` (``MODEL.PE: "APE"``):
    a parameter of ``embed_dim x 25 x 25`` initialised with ``trunc_normal_`` (std 1, cut at +-2),
    resized with ``F.interpolate(mode="bilinear", align_corners=False)`` (the official call gives no
    ``align_corners``, which means ``False``) and broadcast over the batch.

    The parameter is ``weight`` (official name ``ape``).
    """

    def __init__(self, embed_dim: int = 256, size: int = 25) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(embed_dim, size, size))
        nn.init.trunc_normal_(self.weight)

    def for_size(self, height: int, width: int) -> Tensor:
        """The encoding for an ``height x width`` map, ``(C, height, width)``."""
        return F.interpolate(self.weight.unsqueeze(0), size=(height, width), mode="bilinear", align_corners=False)[0]

    def forward(self, x: Tensor) -> Tensor:
        """The encoding for feature map ``x`` (B, C, H, W), expanded (not copied) to ``(B, C, H, W)``."""
        pe = self.for_size(x.shape[-2], x.shape[-1])
        return pe.unsqueeze(0).expand(x.shape[0], -1, -1, -1)

    @staticmethod
    def official_key_rules(official_prefix: str = "pe_layer.", prefix: str = "pe_layer.") -> list[tuple[str, str]]:
        """``(regex, replacement)`` rules renaming the official keys (for a :class:`~salrank.checkpoint.KeyMap`)."""
        return [(re.escape(official_prefix) + r"ape", prefix + "weight")]
