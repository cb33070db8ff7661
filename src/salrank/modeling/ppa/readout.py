"""PPA's greedy rank read-out: from per-detection rank logits to at most ``num_ranks`` ranked objects.

The logits are turned into probabilities with a softmax over the *detections* (each rank column is a
distribution over the objects of the image). Going from the most salient rank class (``num_ranks - 1``)
down to 0, the detection with the highest probability in that column receives the rank when that
probability exceeds ``threshold`` (0.1), and is then taken out of the competition for the remaining
ranks. Everything else stays unranked (-1). A rank class can therefore be skipped (no grey level for it
in the rank map) while a lower one is still given.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["greedy_rank_readout"]


def greedy_rank_readout(logits: Tensor, threshold: float = 0.1) -> tuple[Tensor, Tensor]:
    """Official rank classes for the detections of one image.

    Args:
        logits: ``(N, R)`` rank logits; column ``R - 1`` is the most salient rank.
        threshold: minimum probability for a rank to be given.

    Returns:
        ``ranks`` (``int64`` ``(N,)``, ``R - 1`` = most salient, -1 = unranked) and the probability with
        which each rank was given (0 for unranked detections).
    """
    n, num_ranks = logits.shape
    ranks = torch.full((n,), -1, dtype=torch.int64)
    chosen = torch.zeros(n, dtype=logits.dtype)
    if n == 0:
        return ranks.to(logits.device), chosen.to(logits.device)
    probs = torch.softmax(logits.detach(), dim=0).cpu()
    for r in range(num_ranks - 1, -1, -1):
        i = int(probs[:, r].argmax())  # first maximum on ties
        p = probs[i, r]
        if p > threshold:
            ranks[i] = r
            chosen[i] = p
            probs[i, :] = -float("inf")
    return ranks.to(logits.device), chosen.to(logits.device)
