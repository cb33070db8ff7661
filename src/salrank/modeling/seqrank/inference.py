"""SeqRank's step-by-step read-out: rank objects by repeatedly asking the SRM where attention goes next.

Official code: the inference branch of ``seqrank/SeqRank.py::SeqRank.forward``. For every image::

    visits = 0 for every query                     # the visiting history
    for step in 1 .. num_queries:
        logits = SRM(queries, image tokens, visits)
        k = argmax(logits)                         # over ALL queries (see quirk 1)
        visits[k] = step
        saliency = sigmoid(logits[k]); objectness = sigmoid(objectness_logit[k])
        if objectness < 0.001 or saliency < 0.001: stop (this selection is not emitted)
        emit query k as the next rank

The emitted queries, in order, are the ranking (the first one is rank 1). Their masks and boxes come
from the Fovea Module's final prediction (see :mod:`salrank.modeling.seqrank.seqrank`).

Official behaviour kept, with where an option changes it:

1. **re-selection**: the argmax runs over all queries, visited ones included, so the same query (and
   object) can be emitted several times, and re-selecting it overwrites its step number.
   ``ReadoutConfig.exclude_visited`` masks visited queries out of the argmax.
2. **thresholds**: both probabilities are compared with ``0.001`` ("rank as many objects as
   possible", says the official comment), strictly (``<``), in float32; ``ReadoutConfig`` holds them.
3. **at most one selection per query count**: the loop runs at most ``num_queries`` steps
   (``ReadoutConfig.max_steps`` lowers that).
4. **batches**: the official loop runs until every image of the batch has stopped; an image that has
   stopped emits nothing more even if a later step would pass the thresholds. The SRM treats the
   images of a batch independently, so each image gets the result it gets alone. With
   ``drop_finished`` (salrank's default) the SRM is no longer evaluated for images that have stopped.

Memoisation (salrank's default, ``memoize``): the SRM sees the history only through two indicator
vectors, the fixated query (``gaze``) and the visited ones (``prev``), so its logits are a function of
that *state*. A state met before gives the same logits, which are reused instead of recomputed. This
changes no result. It matters because of quirk 1: when the loop re-selects the query it fixates, the
state does not change, so the same query is selected again at every later step (the official code
recomputes the identical SRM pass each time); more generally, once a state repeats, the selections
repeat periodically.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

__all__ = ["RankedQueries", "RankingTrace", "sequential_readout"]


@dataclass
class RankedQueries:
    """The read-out of one image: the emitted queries in rank order (index 0 = rank 1)."""

    query_index: list[int] = field(default_factory=list)
    objectness: list[float] = field(default_factory=list)
    """``sigmoid`` of the FOM objectness logit of each emitted query."""
    saliency: list[float] = field(default_factory=list)
    """``sigmoid`` of the SRM logit at the step the query was emitted."""
    srm_calls: int = 0
    """How many SRM evaluations this image needed (emitted objects + the stopping step, if any)."""

    def __len__(self) -> int:
        return len(self.query_index)


@dataclass
class RankingTrace:
    """Per-step record of the loop (for tests and analysis); rows of stopped images are NaN / -1
    once they are no longer evaluated."""

    saliency_logits: list[Tensor] = field(default_factory=list)
    """Per step: ``(B, nq)`` SRM logits."""
    visits: list[Tensor] = field(default_factory=list)
    """Per step: ``(B, nq)`` visiting history fed to the SRM."""
    selected: list[Tensor] = field(default_factory=list)
    """Per step: ``(B,)`` the argmax query."""

    def stacked(self, image: int = 0) -> dict[str, Tensor]:
        """One image's record as ``[steps, ...]`` tensors."""
        return {
            "saliency_logits": torch.stack([t[image] for t in self.saliency_logits]),
            "visits": torch.stack([t[image] for t in self.visits]),
            "selected": torch.stack([t[image] for t in self.selected]),
        }


SaliencyStep = Callable[[Tensor, Tensor], Tensor]
"""``step(visits_rows (n, nq), rows (n,)) -> saliency logits (n, nq)`` for the images ``rows``."""


