"""FCOS's training targets and losses (Tian et al., ICCV 2019, as CenterMask2 trains it for PPA).

**Targets** (:func:`fcos_targets`). A location ``(x, y)`` of pyramid level ``l`` is positive for a GT box
when

* it lies inside the box's *centre region*: the square of half-side ``stride_l x radius`` (1.5) around
  the box centre, cut to the box (``CENTER_SAMPLE``), or inside the box itself when centre sampling is
  off;
* and the largest of its four distances to the box sides lies in the level's size range: with
  ``SIZES_OF_INTEREST`` [64, 128, 256, 512] the ranges are [-1, 64], [64, 128], [128, 256],
  [256, 512], [512, inf] for P3..P7 (both ends inclusive).

A location positive for several boxes takes the one of smallest area (the first on ties). Its box
target is the distances ``(l, t, r, b)`` to that box, divided by the level's stride.

**Losses** (:func:`fcos_losses`), each normalised as the official ``fcos_losses``:

* classification: sigmoid focal loss (alpha 0.25, gamma 2) summed over all locations and classes,
  divided by the number of positives (averaged over processes, at least 1);
* box: GIoU loss on the ``(l, t, r, b)`` distances (:func:`fcos_giou_loss`) of the positives, weighted
  by their centerness targets and divided by the sum of those targets;
* centerness: BCE of the centerness logit against ``sqrt(min(l, r) / max(l, r) x min(t, b) / max(t, b))``,
  summed over positives and divided by the number of positives.

The official box loss (CenterMask2's ``IOULoss``) smooths the IoU as ``(I + 1) / (U + 1)`` on distances
in *stride units*; the corner-box GIoU of :mod:`.box_losses` (``eps`` 1e-7, no smoothing) differs
noticeably at those scales, so this module has its own, exact one.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from salrank.training.distributed import reduce_mean

__all__ = [
    "FCOS_INF",
    "centerness_targets",
    "fcos_giou_loss",
    "fcos_losses",
    "fcos_size_ranges",
    "fcos_targets",
    "sigmoid_focal_loss",
]

FCOS_INF = 100000000.0
"""The official "infinity" of the last size range and of the area used to mark non-candidates."""


def fcos_size_ranges(sizes_of_interest: Sequence[float]) -> list[tuple[float, float]]:
    """Per-level ``(low, high)`` regression ranges: ``[-1, s0], [s0, s1], ..., [s_last, INF]``."""
    out, low = [], -1.0
    for s in sizes_of_interest:
        out.append((low, float(s)))
        low = float(s)
    out.append((low, FCOS_INF))
    return out


def _center_regions(gt_boxes: Tensor, level_strides: Tensor, radius: float) -> Tensor:
    """``(K, M, 4)`` centre regions: a square of half-side ``stride x radius`` around each box centre, cut to the box."""
    cx = (gt_boxes[:, 0] + gt_boxes[:, 2]) / 2
    cy = (gt_boxes[:, 1] + gt_boxes[:, 3]) / 2
    half = (level_strides * radius)[:, None]  # (K, 1)
    x1 = torch.maximum(cx[None] - half, gt_boxes[None, :, 0])
    y1 = torch.maximum(cy[None] - half, gt_boxes[None, :, 1])
    x2 = torch.minimum(cx[None] + half, gt_boxes[None, :, 2])
    y2 = torch.minimum(cy[None] + half, gt_boxes[None, :, 3])
    return torch.stack((x1, y1, x2, y2), dim=-1)


def fcos_targets(
    locations: Sequence[Tensor],
    strides: Sequence[int],
    gt_boxes: Tensor,
    size_ranges: Sequence[tuple[float, float]],
    center_sampling_radius: float | None = 1.5,
) -> tuple[Tensor, Tensor, Tensor]:
    """FCOS targets of one image (see the module docstring).

    Args:
        locations: per level ``(H_l * W_l, 2)`` location coordinates ``(x, y)`` in pixels.
        strides: per level stride.
        gt_boxes: ``(M, 4)`` GT boxes ``x1, y1, x2, y2`` in pixels.
        size_ranges: per level ``(low, high)`` (:func:`fcos_size_ranges`).
        center_sampling_radius: centre-sampling radius in strides; ``None`` = the whole box.

    Returns:
        ``(positive, matched, reg_targets)`` over all locations (levels concatenated): ``bool`` ``(K,)``,
        the matched GT index ``(K,)`` (meaningless where not positive) and the ``(K, 4)`` distances
        ``l, t, r, b`` to the matched box divided by the level's stride.
    """
    counts = [int(loc.shape[0]) for loc in locations]
    locs = torch.cat(list(locations), dim=0).to(gt_boxes.dtype if gt_boxes.is_floating_point() else torch.float32)
    k = locs.shape[0]
    device = locs.device
    level_strides = torch.cat([torch.full((n,), float(s), device=device) for n, s in zip(counts, strides)])
    ranges = torch.cat([torch.tensor([r], device=device).expand(n, 2) for n, r in zip(counts, size_ranges)])
    if gt_boxes.shape[0] == 0:
        return torch.zeros(k, dtype=torch.bool, device=device), torch.zeros(k, dtype=torch.int64, device=device), locs.new_zeros((k, 4))
    boxes = gt_boxes.to(locs.dtype)
    xs, ys = locs[:, 0:1], locs[:, 1:2]
    dist_to_box = torch.stack(
        (xs - boxes[None, :, 0], ys - boxes[None, :, 1], boxes[None, :, 2] - xs, boxes[None, :, 3] - ys), dim=2
    )  # (K, M, 4)
    if center_sampling_radius is not None and center_sampling_radius > 0:
        region = _center_regions(boxes, level_strides, center_sampling_radius)
        inside = (
            torch.stack((xs - region[..., 0], ys - region[..., 1], region[..., 2] - xs, region[..., 3] - ys), dim=2).min(dim=2).values > 0
        )
    else:
        inside = dist_to_box.min(dim=2).values > 0
    reach = dist_to_box.max(dim=2).values
    in_range = (reach >= ranges[:, 0:1]) & (reach <= ranges[:, 1:2])
    area = ((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]))[None].expand(k, -1).clone()
    area[~(inside & in_range)] = FCOS_INF
    min_area, matched = area.min(dim=1)
    positive = min_area < FCOS_INF
    reg = dist_to_box[torch.arange(k, device=device), matched] / level_strides[:, None]
    return positive, matched, reg


def centerness_targets(reg_targets: Tensor) -> Tensor:
    """``sqrt(min(l, r) / max(l, r) * min(t, b) / max(t, b))`` of ``(N, 4)`` ``l, t, r, b`` distances."""
    if reg_targets.shape[0] == 0:
        return reg_targets.new_zeros(0)
    lr = reg_targets[:, [0, 2]]
    tb = reg_targets[:, [1, 3]]
    ratio = (lr.min(dim=1).values / lr.max(dim=1).values) * (tb.min(dim=1).values / tb.max(dim=1).values)
    return torch.sqrt(ratio)


def sigmoid_focal_loss(logits: Tensor, targets: Tensor, alpha: float = 0.25, gamma: float = 2.0) -> Tensor:
    """Element-wise sigmoid focal loss (Lin et al.; fvcore's ``sigmoid_focal_loss``), not reduced.

    ``loss = -alpha_t (1 - p_t)^gamma log(p_t)`` with ``p_t = p`` where the target is 1 and ``1 - p``
    where it is 0, ``alpha_t = alpha`` / ``1 - alpha`` likewise (no weighting when ``alpha < 0``).
    """
    p = torch.sigmoid(logits)
    ce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    p_t = p * targets + (1 - p) * (1 - targets)
    loss = ce * ((1 - p_t) ** gamma)
    if alpha >= 0:
        loss = (alpha * targets + (1 - alpha) * (1 - targets)) * loss
    return loss


def fcos_giou_loss(pred: Tensor, target: Tensor) -> Tensor:
    """``1 - GIoU`` of boxes given as ``(N, 4)`` distances ``l, t, r, b`` from the same location -> ``(N,)``.

    The official ``IOULoss("giou")``: the IoU is smoothed as ``(I + 1) / (U + 1)``; the enclosing box
    is spanned by the larger distance on each side.
    """
    pl, pt, pr, pb = pred.unbind(1)
    tl, tt, tr, tb = target.unbind(1)
    target_area = (tl + tr) * (tt + tb)
    pred_area = (pl + pr) * (pt + pb)
    inter = (torch.min(pl, tl) + torch.min(pr, tr)) * (torch.min(pb, tb) + torch.min(pt, tt))
    enclose = (torch.max(pl, tl) + torch.max(pr, tr)) * (torch.max(pb, tb) + torch.max(pt, tt))
    union = target_area + pred_area - inter
    iou = (inter + 1.0) / (union + 1.0)
    giou = iou - (enclose - union) / enclose
    return 1.0 - giou


def fcos_losses(
    cls_logits: Tensor,
    box_pred: Tensor,
    ctr_logits: Tensor,
    labels: Tensor,
    reg_targets: Tensor,
    focal_alpha: float = 0.25,
    focal_gamma: float = 2.0,
) -> dict[str, Tensor]:
    """The three FCOS losses over all locations of a batch.

    Args:
        cls_logits: ``(K, C)`` class logits.
        box_pred: ``(K, 4)`` predicted distances (stride units).
        ctr_logits: ``(K,)`` centerness logits.
        labels: ``(K,)`` ``int64`` class of each location, ``C`` for background.
        reg_targets: ``(K, 4)`` target distances (stride units; only read at positives).
        focal_alpha, focal_gamma: focal-loss parameters.

    Returns:
        ``{"loss_fcos_cls", "loss_fcos_loc", "loss_fcos_ctr"}`` (see the module docstring).
    """
    num_classes = cls_logits.shape[1]
    pos = torch.nonzero(labels != num_classes).squeeze(1)
    ctr_target = centerness_targets(reg_targets[pos])
    # the official normalisers: reduce_sum / num_gpus of the positives and of their centerness targets
    means = reduce_mean({"num_pos": pos.numel(), "ctr_sum": float(ctr_target.sum())}, cls_logits.device)
    num_pos_avg = max(means["num_pos"], 1.0)
    ctr_norm = max(means["ctr_sum"], 1e-6)
    class_target = torch.zeros_like(cls_logits)
    class_target[pos, labels[pos]] = 1.0
    cls_loss = sigmoid_focal_loss(cls_logits, class_target, focal_alpha, focal_gamma).sum() / num_pos_avg
    loc_loss = (fcos_giou_loss(box_pred[pos], reg_targets[pos]) * ctr_target).sum() / ctr_norm
    ctr_loss = F.binary_cross_entropy_with_logits(ctr_logits[pos], ctr_target, reduction="sum") / num_pos_avg
    return {"loss_fcos_cls": cls_loss, "loss_fcos_loc": loc_loss, "loss_fcos_ctr": ctr_loss}
