"""Objectness loss: BCE with separate weights for matched (positive) and unmatched (negative) queries.

SeqRank and PoseSOR (``LOSS.OBJ_POS 1.0``, ``LOSS.OBJ_NEG 0.1``)::

    loss = mean over all B x nq queries of [ pos_weight * BCE(x, 1) if matched else neg_weight * BCE(x, 0) ]

then multiplied by ``LOSS.CLS_COST`` (10) by the model.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["objectness_loss"]


def objectness_loss(logits: Tensor, positive: Tensor, pos_weight: float = 1.0, neg_weight: float = 0.1) -> Tensor:
    """Weighted BCE of objectness ``logits`` (any shape) against the boolean ``positive`` (same shape), averaged."""
    target = positive.to(logits.dtype)
    pos = F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits), reduction="none")
    neg = F.binary_cross_entropy_with_logits(logits, torch.zeros_like(logits), reduction="none")
    return (pos * pos_weight * target + neg * neg_weight * (1.0 - target)).mean()
