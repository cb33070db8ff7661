"""SeqRank's (corrected model) and PoseSOR's feature pyramid neck."""

from __future__ import annotations

import re
from collections.abc import Sequence

import torch.nn.functional as F
from torch import Tensor, nn

from salrank.modeling.layers.norm import LayerNorm2d

FEATURE_NAMES = ("res2", "res3", "res4", "res5")


class ConvGELUNorm(nn.Module):
    """``conv1x1 -> GELU -> LayerNorm2d``, the projection used throughout SeqRank's necks.

    The official code writes it as ``nn.Sequential(Conv2d, GELU, LayerNorm2D)``, so its keys are
    ``<name>.0.weight`` and ``<name>.2.norm.weight``; here they are ``<name>.conv.weight`` and
    ``<name>.norm.weight``.
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 1)
        self.act = nn.GELU()
        self.norm = LayerNorm2d(out_channels)

    def forward(self, x: Tensor) -> Tensor:
        return self.norm(self.act(self.conv(x)))

    def xavier_init_(self) -> None:
        """The official ``init_weights_``: xavier-uniform conv weight, zero bias, LayerNorm (1, 0)."""
        nn.init.xavier_uniform_(self.conv.weight)
        nn.init.zeros_(self.conv.bias)
        nn.init.ones_(self.norm.weight)
        nn.init.zeros_(self.norm.bias)


def upsample_to(x: Tensor, like: Tensor) -> Tensor:
    """Bilinear resize of ``x`` to the spatial size of ``like`` (``align_corners=False``, the official default)."""
    return F.interpolate(x, size=like.shape[-2:], mode="bilinear", align_corners=False)


class FPNLayer(nn.Module):
    """One top-down step: ``fuse(scale(upsample(high)) + low)`` with ``scale`` a 3x3 conv."""

    def __init__(self, dim: int = 256) -> None:
        super().__init__()
        self.scale = nn.Conv2d(dim, dim, 3, padding=1)
        self.fuse = ConvGELUNorm(dim, dim)

    def forward(self, high: Tensor, low: Tensor) -> Tensor:
        return self.fuse(self.scale(upsample_to(high, low)) + low)


class FPN(nn.Module):
    """Feature pyramid: lateral ``ConvGELUNorm`` per level, then top-down :class:`FPNLayer` fusion.

    Takes the backbone's ``{"res2": ..., "res5": ...}`` and returns the same keys, every map with
    ``dim`` channels at its own resolution. The top level is the lateral projection alone; each
    lower level is fused with the (already fused) level above it.

    Args:
        in_channels: backbone channels of each input level, lowest (finest) first.
        dim: output channels (``MODEL.COMMON.EMBED_DIM``).
        in_features: names of the input levels, lowest first.
    """

    def __init__(self, in_channels: Sequence[int], dim: int = 256, in_features: Sequence[str] = FEATURE_NAMES) -> None:
        super().__init__()
        if len(in_channels) != len(in_features):
            raise ValueError("in_channels and in_features must have one entry per level")
        self.in_features = tuple(in_features)
        self.dim = dim
        self.lateral_convs = nn.ModuleList(ConvGELUNorm(c, dim) for c in in_channels)
        self.fpn_layers = nn.ModuleList(FPNLayer(dim) for _ in range(len(in_channels) - 1))
        for lateral in self.lateral_convs:  # as the official: only the lateral projections are re-initialised
            lateral.xavier_init_()

    def forward(self, feats: dict[str, Tensor]) -> dict[str, Tensor]:
        maps = [lateral(feats[name]) for lateral, name in zip(self.lateral_convs, self.in_features)]
        out = [maps[-1]]
        for layer, low in zip(self.fpn_layers, reversed(maps[:-1])):
            out.append(layer(out[-1], low))
        return dict(zip(self.in_features, reversed(out)))

    @staticmethod
    def official_key_rules(official_prefix: str = "neck.", prefix: str = "neck.") -> list[tuple[str, str]]:
        """``(regex, replacement)`` rules renaming the official FPN keys (for a :class:`~salrank.checkpoint.KeyMap`).

        ``lateral_conv.{i}.0`` -> ``lateral_convs.{i}.conv``, ``lateral_conv.{i}.2.norm`` ->
        ``lateral_convs.{i}.norm``, ``fpn_layers.{i}.conv.0`` / ``.conv.2.norm`` ->
        ``fpn_layers.{i}.fuse.conv`` / ``.fuse.norm``; ``fpn_layers.{i}.scale`` is unchanged.
        """
        src, dst = re.escape(official_prefix), prefix.replace("\\", r"\\")
        return [
            (src + r"lateral_conv\.([0-9]+)\.0\.(weight|bias)", dst + r"lateral_convs.\1.conv.\2"),
            (src + r"lateral_conv\.([0-9]+)\.2\.norm\.(weight|bias)", dst + r"lateral_convs.\1.norm.\2"),
            (src + r"fpn_layers\.([0-9]+)\.scale\.(weight|bias)", dst + r"fpn_layers.\1.scale.\2"),
            (src + r"fpn_layers\.([0-9]+)\.conv\.0\.(weight|bias)", dst + r"fpn_layers.\1.fuse.conv.\2"),
            (src + r"fpn_layers\.([0-9]+)\.conv\.2\.norm\.(weight|bias)", dst + r"fpn_layers.\1.fuse.norm.\2"),
        ]
