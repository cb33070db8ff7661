"""Trivial ranking baselines, to tell whether a trained model learned an *order* and not only masks.

Each baseline keeps a model's predicted masks and replaces its order:

* ``random``: a random permutation (seeded);
* ``area``: largest mask first ("big things are seen first");
* ``centre``: mask centroid closest to the image centre first.

Scored with the same protocol as the model, a baseline shows how much of a metric comes from the
segmentation alone; a model that learned the attention order beats all three.

:func:`pairwise_order_accuracy` measures the order alone: over the pairs of GT objects that both have
a predicted mask (IoU > 0.5, the first such prediction in predicted order, as SOR does), the share
predicted in the right order. Chance is 0.5 whatever the masks; it is blind to missed objects and to
duplicates, which SA-SOR punishes.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from salrank.evaluation.overlaps import MaskSet, intersections
from salrank.structures import RankedInstances

__all__ = ["BASELINES", "pairwise_order_accuracy", "reorder"]

BASELINES = ("random", "area", "centre")


def reorder(predictions: Mapping[str, RankedInstances], how: str, seed: int = 0) -> dict[str, RankedInstances]:
    """The same predicted objects in the baseline order ``how`` (one of :data:`BASELINES`)."""
    if how not in BASELINES:
        raise ValueError(f"unknown baseline {how!r}; choose from {', '.join(BASELINES)}")
    rng = np.random.default_rng(seed)
    out = {}
    for name in sorted(predictions):
        result = predictions[name]
        n = len(result)
        if n == 0:
            out[name] = result
            continue
        masks = result.masks
        if how == "random":
            order = rng.permutation(n)
        elif how == "area":
            order = np.argsort(-masks.reshape(n, -1).sum(1), kind="stable")
        else:
            h, w = masks.shape[1:]
            dist = []
            for m in masks:
                ys, xs = np.nonzero(m)
                dist.append(np.hypot(xs.mean() - w / 2, ys.mean() - h / 2) if len(xs) else np.inf)
            order = np.argsort(np.asarray(dist), kind="stable")
        picked = result.select(order)
        picked.saliency = np.linspace(1.0, 0.5, n).astype(np.float32)
        out[name] = picked
    return out


def _first_hits(gt_masks: np.ndarray, pred_masks: np.ndarray, threshold: float = 0.5) -> list[int | None]:
    """For each GT mask, the index of the first prediction with IoU > ``threshold`` (``None``: missed)."""
    if len(pred_masks) == 0:
        return [None] * len(gt_masks)
    gt, pred = MaskSet.from_dense(gt_masks), MaskSet.from_dense(pred_masks)
    inter = intersections(gt, pred)
    union = gt.areas[:, None] + pred.areas[None, :] - inter
    iou = inter.astype(np.float32) / np.maximum(union, 1).astype(np.float32)
    return [int(np.argmax(row > threshold)) if (row > threshold).any() else None for row in iou]


def pairwise_order_accuracy(dataset, predictions: Mapping[str, RankedInstances]) -> tuple[float, int]:
    """Share of GT object pairs (both found) that the predictions order like the GT, and the pair count.

    Args:
        dataset: a :class:`~salrank.structures.SORDataset` (salient GT instances most salient first;
            tied GT ranks are skipped).
        predictions: ``{image_id: RankedInstances}`` at each image's size.
    """
    right = total = 0
    for img in dataset.images:
        result = predictions.get(img.image_id)
        if result is None or len(img.instances) < 2:
            continue
        hits = _first_hits(img.gt_masks().astype(bool), np.asarray(result.masks, bool))
        ranks = [inst.rank for inst in img.instances]
        for i in range(len(hits)):
            for j in range(i + 1, len(hits)):
                if hits[i] is None or hits[j] is None or ranks[i] == ranks[j] or hits[i] == hits[j]:
                    continue
                total += 1
                right += (hits[i] < hits[j]) == (ranks[i] < ranks[j])
    return (right / total if total else float("nan")), total
