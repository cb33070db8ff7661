"""Which SIS queries go on to pose reasoning and ranking, and how they are packed into slots.

PAI and PDR work on a padded ``(B, n, C)`` tensor of object *slots* with a validity mask ``q_mask``:

* **Inference** (:func:`select_hit_queries`): a query is a *hit* when its objectness probability is at
  least ``min(top-1 probability - 1e-6, obj_threshold)``, so every image keeps at least its best query and,
  when any query clears ``obj_threshold`` (0.1), every query that does. Hits keep their query order.
* **Training**: the Hungarian-matched queries, the query matched to ground-truth object ``t`` in slot ``t``
  (so slots follow the annotation order), padded to the largest object count of the batch. The matcher
  belongs to the training code; :func:`gather_query_slots` packs its ``(batch, query, slot)`` triples.

Official quirk, kept: padded slots get content 0 and a positional encoding drawn with ``torch.randn`` from
the global random generator, and the draw happens for the *whole* ``(B, n, C)`` tensor even when no slot is
padded (then every value is overwritten), so each forward pass consumes random state. Padded slots are
masked out of PAI's attentions but **not** out of PDR (the official PDR ignores ``q_mask``), so in batches
with padding the random PE can leak into the valid objects' ranks; the official evaluation runs one image
per batch, where no slot is padded (salrank's ``predict`` does the same). Pass a ``generator`` to make the
draw reproducible, or ``pad_pe="zeros"`` to avoid it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = ["QuerySlots", "gather_query_slots", "hit_threshold", "select_hit_queries", "slot_positions"]


@dataclass
class QuerySlots:
    """Object slots for PAI/PDR: gathered queries, their PE and validity, and where each came from."""

    q: Tensor
    """``(B, n, C)`` query content (0 in padded slots)."""
    qpe: Tensor
    """``(B, n, C)`` query positional encodings (random in padded slots, see the module docstring)."""
    mask: Tensor
    """``(B, n, 1)`` float, 1 for a real slot and 0 for padding (official ``q_mask``)."""
    batch_index: Tensor
    """``(K,)`` image of each real slot."""
    query_index: Tensor
    """``(K,)`` SIS query of each real slot."""
    slot_index: Tensor
    """``(K,)`` slot position of each real slot."""

    @property
    def num_slots(self) -> int:
        return int(self.q.shape[1])


def hit_threshold(scores: Tensor, obj_threshold: float = 0.1) -> Tensor:
    """``(B, 1, 1)`` per-image threshold on objectness probabilities: ``min(max - 1e-6, obj_threshold)``.

    Computed in the scores' dtype exactly as the official code (``torch.max(...) - 1e-6``, then
    ``torch.minimum`` with ``obj_threshold``).
    """
    prob = scores.sigmoid()
    top1 = torch.max(prob, dim=1, keepdim=True)[0] - 1e-6
    return torch.minimum(top1, torch.ones_like(top1) * obj_threshold)


def slot_positions(batch_index: Tensor) -> Tensor:
    """Slot of each hit: its rank among the hits of the same image (``batch_index`` ascending)."""
    if batch_index.numel() == 0:
        return batch_index.clone()
    first = torch.ones_like(batch_index, dtype=torch.bool)
    first[1:] = batch_index[1:] != batch_index[:-1]
    starts = torch.nonzero(first).squeeze(1)
    counts = torch.diff(torch.cat([starts, starts.new_tensor([batch_index.numel()])]))
    offsets = torch.repeat_interleave(starts, counts)
    return torch.arange(batch_index.numel(), device=batch_index.device) - offsets


def select_hit_queries(scores: Tensor, obj_threshold: float = 0.1) -> tuple[Tensor, Tensor, Tensor, int]:
    """The inference query selection on objectness logits ``scores`` ``(B, nq, 1)``.

    Returns ``(batch_index, query_index, slot_index, n_max)``: the hits in (image, query) order, the slot
    each gets (0, 1, ... within its image) and the largest number of hits of any image.
    """
    hits = scores.sigmoid() >= hit_threshold(scores, obj_threshold)
    n_max = int(hits.sum(dim=1).max()) if hits.numel() else 0
    batch_index, query_index, _ = torch.where(hits)
    return batch_index, query_index, slot_positions(batch_index), n_max


def gather_query_slots(
    q: Tensor,
    qpe: Tensor,
    batch_index: Tensor,
    query_index: Tensor,
    slot_index: Tensor,
    num_slots: int,
    *,
    pad_pe: str = "random",
    generator: torch.Generator | None = None,
) -> QuerySlots:
    """Pack queries ``q[b, query]`` / ``qpe[b, query]`` into slots ``[b, slot]`` of a ``(B, num_slots, C)`` tensor.

    Args:
        q, qpe: ``(B, nq, C)`` SIS queries and their PE.
        batch_index, query_index, slot_index: ``(K,)`` where each selected query goes.
        num_slots: ``n``; at least ``slot_index.max() + 1``.
        pad_pe: ``"random"`` (official: ``randn`` for the whole tensor, see the module docstring) or
            ``"zeros"``.
        generator: random generator for ``"random"`` (default: the global one, as the official code).
    """
    b, _, c = q.shape
    if pad_pe == "random":
        slots_pe = torch.randn((b, num_slots, c), dtype=qpe.dtype, device=qpe.device, generator=generator)
    elif pad_pe == "zeros":
        slots_pe = torch.zeros((b, num_slots, c), dtype=qpe.dtype, device=qpe.device)
    else:
        raise ValueError(f"pad_pe must be 'random' or 'zeros', not {pad_pe!r}")
    slots_q = torch.zeros((b, num_slots, c), dtype=q.dtype, device=q.device)
    slots_q[batch_index, slot_index] = q[batch_index, query_index]
    slots_pe[batch_index, slot_index] = qpe[batch_index, query_index]
    mask = torch.zeros((b, num_slots, 1), dtype=q.dtype, device=q.device)
    mask[batch_index, slot_index, 0] = 1.0
    return QuerySlots(slots_q, slots_pe, mask, batch_index, query_index, slot_index)
