"""Small blocks that several PoseSOR modules share.

* :class:`QueryBlock` - cross-attention -> LayerNorm, self-attention -> LayerNorm, FFN -> LayerNorm, with
  positional encodings added to queries and keys. It is both the SIS decoder block (official
  ``LookByMultiQ``) and PAI's intra-object step (official ``CASAFFN``); the two are the same layer.
* :class:`NormedMLP` - ``Linear -> ReLU -> LayerNorm -> Linear``, the MLP PoseSOR uses for its
  sub-pose tokens, direction tokens, cues and mixers (official ``nn.Sequential`` with keys ``0``, ``2``,
  ``3``; here ``fc1``, ``norm``, ``fc2``).
* :func:`xavier_init_` - the official ``init_weights_``.
"""

from __future__ import annotations

import re

import torch.nn.functional as F
from torch import Tensor, nn

from salrank.modeling.layers import Attention, FeedForward, validity_mask_to_bias

__all__ = ["NormedMLP", "QueryBlock", "attention_bias", "escape", "normed_mlp_key_rules", "xavier_init_"]


def xavier_init_(module: nn.Module) -> None:
    """The official ``init_weights_``: xavier-uniform weights and zero biases for every Linear/Conv2d,
    weight 1 and bias 0 for every LayerNorm inside ``module``."""
    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


class NormedMLP(nn.Module):
    """``fc2(norm(relu(fc1(x))))`` over the last dimension."""

    def __init__(self, in_dim: int, hidden_dim: int, out_dim: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(in_dim, hidden_dim)
        self.norm = nn.LayerNorm(hidden_dim)
        self.fc2 = nn.Linear(hidden_dim, out_dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.norm(F.relu(self.fc1(x))))

    def hidden(self, x: Tensor) -> Tensor:
        """``norm(relu(fc1(x)))``: everything but the last linear layer."""
        return self.norm(F.relu(self.fc1(x)))


def normed_mlp_key_rules(official: str, ours: str) -> list[tuple[str, str]]:
    """KeyMap rules for an official ``nn.Sequential(Linear, ReLU, LayerNorm, Linear)`` at ``official``
    (a regex-escaped prefix ending with ``.``) -> a :class:`NormedMLP` at ``ours``."""
    n = re.compile(official).groups + 1
    return [
        (official + r"0\.(weight|bias)", ours + rf"fc1.\g<{n}>"),
        (official + r"2\.(weight|bias)", ours + rf"norm.\g<{n}>"),
        (official + r"3\.(weight|bias)", ours + rf"fc2.\g<{n}>"),
    ]


def attention_bias(valid: Tensor | None) -> Tensor | None:
    """PoseSOR's self-attention validity mask as an additive bias, or ``None`` when it changes nothing.

    ``valid`` is ``(B, N, 1)`` (1 = real token). The official attention masks pairs with
    ``valid @ valid^T``, first turning rows that may attend to nothing (padded tokens) into all-ones
    (:func:`~salrank.modeling.layers.validity_mask_to_bias`). When every token is valid the bias is all
    zeros and is skipped.
    """
    if valid is None or bool((valid > 0.5).all()):
        return None
    square = (valid @ valid.transpose(-1, -2)).unsqueeze(1)  # B, 1, N, N
    return validity_mask_to_bias(square)


class QueryBlock(nn.Module):
    """Queries read a key sequence, talk among themselves, and go through an FFN; post-norm residuals.

    ``q = norm1(q + cross_attn(q + q_pe, k + k_pe, k))``, ``q = norm2(q + self_attn(q + q_pe, q + q_pe, q))``,
    ``q = norm3(q + ffn(q))``. Parameter names are the official ones.
    """

    def __init__(self, embed_dim: int, num_heads: int, hidden_dim: int, dropout_attn: float = 0.0, dropout_ffn: float = 0.0) -> None:
        super().__init__()
        self.cross_attn = Attention(embed_dim, num_heads)
        self.dropout1 = nn.Dropout(dropout_attn)
        self.norm1 = nn.LayerNorm(embed_dim)
        self.self_attn = Attention(embed_dim, num_heads)
        self.dropout2 = nn.Dropout(dropout_attn)
        self.norm2 = nn.LayerNorm(embed_dim)
        self.ffn = FeedForward(embed_dim, hidden_dim)
        self.dropout3 = nn.Dropout(dropout_ffn)
        self.norm3 = nn.LayerNorm(embed_dim)
        xavier_init_(self)

    def forward(self, q: Tensor, q_pe: Tensor, k: Tensor, k_pe: Tensor, self_bias: Tensor | None = None) -> Tensor:
        """``q``, ``q_pe``: ``(B, Nq, C)``; ``k``, ``k_pe``: ``(B, Nk, C)``; ``self_bias`` broadcast to the
        self-attention scores ``(B, heads, Nq, Nq)``."""
        q = self.norm1(q + self.dropout1(self.cross_attn(q + q_pe, k + k_pe, k)))
        return self.self_and_ffn(q, q_pe, self_bias)

    def self_and_ffn(self, q: Tensor, q_pe: Tensor, self_bias: Tensor | None = None) -> Tensor:
        """The self-attention and FFN halves (after the cross-attention residual and ``norm1``)."""
        qp = q + q_pe
        q = self.norm2(q + self.dropout2(self.self_attn(qp, qp, q, attn_mask=self_bias)))
        return self.norm3(q + self.dropout3(self.ffn(q)))

    @staticmethod
    def official_key_rules(official: str, ours: str) -> list[tuple[str, str]]:
        """KeyMap rules: the official block at ``official`` (a regex ending with ``.``; it may contain
        groups, e.g. a block number, that ``ours`` refers to) -> ``ours``; the names inside are kept."""
        names = r"((?:cross_attn|self_attn)\.(?:q|k|v|out)_proj|norm[123]|ffn\.lin[12])\.(weight|bias)"
        n = re.compile(official).groups
        return [(official + names, ours + rf"\g<{n + 1}>.\g<{n + 2}>")]


def escape(prefix: str) -> str:
    """``re.escape`` of a key prefix, for KeyMap patterns."""
    return re.escape(prefix)
