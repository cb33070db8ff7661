"""Hungarian matching of object queries to ground-truth objects (SeqRank, PoseSOR).

The official ``hungarianMatcherInPoints`` (SeqRank ``seqrank/loss/matcher.py``, identical in PoseSOR),
per image, without gradients:

1. upsample the query masks bilinearly to the GT size and draw ``num_points`` random pixels (one draw
   shared by every pair of the image);
2. cost[q, t] = ``ce_weight`` x BCE + ``dice_weight`` x Dice of query ``q``'s mask against target ``t``
   on those pixels, **minus** ``sigmoid(objectness_q)`` (``objectness_weight`` = 1);
3. ``scipy.optimize.linear_sum_assignment`` on the ``(nq, n)`` cost: every target gets one query.

There is no box and no class cost. SeqRank uses weights 5 / 5, PoseSOR 1 / 1. The result is returned as
the official flat index tuple ``(batch_index, query_index, target_index)``, ordered by image then by
query (as ``linear_sum_assignment`` returns rows sorted).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from salrank.training.losses.mask_losses import pairwise_mask_cost
from salrank.training.losses.point_sampling import (
    sample_logits_at,
    sample_points,
    take_points,
)

__all__ = ["HungarianMatcher", "Matching"]


@dataclass
class Matching:
    """Matched pairs of a batch, as flat index tensors (the official ``bi, qi, ti``)."""

    batch_index: Tensor
    query_index: Tensor
    target_index: Tensor

    def __len__(self) -> int:
        return int(self.batch_index.numel())

    def correspondence(self, batch_size: int, num_queries: int) -> Tensor:
        """``(B, nq)`` float: ``t + 1`` for the query matched to target ``t``, 0 for unmatched queries
        (the official ``q_corresponse``)."""
        out = torch.zeros((batch_size, num_queries), dtype=torch.float32, device=self.batch_index.device)
        out[self.batch_index, self.query_index] = (self.target_index + 1).to(torch.float32)
        return out


class HungarianMatcher:
    """One-to-one assignment of queries to targets on a point-sampled mask cost minus objectness.

    Args:
        ce_weight, dice_weight: the mask cost weights (``LOSS.MASK_CE_COST``, ``LOSS.MASK_DICE_COST``).
        objectness_weight: weight of ``-sigmoid(objectness)`` (1 in the official code).
        num_points: pixels sampled per image (``LOSS.NUM_POINTS``); all pixels when the map is smaller.
    """

    def __init__(self, ce_weight: float = 5.0, dice_weight: float = 5.0, objectness_weight: float = 1.0, num_points: int = 12544) -> None:
        self.ce_weight = ce_weight
        self.dice_weight = dice_weight
        self.objectness_weight = objectness_weight
        self.num_points = num_points

    def cost_matrix(self, mask_logits: Tensor, objectness: Tensor, targets: Tensor) -> Tensor:
        """``(nq, n)`` cost of one image: ``mask_logits`` ``(nq, h, w)``, ``objectness`` ``(nq,)``, ``targets`` ``(n, H, W)``."""
        h, w = targets.shape[-2:]
        points = sample_points(h, w, self.num_points, mask_logits.device)
        pred = sample_logits_at(mask_logits.float(), points)
        tgt = take_points(targets, points)
        cost = pairwise_mask_cost(pred, tgt, self.ce_weight, self.dice_weight)
        return cost - self.objectness_weight * objectness.float().sigmoid()[:, None]

    @torch.no_grad()
    def __call__(self, mask_logits: Tensor, objectness: Tensor, targets: Sequence[Tensor]) -> Matching:
        """Match a batch.

        Args:
            mask_logits: ``(B, nq, h, w)`` query mask logits (any resolution).
            objectness: ``(B, nq)`` or ``(B, nq, 1)`` objectness logits.
            targets: per image, ``(n_i, H, W)`` binary GT masks (``n_i`` may be 0).
        """
        from scipy.optimize import linear_sum_assignment

        objectness = objectness.reshape(objectness.shape[0], -1)
        device = mask_logits.device
        bi, qi, ti = [], [], []
        for b, tgt in enumerate(targets):
            if len(tgt) == 0:
                continue
            cost = self.cost_matrix(mask_logits[b], objectness[b], tgt.to(device))
            rows, cols = linear_sum_assignment(cost.cpu().numpy())
            bi.append(np.full(len(rows), b))
            qi.append(rows)
            ti.append(cols)
        if not bi:
            empty = torch.zeros(0, dtype=torch.long, device=device)
            return Matching(empty, empty.clone(), empty.clone())

        def cat(parts: list[np.ndarray]) -> Tensor:
            return torch.as_tensor(np.concatenate(parts), dtype=torch.long, device=device)

        return Matching(cat(bi), cat(qi), cat(ti))
