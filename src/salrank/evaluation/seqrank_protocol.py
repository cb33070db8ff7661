"""The ``seqrank`` protocol: SeqRank (AAAI'24) / PoseSOR (ECCV'24) ``evaluation/metrics.py``.

This is the protocol behind every number in the SeqRank and PoseSOR papers. Per image it takes the
GT masks most-salient-first and the predicted masks in predicted rank order (index 0 = rank 1) and
computes 13 metrics; the set score is their mean with the official conventions.

Semantics reproduced exactly (see ``docs/readme/evaluation.md`` and the golden tests):

* no prediction -> one all-zero prediction (so ``m = 1``, ``ap = ar = 1e-12``, ``top1 = 0``);
* pixels are foreground when ``> 0.5``; ``IoU = |P and G| / (|P or G| + 1e-6)`` (an exact geometric
  IoU of 1/2 is therefore never a hit);
* ``mae``, ``acc``, ``fbeta`` (beta^2 = 0.3) and ``iou`` are on the binary *union* maps;
* ``ap``/``ar``: Hungarian pairs (``linear_sum_assignment`` on ``1 - IoU``) with ``1 - cost > 0.5``;
* ``sa_sor``: Pearson of (n - gt index, m - pred index) over those pairs, missed GTs appended with
  prediction rank 0 (NaN when n = 1 or nothing matches);
* ``sor``: for each GT the *first* prediction in predicted order with IoU > 0.5; ``(Spearman + 1) / 2``
  with >= 2 records, 1.0 with one, NaN with none;
* ``top1..top5``: IoU(pred[k-1], gt[k-1]) >= 0.5, 0.0 when there are fewer than k predictions,
  ``None`` when there are fewer than k GTs;
* aggregate: ``None`` skipped, NaN counted as 0, ``round((sum + 1e-12) / (count + 1e-12), 4)`` --
  with Python's ``round`` or numpy's, whichever the official code ends up calling (it depends on
  whether the running sum became a ``numpy.float64``; the two differ on half-way cases).

All metrics are derived from the integer counts of :mod:`salrank.evaluation.overlaps`, so one image
costs one pass of bit counting instead of ~100 passes over float maps.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from salrank.evaluation.correlation import numpy_pearson, scipy_spearman
from salrank.evaluation.joints import joint_metrics
from salrank.evaluation.overlaps import MaskInput, MaskSet, OverlapCounts, mask_pair, overlap_counts

EPS = 1e-12
"""The ``eps`` of the official ``Metrics`` class (used by ap/ar and the aggregate)."""
IOU_EPS = 1e-6
"""Added to every IoU denominator by the official ``Metrics.iou``."""
BETA2 = 0.3

SEQRANK_METRICS: tuple[str, ...] = (
    "mae", "acc", "fbeta", "iou", "sa_sor", "sor", "ap", "ar", "top1", "top2", "top3", "top4", "top5",
)  # fmt: skip
"""The 13 metrics of SeqRank's ``Metrics`` (its default ``metrics_of_interest``), in its order."""
JOINT_METRICS: tuple[str, ...] = ("jacc", "jae")
"""PoseSOR's keypoint metrics, computed when the GT has keypoints."""


@dataclass(frozen=True)
class SeqRankMatching:
    """The official ``Metrics.matcher`` output: Hungarian pairs on ``1 - IoU``."""

    gt_ind: np.ndarray
    pred_ind: np.ndarray
    ious: np.ndarray
    """``1 - cost`` of each pair (not bit-identical to the IoU; the official hit test uses this value)."""


def _iou_matrix(c: OverlapCounts) -> np.ndarray:
    """``inter / (union + 1e-6)`` in float64, as ``Metrics.iou`` (rows = GT, columns = predictions)."""
    return c.inter / (c.union + IOU_EPS)


def match(iou: np.ndarray) -> SeqRankMatching:
    """Hungarian matching on ``1 - IoU`` with scipy, exactly as ``Metrics.matcher``."""
    costs = 1.0 - iou
    gt_ind, pred_ind = linear_sum_assignment(costs)
    return SeqRankMatching(gt_ind, pred_ind, 1.0 - costs[gt_ind, pred_ind])


