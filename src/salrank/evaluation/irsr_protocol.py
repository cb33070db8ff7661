"""The ``irsr`` protocol: SA-SOR of Liu et al. (IRSR, TPAMI'21).

Official code: ``metric/SA-SOR.py`` of dragonlee258079/Saliency-Ranking and its clean copy
``misc/sasor.py`` of PoseSOR (``evalu(results, 0.5)``). Used for the SA-SOR columns of IRSR, PSR and
QAGNet. Not comparable with the seqrank protocol's ``sa_sor`` (different matching, ranks and
exclusions).

Per image (n GTs with "higher = more salient" ranks, m predictions with rank scores):

* ``n == 1``: the image is **excluded**;
* GT index = ``1 + #(GT ranks strictly smaller)`` (ascending, ties share the lowest rank);
* ``m == 0``: every GT gets prediction index 0;
* otherwise, with float32 IoU ``|A and B| / |A or B|`` (no epsilon; 0/0 is NaN):

  - each GT takes the prediction with its largest IoU (``argsort(row)[-1]``); an IoU ``< 0.5``
    leaves it unmatched (so exactly 0.5 **is** a match);
  - GTs sharing a prediction: the one with the largest IoU keeps it, the others become unmatched
    (no second choice);
  - only when ``n < m``, the predictions no GT claimed are appended to the claimed ones;
  - over the claimed (GT order) + appended predictions, score index = ``1 + #(scores strictly
    smaller)``; each GT gets its prediction's index, 0 when unmatched;

* zero variance of the prediction indices -> score 0 (the image counts); otherwise Pearson of GT
  and prediction indices; a NaN Pearson (all GT ranks equal) **excludes** the image;
* set value = sum of scores / number of images not excluded (no usable image: the official code
  divides by zero; salrank reports it as an error message).

Tie rule: the official code uses numpy's default ``argsort``, which is not stable (it follows the CPU's
SIMD sort), so equal IoUs are broken in an unspecified way. salrank breaks them as a *stable* sort
would: the **last** of the equal maxima (NaN, from an empty GT and an empty prediction, sorts after
every number). The golden cases flagged ``argsort_tie`` give the same official values either way.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from salrank.evaluation.correlation import min_ranks, numpy_pearson
from salrank.evaluation.overlaps import MaskInput, MaskSet, intersections, mask_pair

IOU_THRESHOLD = 0.5

USED = "used"
EXCLUDED_SINGLE_GT = "excluded_single_gt"
EXCLUDED_NAN = "excluded_nan"
EXCLUDED_NO_GT = "excluded_no_gt"


@dataclass(frozen=True)
class IrsrImageResult:
    """SA-SOR of one image under the irsr protocol."""

    sa_sor: float | None
    """Pearson of the index vectors (0 for zero prediction variance); ``None`` when excluded."""
    status: str
    """``used``, ``excluded_single_gt``, ``excluded_nan`` or ``excluded_no_gt``."""
    gt_index: list[int] = field(default_factory=list)
    rank_index: list[int] = field(default_factory=list)
    """The official ``get_rank_index`` output (prediction index of each GT, 0 = unmatched)."""

    @property
    def used(self) -> bool:
        return self.status == USED


def float32_iou(inter: np.ndarray, union: np.ndarray) -> np.ndarray:
    """``float32(inter) / float32(union)`` as the official ``calc_iou`` (NaN for an empty union)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return (inter.astype(np.float32) / union.astype(np.float32)).astype(np.float64)


def _last_argmax(values: np.ndarray) -> int:
    """``argsort(values, kind="stable")[-1]``: NaN sorts last; among equal maxima the last index."""
    nan = np.flatnonzero(np.isnan(values))
    if len(nan):
        return int(nan[-1])
    return int(len(values) - 1 - np.argmax(values[::-1]))


def match_predictions(iou: np.ndarray) -> np.ndarray:
    """The official ``match``: for each GT its claimed prediction (-1 = none), then the appended ones.

    Returns the official ``matched_ranks`` vector: ``n`` entries (GT order) followed, only when
    ``n < m``, by the unclaimed prediction indices in increasing order.
    """
    n, m = iou.shape
    claimed = np.array([_last_argmax(iou[i]) for i in range(n)], dtype=np.int64)
    for i in range(n):
        if iou[i, claimed[i]] < IOU_THRESHOLD:  # NaN compares False: stays matched, as officially
            claimed[i] = -1
    valid = claimed[claimed != -1]
    if len(set(valid.tolist())) < len(valid):
        for j in set(claimed.tolist()):
            if j < 0:
                continue
            rows = np.flatnonzero(claimed == j)
            if len(rows) > 1:
                keep = rows[_last_argmax(iou[rows, j])]
                claimed[rows[rows != keep]] = -1
    if n < m:
        taken = set(claimed.tolist())
        extra = [j for j in range(m) if j not in taken]
        claimed = np.concatenate([claimed, np.asarray(extra, dtype=np.int64)])
    return claimed


