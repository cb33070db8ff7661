"""SAM-style multi-head attention, as used by every SeqRank and PoseSOR transformer block."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class Attention(nn.Module):
    """Multi-head attention with separate ``q_proj`` / ``k_proj`` / ``v_proj`` / ``out_proj``.

    The attention layer of segment-anything, which SeqRank (``seqrank/component/sam.py``) and PoseSOR
    (``network/other/component.py``) use unchanged: queries, keys and values are projected to
    ``embedding_dim // downsample_rate`` channels, split into ``num_heads`` heads, combined by
    ``softmax(q k^T / sqrt(d)) v`` and projected back. There is no dropout. Parameter names are the
    official ones.

    Args:
        embedding_dim: channels of the inputs and of the output.
        num_heads: number of heads; must divide the internal dimension.
        downsample_rate: the internal dimension is ``embedding_dim // downsample_rate``.
        fused: compute the attention with ``torch.nn.functional.scaled_dot_product_attention``
            (default). It never materialises the ``(B, heads, Nq, Nk)`` score matrix, which matters
            for the cross-attentions to whole feature maps. In float32 it differs from the explicit
            formula by float rounding only: about 3e-7 on outputs of size ~1 (measured for the
            SeqRank/PoseSOR shapes; the explicit float32 formula is itself that far from a float64
            reference). ``fused=False`` evaluates the official formula step by step.
    """

    def __init__(self, embedding_dim: int, num_heads: int, downsample_rate: int = 1, fused: bool = True) -> None:
        super().__init__()
        self.embedding_dim = embedding_dim
        self.internal_dim = embedding_dim // downsample_rate
        self.num_heads = num_heads
        if self.internal_dim % num_heads != 0:
            raise ValueError(f"num_heads ({num_heads}) must divide the internal dimension ({self.internal_dim})")
        self.fused = fused
        self.q_proj = nn.Linear(embedding_dim, self.internal_dim)
        self.k_proj = nn.Linear(embedding_dim, self.internal_dim)
        self.v_proj = nn.Linear(embedding_dim, self.internal_dim)
        self.out_proj = nn.Linear(self.internal_dim, embedding_dim)

    def _separate_heads(self, x: Tensor) -> Tensor:
        b, n, c = x.shape
        return x.reshape(b, n, self.num_heads, c // self.num_heads).transpose(1, 2)  # B, heads, N, d

    def forward(self, q: Tensor, k: Tensor, v: Tensor, attn_mask: Tensor | None = None) -> Tensor:
        """Attend from ``q`` (B, Nq, C) to ``k`` / ``v`` (B, Nk, C); returns (B, Nq, C).

        ``attn_mask`` (optional) must broadcast to ``(B, num_heads, Nq, Nk)``. A boolean mask marks
        the pairs that may attend (``True``), as in ``scaled_dot_product_attention``; a floating
        mask is added to the scaled scores (e.g. :func:`validity_mask_to_bias` for PoseSOR's
        masked self-attention). A boolean row with no ``True`` gives NaN, as in PyTorch.
        """
        qh = self._separate_heads(self.q_proj(q))
        kh = self._separate_heads(self.k_proj(k))
        vh = self._separate_heads(self.v_proj(v))
        if self.fused:
            if attn_mask is not None and attn_mask.is_floating_point():
                attn_mask = attn_mask.to(qh.dtype)  # e.g. half-precision activations under autocast
            out = F.scaled_dot_product_attention(qh, kh, vh, attn_mask=attn_mask)
        else:
            attn = qh @ kh.transpose(-2, -1)
            attn = attn / math.sqrt(qh.shape[-1])
            if attn_mask is not None:
                if attn_mask.dtype == torch.bool:
                    attn = attn.masked_fill(~attn_mask, float("-inf"))
                else:
                    attn = attn + attn_mask
            out = torch.softmax(attn, dim=-1) @ vh
        b, _, n, d = out.shape
        out = out.transpose(1, 2).reshape(b, n, self.num_heads * d)
        return self.out_proj(out)


def validity_mask_to_bias(valid: Tensor) -> Tensor:
    """PoseSOR's attention mask rule as an additive bias for :class:`Attention`.

    ``valid`` holds 1 where a query/key pair may attend and 0 where not (PoseSOR builds it as
    ``m @ m^T`` of per-token validity flags, shape ``(B, 1, N, N)``). The official attention first
    sets every row whose sum is below 0.5 (a query that may attend to nothing) to all ones, then adds
    ``(1 - m) * -1e9`` to the scaled scores. This returns that bias; ``valid`` is not modified (the
    official code changes its argument in place, which no caller relies on).
    """
    m = valid.to(torch.get_default_dtype() if not valid.is_floating_point() else valid.dtype)
    empty_rows = m.sum(dim=-1, keepdim=True) < 0.5
    m = torch.where(empty_rows, torch.ones_like(m), m)
    return (1.0 - m) * -1e9