def _sa_sor(n: int, m: int, matching: SeqRankMatching) -> float:
    keep = np.where(matching.ious > 0.5)[0]
    gt_ranks = (n - matching.gt_ind[keep]).astype(int).tolist()
    pred_ranks = (m - matching.pred_ind[keep]).astype(int).tolist()
    present = set(gt_ranks)
    for r in range(1, n + 1):
        if r not in present:
            gt_ranks.append(r)
            pred_ranks.append(0)
    return numpy_pearson(gt_ranks, pred_ranks)


def _sor(iou: np.ndarray) -> float:
    n, m = iou.shape
    hits = iou > 0.5
    gt_ranks: list[int] = []
    pred_ranks: list[int] = []
    for i in range(n):
        row = np.flatnonzero(hits[i])
        if len(row):
            gt_ranks.append(n - i)
            pred_ranks.append(m - int(row[0]))
    if len(gt_ranks) > 1:
        return (scipy_spearman(pred_ranks, gt_ranks) + 1.0) / 2.0
    if len(gt_ranks) == 1:
        return 1.0
    return math.nan


def seqrank_metrics_from_counts(c: OverlapCounts) -> tuple[dict[str, float | None], SeqRankMatching]:
    """The 13 official metrics of one image from its overlap counts (predictions must be non-empty).

    Values keep the Python/numpy float types the official code produces (``numpy.float64`` is a
    ``float`` subclass); :func:`aggregate_seqrank` needs them to round as the official code does.
    """
    n, m = c.inter.shape
    npix = c.num_pixels
    iou = _iou_matrix(c)
    matching = match(iou)

    # Union maps: tp = |Up and Ug|, fp = |Up| - tp, fn = |Ug| - tp.
    tp = float(c.union_inter)
    fp = float(c.pred_union_area - c.union_inter)
    fn = float(c.gt_union_area - c.union_inter)
    xor = fp + fn
    pre = np.float64(tp) / (tp + fp + 1e-6)
    rec = np.float64(tp) / (tp + fn + 1e-6)
    n_hits = np.int64((matching.ious > 0.5).sum())

    out: dict[str, float | None] = {
        "mae": np.float64(xor / npix),
        "acc": 1.0 - xor / float(npix),
        "fbeta": ((1.0 + BETA2) * pre * rec) / (BETA2 * pre + rec + 1e-6),
        "iou": np.int64(c.union_inter) / (np.int64(c.gt_union_area + c.pred_union_area - c.union_inter) + 1e-6),
        "sa_sor": _sa_sor(n, m, matching),
        "sor": _sor(iou),
        "ap": (n_hits + EPS) / (m + EPS),
        "ar": (n_hits + EPS) / (n + EPS),
    }
    for k in range(1, 6):
        if n >= k and m >= k:
            out[f"top{k}"] = 1.0 if iou[k - 1, k - 1] >= 0.5 else 0.0
        elif n >= k:
            out[f"top{k}"] = 0.0
        else:
            out[f"top{k}"] = None
    return out, matching