@torch.no_grad()
def sequential_readout(
    saliency_step: SaliencyStep,
    objectness_logits: Tensor,
    *,
    max_steps: int | None = None,
    objectness_threshold: float = 0.001,
    saliency_threshold: float = 0.001,
    exclude_visited: bool = False,
    drop_finished: bool = True,
    memoize: bool = True,
    trace: RankingTrace | None = None,
) -> list[RankedQueries]:
    """Run the read-out loop (module docstring) for a batch.

    Args:
        saliency_step: evaluates the SRM for some images of the batch given their visiting history.
        objectness_logits: ``(B, nq)`` or ``(B, nq, 1)`` FOM objectness logits.
        max_steps: at most this many steps; ``None`` = ``nq`` (official).
        objectness_threshold, saliency_threshold: stop thresholds on the probabilities (official 0.001).
        exclude_visited: never select a visited query again (improvement; off = official).
        drop_finished: stop evaluating the SRM for images that have stopped (same results).
        memoize: reuse the SRM logits of a visiting state met before (same results).
        trace: filled with the per-step logits, histories and selections when given.
    """
    obj = objectness_logits[..., 0] if objectness_logits.dim() == 3 else objectness_logits
    bsz, nq = obj.shape
    steps = nq if max_steps is None else int(max_steps)
    if exclude_visited:
        steps = min(steps, nq)  # after nq steps every query has been visited
    visits = torch.zeros(bsz, nq, dtype=torch.float32, device=obj.device)
    finished = torch.zeros(bsz, dtype=torch.bool, device=obj.device)
    results = [RankedQueries() for _ in range(bsz)]
    all_rows = torch.arange(bsz, device=obj.device)
    memo: list[dict[tuple[bytes, bytes], Tensor]] = [{} for _ in range(bsz)]
    for step in range(steps):
        rows = all_rows[~finished] if drop_finished else all_rows
        logits = _evaluate(saliency_step, visits, rows, memo if memoize else None)
        if trace is not None:
            full = torch.full((bsz, nq), float("nan"), device=obj.device)
            full[rows] = logits
            trace.saliency_logits.append(full.cpu())
            trace.visits.append(visits.clone().cpu())
        scores = logits.masked_fill(visits[rows] > 0.5, float("-inf")) if exclude_visited else logits
        pick = scores.argmax(dim=1)
        visits[rows, pick] = float(step + 1)
        saliency = logits.gather(1, pick[:, None])[:, 0].sigmoid()
        objectness = obj[rows, pick].float().sigmoid()
        stop = objectness.lt(objectness_threshold) | saliency.lt(saliency_threshold)
        if trace is not None:
            chosen = torch.full((bsz,), -1, dtype=torch.long, device=obj.device)
            chosen[rows] = pick
            trace.selected.append(chosen.cpu())
        rows_l, pick_l = rows.tolist(), pick.tolist()
        stop_l, sal_l, obj_l = stop.tolist(), saliency.tolist(), objectness.tolist()
        done = finished.tolist()
        for j, b in enumerate(rows_l):
            if done[b]:
                continue
            results[b].srm_calls += 1
            if stop_l[j]:
                finished[b] = True
                continue
            results[b].query_index.append(pick_l[j])
            results[b].objectness.append(obj_l[j])
            results[b].saliency.append(sal_l[j])
        if bool(finished.all()):
            break
    return results


def visit_state(visits_row: Tensor) -> tuple[bytes, bytes]:
    """The SRM's view of one image's history: (fixated queries, visited queries) as packed bit masks
    (the same rule as :func:`~salrank.modeling.seqrank.ranking_module.visit_indicators`)."""
    v = visits_row.detach().cpu().numpy()
    visited = v > 0.5
    latest = v.max() if v.size else 0.0
    gaze = visited & (v == latest)
    prev = visited & (v <= latest)
    return np.packbits(gaze).tobytes(), np.packbits(prev).tobytes()


def _evaluate(
    saliency_step: SaliencyStep, visits: Tensor, rows: Tensor, memo: list[dict[tuple[bytes, bytes], Tensor]] | None
) -> Tensor:
    """SRM logits ``(len(rows), nq)``; with ``memo``, states met before are not evaluated again."""
    if memo is None:
        return saliency_step(visits[rows], rows).float()
    rows_l = rows.tolist()
    keys = [visit_state(visits[b]) for b in rows_l]
    todo = [j for j, (b, key) in enumerate(zip(rows_l, keys)) if key not in memo[b]]
    if todo:
        sub = rows[todo]
        fresh = saliency_step(visits[sub], sub).float()
        for j, value in zip(todo, fresh):
            memo[rows_l[j]][keys[j]] = value
    return torch.stack([memo[b][key] for b, key in zip(rows_l, keys)])
