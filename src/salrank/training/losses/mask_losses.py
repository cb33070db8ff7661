"""Mask losses: binary cross-entropy + Dice, per mask or for every (prediction, target) pair.

The official ``batch_mask_loss`` (SeqRank ``seqrank/loss/loss.py``, identical in PoseSOR)::

    bce  = mean over pixels of BCE-with-logits(pred, target)
    dice = 1 - (2 * sum(sigmoid(pred) * target) + 1) / (sum(sigmoid(pred) + target) + 1)
    loss = ce_weight * bce + dice_weight * dice                      # one value per mask

and ``batch_mask_loss_in_points`` evaluates it on :mod:`point_sampling`'s random pixels.
:func:`pairwise_mask_cost` gives the same quantity for every (query, target) pair at once (the
matcher's cost), from point values shared by all pairs, as the official matcher does.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from salrank.training.losses.point_sampling import (
    PointSample,
    sample_logits_at,
    sample_points,
    take_points,
)

__all__ = ["bce_dice_loss", "pairwise_mask_cost", "point_sampled_mask_loss"]


def bce_dice_loss(logits: Tensor, targets: Tensor, ce_weight: float = 1.0, dice_weight: float = 1.0) -> Tensor:
    """Per-mask ``ce_weight * BCE + dice_weight * Dice`` of ``(N, ...)`` logits and binary targets -> ``(N,)``."""
    logits = logits.flatten(1)
    targets = targets.flatten(1).to(logits.dtype)
    probs = logits.sigmoid()
    bce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none").mean(dim=-1)
    dice = 1.0 - (2.0 * (probs * targets).sum(-1) + 1.0) / ((probs + targets).sum(-1) + 1.0)
    return ce_weight * bce + dice_weight * dice


def point_sampled_mask_loss(
    logits: Tensor,
    targets: Tensor,
    num_points: int,
    ce_weight: float = 1.0,
    dice_weight: float = 1.0,
    points: PointSample | None = None,
) -> Tensor:
    """:func:`bce_dice_loss` on ``num_points`` random pixels of the targets' grid -> ``(N,)``.

    ``logits`` ``(N, h, w)`` may be at a lower resolution than ``targets`` ``(N, H, W)``: they are read
    as if upsampled bilinearly to ``H x W`` (the official code upsamples first). ``points`` reuses a draw.
    """
    if logits.shape[0] == 0:
        return logits.new_zeros(0)
    h, w = targets.shape[-2:]
    if points is None:
        points = sample_points(h, w, num_points, logits.device)
    pred = sample_logits_at(logits, points)
    tgt = take_points(targets, points)
    return bce_dice_loss(pred, tgt, ce_weight, dice_weight)


def pairwise_mask_cost(pred_points: Tensor, target_points: Tensor, ce_weight: float = 1.0, dice_weight: float = 1.0) -> Tensor:
    """``(Q, T)``: :func:`bce_dice_loss` of every prediction ``(Q, K)`` against every target ``(T, K)``.

    Computed without forming the ``Q x T x K`` pairs: BCE(x, t) = softplus(x) - x t, so its mean is
    ``(softplus(x).sum - x . t) / K``; Dice needs ``sigmoid(x) . t`` and the two sums.
    """
    k = pred_points.shape[-1]
    x = pred_points.float()
    t = target_points.to(x.dtype)
    bce = (F.softplus(x).sum(-1, keepdim=True) - x @ t.T) / k
    p = x.sigmoid()
    dice = 1.0 - (2.0 * (p @ t.T) + 1.0) / (p.sum(-1, keepdim=True) + t.sum(-1)[None, :] + 1.0)
    return ce_weight * bce + dice_weight * dice
