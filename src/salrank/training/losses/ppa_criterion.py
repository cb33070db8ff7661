"""PPA's training loss: FCOS detection + mask + MaskIoU + rank, all with the official weights (1).

The terms, with the official names (``centermask/modeling``):

* ``loss_fcos_cls``, ``loss_fcos_loc``, ``loss_fcos_ctr``: FCOS's focal, GIoU and centerness losses on
  every pyramid location (:mod:`.fcos_losses`);
* ``loss_mask``: per-pixel BCE of the 28x28 mask logits of the foreground proposals against their GT
  mask cropped and resized into the proposal box (:func:`mask_targets`), mean over all pixels of all
  foreground proposals of the batch;
* ``loss_maskiou``: ``0.5 x (predicted IoU - IoU target)^2`` averaged over the proposals whose target is
  positive (:func:`maskiou_targets`, :func:`maskiou_loss`), times ``MASKIOU_LOSS_WEIGHT`` (1);
* ``sor_loss``: cross-entropy of the rank logits against the rank class of each foreground proposal's GT
  object (4 = most salient), mean over the foreground proposals of the batch.

The proposal labelling and sampling that decide which proposals are foreground happen in the model's
training forward (:mod:`salrank.modeling.ppa.training`).

Differences from the official code, both from working on bitmaps instead of polygons: the official
mask targets rasterise the GT *polygon* into the box (detectron2 ``PolygonMasks.crop_and_resize``); here
the GT *bitmap* is RoIAligned into it (``BitMasks.crop_and_resize``: aligned RoIAlign, threshold 0.5),
which detectron2 itself uses for bitmap annotations. The MaskIoU target needs the part of the GT object
inside the box; the official code rasterises the shifted polygon on a box-sized canvas, here it is the
number of GT mask pixels whose centre lies inside the box.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from salrank.errors import InputError
from salrank.modeling.ppa.training import PPATrainOutputs, PPATrainTargets, rank_classes_from_ranks
from salrank.ops import roi_align
from salrank.ops.boxes import nonempty_boxes
from salrank.training.losses.fcos_losses import (
    fcos_losses,
    fcos_size_ranges,
    fcos_targets,
)

__all__ = [
    "PPACriterion",
    "PPALossConfig",
    "mask_bce_loss",
    "mask_fraction_in_boxes",
    "mask_targets",
    "maskiou_loss",
    "maskiou_targets",
    "ppa_targets",
    "rank_loss",
]


@dataclass
class PPALossConfig:
    """Loss parameters and weights (the official values: ``MODEL.FCOS.*``, ``MASKIOU_LOSS_WEIGHT``)."""

    focal_alpha: float = 0.25
    focal_gamma: float = 2.0
    center_sampling_radius: float = 1.5
    """FCOS centre-sampling radius in strides (``CENTER_SAMPLE: True``, ``POS_RADIUS``); 0 = whole box."""
    sizes_of_interest: tuple[float, ...] = (64, 128, 256, 512)
    """FCOS regression-range limits between consecutive levels (``SIZES_OF_INTEREST``)."""
    fcos_weight: float = 1.0
    """Weight of the three FCOS terms (the official ``DET_WEIGHTS`` is read but never applied: 1)."""
    mask_weight: float = 1.0
    maskiou_weight: float = 1.0
    """``MASKIOU_LOSS_WEIGHT``."""
    rank_weight: float = 1.0
    """Weight of the rank cross-entropy (``sor_loss``; 1 in the official code)."""


def ppa_targets(target: dict[str, Any], image_size: tuple[int, int], num_ranks: int = 5) -> PPATrainTargets:
    """A training sample's targets (normalised boxes, masks, ranks 1 = first) in network-input pixels.

    Boxes come from the sample's normalised ``boxes`` (the annotation box, else the mask's) times the
    image size; objects whose box is empty are dropped, as detectron2's ``filter_empty_instances``.
    """
    h, w = image_size
    boxes = target["boxes"].float() * torch.tensor([w, h, w, h], dtype=torch.float32, device=target["boxes"].device)
    masks = target["masks"]
    if masks.shape[-2:] != (h, w):
        raise InputError(f"GT masks are {tuple(masks.shape[-2:])} but the image is {(h, w)}", item=str(target.get("image_id")))
    keep = nonempty_boxes(boxes, 1e-5)
    ranks = rank_classes_from_ranks(target["ranks"], num_ranks)
    return PPATrainTargets(boxes=boxes[keep], rank_classes=ranks[keep], masks=masks[keep])


def mask_targets(gt_masks: Tensor, boxes: Tensor, matched: Tensor, size: int = 28) -> Tensor:
    """``(P, size, size)`` ``bool``: each proposal's GT mask cropped to its box and resized (aligned RoIAlign, >= 0.5).

    Args:
        gt_masks: ``(M, H, W)`` binary GT masks of the image.
        boxes: ``(P, 4)`` proposal boxes in pixels.
        matched: ``(P,)`` GT index of each proposal.
    """
    if boxes.shape[0] == 0:
        return torch.zeros((0, size, size), dtype=torch.bool, device=boxes.device)
    rois = torch.cat((matched[:, None].to(boxes.dtype), boxes), dim=1)
    crops = roi_align(gt_masks[:, None].float(), rois.float(), size, 1.0, 0, aligned=True)
    return crops[:, 0] >= 0.5


def mask_fraction_in_boxes(gt_masks: Tensor, boxes: Tensor, matched: Tensor) -> Tensor:
    """``(P,)`` fraction of each matched GT mask's pixels whose centre lies inside the proposal box (in [0, 1]).

    Pixel ``(i, j)`` (centre ``(j + 0.5, i + 0.5)``) counts when its centre is strictly inside the box;
    the sums come from one integral image per GT mask.
    """
    if boxes.shape[0] == 0:
        return boxes.new_zeros(0)
    m = gt_masks.float()
    h, w = m.shape[-2:]
    integral = F.pad(m.cumsum(1).cumsum(2), (1, 0, 1, 0))  # [:, y, x] = sum over rows < y, columns < x
    x_lo = (torch.floor(boxes[:, 0] - 0.5) + 1).clamp(0, w).long()
    y_lo = (torch.floor(boxes[:, 1] - 0.5) + 1).clamp(0, h).long()
    x_hi = torch.maximum(torch.ceil(boxes[:, 2] - 0.5).clamp(0, w).long(), x_lo)
    y_hi = torch.maximum(torch.ceil(boxes[:, 3] - 0.5).clamp(0, h).long(), y_lo)
    inside = integral[matched, y_hi, x_hi] - integral[matched, y_lo, x_hi] - integral[matched, y_hi, x_lo] + integral[matched, y_lo, x_lo]
    area = integral[matched, h, w]
    return (inside / area.clamp(min=1e-10)).clamp(0.0, 1.0)


@torch.no_grad()
def maskiou_targets(mask_logits: Tensor, targets: Tensor, fraction_in_box: Tensor) -> Tensor:
    """``(P,)`` IoU between each predicted mask (``logit > 0``) and its *whole* GT object, measured in the 28x28 box frame.

    The GT object's full area in that frame is the area of its crop divided by the fraction of the
    object that lies inside the box (at least 1e-10); the union is at least 1 (the official
    ``mask_rcnn_loss`` with ``MASKIOU_ON``).
    """
    pred = mask_logits > 0
    gt = targets.float()
    full_area = gt.sum(dim=(1, 2)) / fraction_in_box.clamp(min=1e-10)
    overlap = (pred & targets).sum(dim=(1, 2)).float()
    union = (pred.sum(dim=(1, 2)).float() + full_area - overlap).clamp(min=1.0)
    return overlap.clamp(min=0.0) / union


def mask_bce_loss(mask_logits: Tensor, targets: Tensor) -> Tensor:
    """Mean per-pixel BCE of ``(P, M, M)`` mask logits against ``bool`` targets (0 with a graph when ``P = 0``)."""
    if mask_logits.shape[0] == 0:
        return mask_logits.sum() * 0.0
    return F.binary_cross_entropy_with_logits(mask_logits, targets.to(mask_logits.dtype), reduction="mean")


def maskiou_loss(pred: Tensor, target: Tensor) -> Tensor:
    """``sum 0.5 (pred - target)^2 / n`` over the ``n`` proposals with a positive target (0 when none)."""
    positive = target > 0
    n = int(positive.sum())
    if n == 0:
        return pred.sum() * 0.0
    return (0.5 * (pred[positive] - target[positive].to(pred.dtype)) ** 2).sum() / n


def rank_loss(logits: Tensor, rank_classes: Tensor) -> Tensor:
    """Cross-entropy of ``(P, num_ranks)`` rank logits against rank classes, mean over proposals (0 when ``P = 0``)."""
    if logits.shape[0] == 0:
        return logits.sum() * 0.0
    return F.cross_entropy(logits, rank_classes)


class PPACriterion:
    """The PPA loss of a batch (see the module docstring).

    ``criterion(outputs, targets)`` takes the model's :class:`PPATrainOutputs` and the per-image
    :class:`PPATrainTargets` (with masks) and returns the weighted loss terms.
    """

    def __init__(self, cfg: PPALossConfig | None = None) -> None:
        self.cfg = cfg if cfg is not None else PPALossConfig()
        self.size_ranges = fcos_size_ranges(self.cfg.sizes_of_interest)

    def fcos(self, outputs: PPATrainOutputs, targets: list[PPATrainTargets]) -> dict[str, Tensor]:
        """The FCOS terms over all locations of all images."""
        logits, reg, ctr = outputs.fcos
        num_classes = logits[0].shape[1]
        radius = self.cfg.center_sampling_radius if self.cfg.center_sampling_radius > 0 else None
        all_logits, all_reg, all_ctr, all_labels, all_reg_t = [], [], [], [], []
        for i, target in enumerate(targets):
            positive, _, reg_t = fcos_targets(outputs.locations, outputs.strides, target.boxes, self.size_ranges, radius)
            all_labels.append(torch.where(positive, 0, num_classes))  # one foreground class: "salient object"
            all_reg_t.append(reg_t)
            all_logits.append(torch.cat([lg[i].reshape(num_classes, -1).t() for lg in logits]))
            all_reg.append(torch.cat([rg[i].reshape(4, -1).t() for rg in reg]))
            all_ctr.append(torch.cat([ct[i].reshape(-1) for ct in ctr]))
        losses = fcos_losses(
            torch.cat(all_logits).float(),
            torch.cat(all_reg).float(),
            torch.cat(all_ctr).float(),
            torch.cat(all_labels),
            torch.cat(all_reg_t),
            self.cfg.focal_alpha,
            self.cfg.focal_gamma,
        )
        return {k: v * self.cfg.fcos_weight for k, v in losses.items()}

    def roi(self, outputs: PPATrainOutputs, targets: list[PPATrainTargets]) -> dict[str, Tensor]:
        """The mask, MaskIoU and rank terms over the foreground proposals of all images."""
        logits, mask_t, iou_pred, iou_t, sor, ranks = [], [], [], [], [], []
        for roi, target in zip(outputs.rois, targets):
            if roi.proposal_boxes.shape[0] == 0:
                continue
            if target.masks is None:
                raise ValueError("PPA's mask loss needs the GT masks (PPATrainTargets.masks)")
            size = roi.mask_logits.shape[-1]
            t = mask_targets(target.masks, roi.proposal_boxes, roi.matched_gt, size)
            fraction = mask_fraction_in_boxes(target.masks, roi.proposal_boxes, roi.matched_gt)
            logits.append(roi.mask_logits)
            mask_t.append(t)
            iou_pred.append(roi.maskiou)
            iou_t.append(maskiou_targets(roi.mask_logits.detach(), t, fraction))
            sor.append(roi.sor_logits)
            ranks.append(roi.rank_targets)
        if not logits:  # no foreground proposal in the batch (no GT): zero terms that still touch the heads' outputs
            zero = outputs.fcos[0][0].sum() * 0.0
            for r in outputs.rois:
                zero = zero + (r.mask_logits.sum() + r.maskiou.sum() + r.sor_logits.sum()) * 0.0
            return {"loss_mask": zero, "loss_maskiou": zero, "sor_loss": zero}
        mask_logits = torch.cat(logits).float()
        return {
            "loss_mask": self.cfg.mask_weight * mask_bce_loss(mask_logits, torch.cat(mask_t)),
            "loss_maskiou": self.cfg.maskiou_weight * maskiou_loss(torch.cat(iou_pred).float(), torch.cat(iou_t)),
            "sor_loss": self.cfg.rank_weight * rank_loss(torch.cat(sor).float(), torch.cat(ranks)),
        }

    def __call__(self, outputs: PPATrainOutputs, targets: list[PPATrainTargets]) -> dict[str, Tensor]:
        return {**self.fcos(outputs, targets), **self.roi(outputs, targets)}
