"""Positional encodings of the neck's feature maps (``MODEL.PE``).

Every released SeqRank model uses ``"APE"``, the learnable 25x25 map shared with PoseSOR
(:class:`~salrank.modeling.layers.LearnablePE`). The official code also offers two fixed encodings,
implemented here for configs that select them:

* ``"SINE"``: DETR/Mask2Former's normalised sine encoding with ``embed_dim / 2`` features per axis;
* ``"RANDOM"``: segment-anything's random Fourier features (a fixed Gaussian ``(2, embed_dim / 2)``
  matrix, stored in checkpoints as ``pe_layer.positional_encoding_gaussian_matrix``).

Each module has ``for_size(height, width) -> (C, height, width)``; the encoding is the same for every
image of a batch.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from salrank.modeling.layers import LearnablePE

__all__ = ["PositionEmbeddingRandom", "PositionEmbeddingSine", "build_position_encoding"]


class PositionEmbeddingSine(nn.Module):
    """Sine/cosine encoding of the normalised (row, column) position, ``2 * num_pos_feats`` channels.

    Rows first then columns; within each, sines and cosines of ``pos / temperature^(2i/d)``
    interleaved, positions ``1..H`` normalised to ``(0, 2*pi]`` (DETR's ``normalize=True``).
    """

    def __init__(self, num_pos_feats: int = 128, temperature: float = 10000.0, scale: float = 2 * math.pi) -> None:
        super().__init__()
        self.num_pos_feats = num_pos_feats
        self.temperature = temperature
        self.scale = scale

    def for_size(self, height: int, width: int, device: torch.device | None = None) -> Tensor:
        eps = 1e-6
        ones = torch.ones(1, height, width, device=device)
        y = ones.cumsum(1, dtype=torch.float32)
        x = ones.cumsum(2, dtype=torch.float32)
        y = y / (y[:, -1:, :] + eps) * self.scale
        x = x / (x[:, :, -1:] + eps) * self.scale
        dim_t = torch.arange(self.num_pos_feats, dtype=torch.float32, device=device)
        dim_t = self.temperature ** (2 * (dim_t // 2) / self.num_pos_feats)
        pos_x = x[:, :, :, None] / dim_t
        pos_y = y[:, :, :, None] / dim_t
        pos_x = torch.stack((pos_x[:, :, :, 0::2].sin(), pos_x[:, :, :, 1::2].cos()), dim=4).flatten(3)
        pos_y = torch.stack((pos_y[:, :, :, 0::2].sin(), pos_y[:, :, :, 1::2].cos()), dim=4).flatten(3)
        return torch.cat((pos_y, pos_x), dim=3).permute(0, 3, 1, 2)[0]


class PositionEmbeddingRandom(nn.Module):
    """Random Fourier features of the pixel-centre coordinates in ``[0, 1]`` (segment-anything).

    ``gaussian_matrix`` ``(2, num_pos_feats)`` is a persistent buffer (``randn``), loaded from the
    checkpoint; the output has ``2 * num_pos_feats`` channels (sines then cosines).
    """

    def __init__(self, num_pos_feats: int = 128) -> None:
        super().__init__()
        self.register_buffer("gaussian_matrix", torch.randn(2, num_pos_feats))

    def for_size(self, height: int, width: int, device: torch.device | None = None) -> Tensor:
        grid = torch.ones(height, width, device=self.gaussian_matrix.device, dtype=torch.float32)
        y = (grid.cumsum(dim=0) - 0.5) / height
        x = (grid.cumsum(dim=1) - 0.5) / width
        coords = 2 * torch.stack([x, y], dim=-1) - 1
        coords = 2 * math.pi * (coords @ self.gaussian_matrix)
        return torch.cat([coords.sin(), coords.cos()], dim=-1).permute(2, 0, 1)


class _LearnablePE(LearnablePE):
    """The shared learnable encoding with the ``for_size(h, w, device)`` signature used here."""

    def for_size(self, height: int, width: int, device: torch.device | None = None) -> Tensor:  # type: ignore[override]
        return super().for_size(height, width)


def build_position_encoding(kind: str, embed_dim: int) -> nn.Module:
    """``"APE"`` / ``"SINE"`` / ``"RANDOM"`` as the official ``SeqRank.__init__`` builds them."""
    if kind == "APE":
        return _LearnablePE(embed_dim)
    if kind == "SINE":
        return PositionEmbeddingSine(embed_dim // 2)
    if kind == "RANDOM":
        return PositionEmbeddingRandom(embed_dim // 2)
    raise ValueError(f"unknown position encoding {kind!r}")
