"""SeqRank's training loss (``seqrank/SeqRank.py::forward``, training branch), as a readable criterion.

For a batch with GT masks in attention order (index 0 = the object looked at first):

1. **Matching** (:class:`~salrank.training.matcher.HungarianMatcher`, weights ``mask_ce_cost`` /
   ``mask_dice_cost``): each GT object gets one query; ``corr[q] = t + 1`` for the query matched to GT
   ``t``, 0 for the others.
2. **Instance losses** on the matched pairs (means over pairs):
   ``mask_loss`` = point-sampled ``mask_ce_cost`` x BCE + ``mask_dice_cost`` x Dice;
   ``bbox_loss`` = ``bbox_l1_cost`` x L1(cx, cy, h, w) + ``bbox_giou_cost`` x (1 - GIoU) against the
   boxes of the resized GT masks (torchvision ``masks_to_boxes`` / size);
   ``obj_loss`` = ``cls_cost`` x objectness BCE (positive weight ``obj_pos``, negative ``obj_neg``) over
   all queries.
3. **Teacher-forced sequential saliency loss** (``sal_loss``): for step ``i = 0 .. n_max`` (``n_max + 1``
   steps, the last one teaching "stop"), the history is the GT order up to ``i`` (``visits = corr`` where
   ``corr <= i``, else 0), the target is 1 for the query matched to GT ``i`` (none at the last step) and 0
   elsewhere; the SRM is run on that history and the mean BCE over all queries is summed over the steps,
   NaNs replaced by 0, times ``sal_cost``.

The official total is ``mask_loss + bbox_loss + obj_loss + sal_loss`` with the auxiliary losses off
(``LOSS.AUX "disable"``); ``aux=True`` adds the same mask and box losses for every intermediate FOM
prediction (with the final matching), times ``aux_weight``, as the official code would with AUX enabled.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from salrank.training.losses.box_losses import (
    box_cxcyhw_to_xyxy,
    box_l1_giou_loss,
    masks_to_boxes_normalised,
)
from salrank.training.losses.mask_losses import point_sampled_mask_loss
from salrank.training.losses.objectness import objectness_loss
from salrank.training.matcher import HungarianMatcher, Matching

__all__ = ["SeqRankCriterion", "SeqRankLossConfig", "sequential_saliency_loss"]


@dataclass
class SeqRankLossConfig:
    """``cfg.LOSS`` of the official SeqRank configs (``configs/R50.yaml``)."""

    cls_cost: float = 10.0
    mask_ce_cost: float = 5.0
    mask_dice_cost: float = 5.0
    bbox_l1_cost: float = 5.0
    bbox_giou_cost: float = 2.0
    sal_cost: float = 5.0
    obj_pos: float = 1.0
    obj_neg: float = 0.1
    num_points: int = 12544
    aux: bool = False
    """Official ``LOSS.AUX "disable"``; ``True`` adds the intermediate FOM predictions' mask/box losses."""
    aux_weight: float = 0.4


def sequential_saliency_loss(saliency_fn: Callable[[Tensor], Tensor], correspondence: Tensor, num_steps: int) -> Tensor:
    """The teacher-forced saliency loss summed over ``num_steps`` steps (see the module docstring).

    Args:
        saliency_fn: ``visits (B, nq) -> logits (B, nq)`` (the SRM for a visiting history).
        correspondence: ``(B, nq)`` ``t + 1`` for the query matched to GT ``t``, else 0.
        num_steps: ``n_max + 1``.
    """
    total = correspondence.new_zeros(())
    for i in range(num_steps):
        visits = correspondence * correspondence.le(i).to(correspondence.dtype)
        answer = correspondence.eq(i + 1).to(correspondence.dtype)
        logits = saliency_fn(visits).float()
        loss = F.binary_cross_entropy_with_logits(logits, answer, reduction="none")
        total = total + torch.nan_to_num(loss, nan=0.0, posinf=0.0, neginf=0.0).mean()
    return total


