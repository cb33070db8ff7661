"""Feature Pyramid Network with the extra P6/P7 levels of RetinaNet/FCOS.

Lin et al.'s FPN: every input level gets a 1x1 *lateral* convolution to ``out_channels``; going from the
coarsest level down, the running top-down map is upsampled x2 (nearest) and added to the next lateral,
and every sum is smoothed by a 3x3 *output* convolution. The outputs are named ``p{log2(stride)}``
(``p3``, ``p4``, ``p5`` for stride-8/16/32 inputs). FCOS adds ``p6 = conv3x3/2(p5)`` and
``p7 = conv3x3/2(relu(p6))`` (``top_levels=2``), or only ``p6`` (``top_levels=1``).

This is detectron2's ``FPN`` with ``LastLevelP6P7(in_feature="p5")`` as CenterMask2 builds it
(``build_fcos_vovnet_fpn_backbone``), without normalisation layers (``FPN.NORM = ""``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["FCOSFPN"]


class FCOSFPN(nn.Module):
    """FPN over ``in_features`` (fine to coarse) plus ``top_levels`` extra stride-2 levels from ``p5``.

    Args:
        in_channels: channels of each input feature, fine to coarse.
        in_strides: strides of the inputs (powers of two), fine to coarse.
        out_channels: width of every pyramid level.
        top_levels: 0, 1 (``p6``) or 2 (``p6``, ``p7``) extra levels computed from the last output.
        fuse_type: ``"sum"`` (default) or ``"avg"`` of the lateral and top-down maps.
    """

    def __init__(
        self,
        in_channels: Sequence[int],
        in_strides: Sequence[int],
        out_channels: int = 256,
        top_levels: int = 2,
        fuse_type: str = "sum",
    ) -> None:
        super().__init__()
        if len(in_channels) != len(in_strides) or not in_channels:
            raise ValueError("in_channels and in_strides must be non-empty and of equal length")
        if fuse_type not in ("sum", "avg"):
            raise ValueError(f"fuse_type must be 'sum' or 'avg', not {fuse_type!r}")
        if top_levels not in (0, 1, 2):
            raise ValueError(f"top_levels must be 0, 1 or 2, not {top_levels}")
        self.fuse_type = fuse_type
        levels = [int(math.log2(s)) for s in in_strides]
        if any(2**lv != s for lv, s in zip(levels, in_strides)):
            raise ValueError(f"FPN input strides must be powers of two, got {list(in_strides)}")
        self.lateral_convs = nn.ModuleList(nn.Conv2d(c, out_channels, 1) for c in in_channels)
        self.output_convs = nn.ModuleList(nn.Conv2d(out_channels, out_channels, 3, padding=1) for _ in in_channels)
        self.p6 = nn.Conv2d(out_channels, out_channels, 3, stride=2, padding=1) if top_levels >= 1 else None
        self.p7 = nn.Conv2d(out_channels, out_channels, 3, stride=2, padding=1) if top_levels >= 2 else None
        self.out_features = [f"p{lv}" for lv in levels] + [f"p{levels[-1] + i + 1}" for i in range(top_levels)]
        self.out_strides = {name: 2 ** int(name[1:]) for name in self.out_features}
        self.out_channels = out_channels
        self.size_divisibility = int(in_strides[-1])
        """Inputs must be padded to a multiple of this (the coarsest input stride)."""

    def forward(self, features: Sequence[Tensor] | Mapping[str, Tensor]) -> dict[str, Tensor]:
        """``features``: the backbone maps, fine to coarse (a list, or a dict in that order)."""
        feats = list(features.values()) if isinstance(features, Mapping) else list(features)
        if len(feats) != len(self.lateral_convs):
            raise ValueError(f"expected {len(self.lateral_convs)} input features, got {len(feats)}")
        prev = self.lateral_convs[-1](feats[-1])
        outputs = [self.output_convs[-1](prev)]
        for i in range(len(feats) - 2, -1, -1):
            top_down = F.interpolate(prev, scale_factor=2.0, mode="nearest")
            prev = self.lateral_convs[i](feats[i]) + top_down
            if self.fuse_type == "avg":
                prev = prev / 2
            outputs.insert(0, self.output_convs[i](prev))
        if self.p6 is not None:
            p6 = self.p6(outputs[len(feats) - 1])
            outputs.append(p6)
            if self.p7 is not None:
                outputs.append(self.p7(F.relu(p6)))
        return dict(zip(self.out_features, outputs))