def rank_index(iou: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """The official ``get_rank_index``: prediction index of each GT (0 = unmatched), length n."""
    n = iou.shape[0]
    matched = match_predictions(iou)
    unmatched_gt = np.flatnonzero(matched[:n] == -1)
    claimed = matched[matched >= 0]
    index = min_ranks(np.asarray(scores, dtype=np.float64)[claimed])
    # Official: np.insert(0) at each unmatched GT position (ascending), then truncate to n; the
    # zeros land exactly at the unmatched GT positions and the indices fill the other slots in order.
    out = np.zeros(len(index) + len(unmatched_gt), dtype=np.int64)
    slots = np.ones(len(out), dtype=bool)
    slots[unmatched_gt] = False
    out[slots] = index
    return out[:n]


def irsr_image_sa_sor(
    gt_masks: MaskInput | MaskSet,
    gt_ranks: Sequence[float] | np.ndarray,
    pred_masks: MaskInput | MaskSet,
    scores: Sequence[float] | np.ndarray | None = None,
    *,
    height: int | None = None,
    width: int | None = None,
) -> IrsrImageResult:
    """SA-SOR of one image, as the official ``evalu`` computes it.

    Args:
        gt_masks: GT masks (any order).
        gt_ranks: one value per GT mask, **higher = more salient**; ties allowed.
        pred_masks: predicted masks (any order; only ``scores`` decide the predicted ranking).
        scores: rank score of each prediction, higher = more salient. Default
            ``linspace(1.0, 0.5, m)`` over the given order (PoseSOR's conversion of result files).
        height, width: the image size, needed only when a side is an empty list.
    """
    ranks = np.asarray(gt_ranks, dtype=np.float64).reshape(-1)
    n = len(ranks)
    if n == 1:
        return IrsrImageResult(None, EXCLUDED_SINGLE_GT)
    if n == 0:
        # Official: pandas var/corr of empty series are NaN -> the image drops out of the mean.
        return IrsrImageResult(None, EXCLUDED_NO_GT)
    gt_index = min_ranks(ranks)
    gt, pred = mask_pair(gt_masks, pred_masks, height, width)
    if len(gt) != n:
        raise ValueError(f"{len(gt)} GT masks but {n} GT ranks")
    m = len(pred)
    if m == 0:
        index = np.zeros(n, dtype=np.int64)
    else:
        sc = np.linspace(1.0, 0.5, m) if scores is None else np.asarray(scores, dtype=np.float64).reshape(-1)
        if len(sc) != m:
            raise ValueError(f"{m} predicted masks but {len(sc)} scores")
        inter = intersections(gt, pred)
        union = gt.areas[:, None] + pred.areas[None, :] - inter
        index = rank_index(float32_iou(inter, union), sc)
    if np.all(index == index[0]):
        value: float = 0.0
    else:
        value = numpy_pearson(gt_index.astype(np.float64), index.astype(np.float64))
        if math.isnan(value):
            return IrsrImageResult(None, EXCLUDED_NAN, gt_index.tolist(), index.tolist())
        value = float(value)
    return IrsrImageResult(value, USED, gt_index.tolist(), index.tolist())


@dataclass(frozen=True)
class IrsrAggregate:
    """The irsr protocol's set value."""

    sa_sor: float | None
    """Sum of per-image values / images used; ``None`` when no image is usable."""
    images_used: int
    images: int
    error: str | None = None
    """Why there is no value (the official code raises ``ZeroDivisionError``)."""


def aggregate_irsr(results: Sequence[IrsrImageResult]) -> IrsrAggregate:
    """The official ``evalu`` sum / count over images in evaluation order."""
    total = 0.0
    used = 0
    for r in results:
        if r.used:
            total += r.sa_sor  # type: ignore[operator]
            used += 1
    if used == 0:
        reasons = {}
        for r in results:
            reasons[r.status] = reasons.get(r.status, 0) + 1
        detail = ", ".join(f"{k.replace('excluded_', '').replace('_', ' ')}: {v}" for k, v in sorted(reasons.items()))
        return IrsrAggregate(
            None, 0, len(results),
            error=(
                f"no usable image for the irsr SA-SOR (of {len(results)} images{': ' + detail if detail else ''}); "
                "the protocol excludes images with a single GT object and images whose GT ranks are all equal"
            ),
        )  # fmt: skip
    return IrsrAggregate(total / used, used, len(results))