class SeqRankCriterion:
    """SeqRank's loss (see the module docstring). Call with the model's outputs and the SRM."""

    def __init__(self, cfg: SeqRankLossConfig | None = None) -> None:
        self.cfg = cfg or SeqRankLossConfig()
        c = self.cfg
        self.matcher = HungarianMatcher(c.mask_ce_cost, c.mask_dice_cost, 1.0, c.num_points)

    def instance_losses(self, masks: Tensor, boxes: Tensor, matching: Matching, gt_masks: Tensor, gt_boxes: Tensor) -> tuple[Tensor, Tensor]:
        """Mean mask and box losses of the matched pairs of one FOM prediction."""
        c = self.cfg
        if len(matching) == 0:
            zero = masks.sum() * 0.0 + boxes.sum() * 0.0
            return zero, zero
        bi, qi, ti = matching.batch_index, matching.query_index, matching.target_index
        mask_loss = point_sampled_mask_loss(masks[bi, qi].float(), gt_masks[bi, ti], c.num_points, c.mask_ce_cost, c.mask_dice_cost).mean()
        pred_boxes = box_cxcyhw_to_xyxy(boxes[bi, qi].float().sigmoid())
        bbox_loss = box_l1_giou_loss(pred_boxes, gt_boxes[bi, ti], c.bbox_l1_cost, c.bbox_giou_cost).mean()
        return mask_loss, bbox_loss

    def __call__(self, fovea: Any, saliency_fn: Callable[[Tensor], Tensor], targets: Sequence[dict[str, Any]]) -> dict[str, Tensor]:
        """Loss terms (already weighted; their sum is the total).

        Args:
            fovea: the FOM output (``predictions[-1]`` with ``masks``, ``objectness``, ``boxes``; the others
                for the auxiliary losses).
            saliency_fn: ``visits -> (B, nq)`` saliency logits (``SeqRank.saliency_logits``).
            targets: per image, ``masks`` ``(n, S, S)`` in attention order.
        """
        c = self.cfg
        final = fovea.predictions[-1]
        b, nq = final.objectness.shape[:2]
        device = final.masks.device
        gt = [t["masks"].to(device) for t in targets]
        matching = self.matcher(final.masks, final.objectness, gt)
        n_max = max((len(m) for m in gt), default=0)
        size = final.masks.shape[-2:] if not gt else gt[0].shape[-2:]
        gt_masks = torch.zeros((b, max(n_max, 1), *size), dtype=torch.uint8, device=device)
        gt_boxes = torch.zeros((b, max(n_max, 1), 4), dtype=torch.float32, device=device)
        for k, m in enumerate(gt):
            if len(m):
                gt_masks[k, : len(m)] = m
                gt_boxes[k, : len(m)] = masks_to_boxes_normalised(m)
        mask_loss, bbox_loss = self.instance_losses(final.masks, final.boxes, matching, gt_masks, gt_boxes)
        corr = matching.correspondence(b, nq)
        obj_loss = objectness_loss(final.objectness.reshape(b, nq).float(), corr.gt(0.5), c.obj_pos, c.obj_neg)
        sal_loss = sequential_saliency_loss(saliency_fn, corr, n_max + 1)
        losses = {"mask_loss": mask_loss, "bbox_loss": bbox_loss, "obj_loss": obj_loss * c.cls_cost, "sal_loss": sal_loss * c.sal_cost}
        if c.aux:
            aux_mask, aux_box = final.masks.new_zeros(()), final.masks.new_zeros(())
            for pred in fovea.predictions[:-1]:
                if pred.masks is None:
                    continue
                m, bx = self.instance_losses(pred.masks, pred.boxes, matching, gt_masks, gt_boxes)
                aux_mask, aux_box = aux_mask + m, aux_box + bx
            losses["aux_mask_loss"] = aux_mask * c.aux_weight
            losses["aux_bbox_loss"] = aux_box * c.aux_weight
        return losses