def seqrank_image_metrics(
    gt_masks: MaskInput | MaskSet,
    pred_masks: MaskInput | MaskSet,
    *,
    height: int | None = None,
    width: int | None = None,
    gt_keypoints: np.ndarray | None = None,
    pred_keypoints: np.ndarray | None = None,
    metrics: Sequence[str] | None = None,
) -> dict[str, float | None]:
    """The official ``Metrics.process`` of one image.

    Args:
        gt_masks: GT masks, most salient first (``(n, H, W)`` array, list of arrays or of COCO RLEs).
        pred_masks: predicted masks in predicted rank order (index 0 = most salient); may be empty.
        height, width: the image size, needed only when a side is an empty list.
        gt_keypoints: ``(n, 17, 3)`` GT keypoints normalised to [0, 1] (x / W, y / H, visibility
            flag), as PoseSOR's mapper builds them; enables ``jacc`` and ``jae``.
        pred_keypoints: ``(m, 17, 3)`` predicted keypoints normalised the same way, with the visibility
            probability; ``None`` (or fewer rows than predictions) means "no skeleton predicted".
        metrics: subset of names to return (default: the 13 of :data:`SEQRANK_METRICS`, plus
            :data:`JOINT_METRICS` when ``gt_keypoints`` is given).

    Returns:
        ``{metric: value}``; a value is ``None`` when the official code returns ``None`` (top-k with
        fewer than k GTs; jacc/jae without a visible GT joint) and may be NaN (sa_sor, sor).

    Raises:
        ValueError: no GT mask (the official code returns ``{}`` and its aggregate then fails).
    """
    gt, pred = mask_pair(gt_masks, pred_masks, height, width)
    if len(gt) == 0:
        raise ValueError("the seqrank protocol needs at least one GT object per image")
    no_prediction = len(pred) == 0
    if no_prediction:
        # Official: ``preds = [np.zeros_like(gts[0])]``.
        pred = MaskSet.from_dense(np.zeros((1, gt.height, gt.width), bool))
    values, matching = seqrank_metrics_from_counts(overlap_counts(gt, pred))
    if gt_keypoints is not None:
        values.update(
            joint_metrics(gt_keypoints, None if no_prediction else pred_keypoints, matching.gt_ind, matching.pred_ind)
        )
    if metrics is not None:
        unknown = [k for k in metrics if k not in values and k not in JOINT_METRICS]
        if unknown:
            raise ValueError(f"unknown seqrank metric(s) {unknown}; known: {list(SEQRANK_METRICS + JOINT_METRICS)}")
        values = {k: values[k] for k in metrics if k in values}
    return values


def seqrank_matching(gt_masks: MaskInput | MaskSet, pred_masks: MaskInput | MaskSet, *,
                     height: int | None = None, width: int | None = None) -> SeqRankMatching:
    """The Hungarian pairs of the official matcher (with the zero-mask substitution for no prediction)."""
    gt, pred = mask_pair(gt_masks, pred_masks, height, width)
    if len(pred) == 0:
        pred = MaskSet.from_dense(np.zeros((1, gt.height, gt.width), bool))
    return match(_iou_matrix(overlap_counts(gt, pred)))


@dataclass(frozen=True)
class MetricAggregate:
    """One aggregated metric of the seqrank protocol."""

    value: float
    """Official value: ``round((sum + 1e-12) / (count + 1e-12), 4)``."""
    unrounded: float
    """The same before rounding."""
    count: int
    """Images that contributed (``None`` skipped; NaN counted as 0)."""


def aggregate_metric(values: Iterable[float | None]) -> MetricAggregate:
    """``Metrics.aggregate`` for one metric: values in image order, as returned per image.

    The running sum starts as a Python ``0.0`` and becomes ``numpy.float64`` as soon as a numpy value
    is added; the official code then calls ``round`` on whichever type results, and numpy's rounding
    (scale, ``rint``, unscale) differs from Python's (exact decimal) on half-way cases. This keeps the
    same types, so it rounds the same way.
    """
    total: float = 0.0
    count = 0.0
    for v in values:
        if v is None:
            continue
        count += 1.0
        if math.isnan(v):
            total += 0.0
        else:
            total += v
    mean = (total + EPS) / (count + EPS)
    return MetricAggregate(value=float(round(mean, 4)), unrounded=float(mean), count=int(count))


def aggregate_seqrank(per_image: Sequence[Mapping[str, float | None]],
                      metrics: Sequence[str] | None = None) -> dict[str, MetricAggregate]:
    """``Metrics.aggregate`` over images (in evaluation order). A metric absent from an image counts as ``None``."""
    if metrics is None:
        names: list[str] = []
        for row in per_image:
            for k in row:
                if k not in names:
                    names.append(k)
        metrics = names
    return {m: aggregate_metric(row.get(m) for row in per_image) for m in metrics}
