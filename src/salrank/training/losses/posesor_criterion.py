"""PoseSOR's training loss (``network/PoseSOR.py::forward``, training branch), as a readable criterion.

1. **SIS** (the instance decoder): Hungarian matching with mask CE/Dice weights 1/1 (``LOSS.MASK_CE_COST``,
   ``MASK_DICE_COST``) minus objectness; ``mask_loss`` = point-sampled BCE + Dice of the matched queries
   x ``mask_cost`` (5); ``obj_loss`` = objectness BCE (positive 1 / negative 0.1) x ``cls_cost`` (10).
2. The matched queries go into slots in GT order (query matched to GT ``t`` -> slot ``t``, padded to the
   batch's largest object count; padded slots get a random PE, as the official code), then PAI and PDR run.
3. **PAI** on the slots of real objects:
   ``joint_loss`` = SmoothL1(sigmoid(keypoint xy), GT xy / (W, H)) over labelled joints (v > 0.5) x
   ``joint_cost`` (1000); ``joint_cls_loss`` = BCE(visibility logit, v > 0.5) over all joints of the
   matched objects x ``joint_cls_cost`` (10); ``heatmap_loss`` = :func:`heatmap_focal_loss` x
   ``heatmap_cost`` (100); ``refined_mask_loss`` = point-sampled BCE + Dice of PAI's masks x ``mask_cost``;
   ``bbox_loss`` = L1(cx, cy, h, w) x ``bbox_l1_cost`` + GIoU x ``bbox_giou_cost`` against the annotation
   boxes (x 1).
4. **PDR**: ``partition_loss`` = point-sampled BCE + Dice of the "where attention goes next" maps against
   the next-object targets (the last object's target is the background) x ``partition_cost`` (5);
   ``rank_loss`` = cross-entropy of the 20-way rank logits against the visiting order x ``rank_cost`` (0.1).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from salrank.training.losses.box_losses import box_cxcyhw_to_xyxy, box_l1_giou_loss
from salrank.training.losses.mask_losses import point_sampled_mask_loss
from salrank.training.losses.objectness import objectness_loss
from salrank.training.matcher import HungarianMatcher

__all__ = ["PoseSORCriterion", "PoseSORLossConfig", "gaussian_focal_loss", "heatmap_focal_loss"]


@dataclass
class PoseSORLossConfig:
    """``cfg.LOSS`` of PoseSOR's ``configs/base.yaml``."""

    mask_ce_cost: float = 1.0
    mask_dice_cost: float = 1.0
    obj_pos: float = 1.0
    obj_neg: float = 0.1
    mask_cost: float = 5.0
    partition_cost: float = 5.0
    bbox_l1_cost: float = 5.0
    bbox_giou_cost: float = 2.0
    cls_cost: float = 10.0
    joint_cost: float = 1000.0
    heatmap_cost: float = 100.0
    joint_cls_cost: float = 10.0
    rank_cost: float = 0.1
    num_points: int = 12544
    sigma: float = 0.01
    """Gaussian width of the heatmap targets, in normalised image coordinates."""
    heatmap_random_points: int = 100
    """Random pixels added to the Gaussian's support (> 0.1) where the heatmap loss is evaluated."""


def gaussian_focal_loss(probs: Tensor, targets: Tensor, alpha: float = 2.0, beta: float = 4.0) -> Tensor:
    """CornerNet's focal loss on Gaussian targets, element-wise (PoseSOR's ``gaussian_focal_loss``):
    ``-(1 - p)^alpha log p`` where the target is >= 0.99, else ``-(1 - t)^beta p^alpha log(1 - p)``
    (logs clamped at 1e-6)."""
    eps = torch.full_like(targets, 1e-6)
    positive = torch.pow(1.0 - probs, alpha) * torch.log(torch.maximum(probs, eps))
    negative = torch.pow(1.0 - targets, beta) * torch.pow(probs, alpha) * torch.log(torch.maximum(1.0 - probs, eps))
    return -torch.where(targets >= 0.99, positive, negative)


def gaussian_targets(coords: Tensor, height: int, width: int, sigma: float) -> Tensor:
    """``(K, H, W)`` peak-normalised Gaussians at normalised ``coords`` ``(K, 2)`` on the grid
    ``x = linspace(0, 1, W)``, ``y = linspace(0, 1, H)``."""
    x = torch.linspace(0.0, 1.0, width, device=coords.device, dtype=coords.dtype)
    y = torch.linspace(0.0, 1.0, height, device=coords.device, dtype=coords.dtype)
    d2 = (x[None, None, :] - coords[:, 0, None, None]) ** 2 + (y[None, :, None] - coords[:, 1, None, None]) ** 2
    z = torch.exp(-d2 / (2.0 * sigma * sigma))
    return z / (z.flatten(1).max(dim=1).values[:, None, None] + 1e-6)


def heatmap_focal_loss(heatmap_logits: Tensor, coords: Tensor, sigma: float, random_points: int = 100) -> Tensor:
    """PoseSOR's ``heatmap_loss_in_points``: spatial softmax of ``(K, H, W)`` logits against Gaussians at
    ``coords`` ``(K, 2)``, focal loss averaged over the pixels where a target exceeds 0.1 plus
    ``random_points`` random pixels (the same for every joint)."""
    k, h, w = heatmap_logits.shape
    z = gaussian_targets(coords.float(), h, w, sigma)
    keep = z > 0.1
    ys = torch.randint(0, h, (random_points,)).to(z.device)
    xs = torch.randint(0, w, (random_points,)).to(z.device)
    keep[:, ys, xs] = True
    probs = torch.softmax(heatmap_logits.float().flatten(1), dim=-1).view(k, h, w)
    return gaussian_focal_loss(probs[keep], z[keep]).mean()


class PoseSORCriterion:
    """PoseSOR's loss (see the module docstring). Call with the model and a batch."""

    def __init__(self, cfg: PoseSORLossConfig | None = None) -> None:
        self.cfg = cfg or PoseSORLossConfig()
        c = self.cfg
        self.matcher = HungarianMatcher(c.mask_ce_cost, c.mask_dice_cost, 1.0, c.num_points)

    def __call__(self, model: Any, images: Tensor, targets: list[dict[str, Any]]) -> dict[str, Tensor]:
        from salrank.modeling.posesor.query_selection import gather_query_slots

        c = self.cfg
        sis, features = model(model.normalize(images), all_predictions=False)
        out = sis.out
        b, nq = out.scores.shape[:2]
        device = out.scores.device
        gt = [t["masks"] for t in targets]
        n_max = max(1, max(len(m) for m in gt))
        size = gt[0].shape[-2:]

        def padded(key: str, shape: tuple[int, ...], dtype: torch.dtype) -> Tensor:
            outp = torch.zeros((b, n_max, *shape), dtype=dtype, device=device)
            for i, t in enumerate(targets):
                if len(t[key]):
                    outp[i, : len(t[key])] = t[key].to(device, dtype)
            return outp

        masks = padded("masks", tuple(size), torch.uint8)
        next_targets = padded("next_targets", tuple(size), torch.uint8)
        keypoints = padded("keypoints", (17, 3), torch.float32)
        boxes = padded("boxes", (4,), torch.float32)
        order = padded("visiting_order", (), torch.long)

        m = self.matcher(out.masks, out.scores, gt)
        bi, qi, ti = m.batch_index, m.query_index, m.target_index
        zero = out.scores.sum() * 0.0
        losses: dict[str, Tensor] = {}
        if len(m):
            losses["mask_loss"] = point_sampled_mask_loss(out.masks[bi, qi].float(), masks[bi, ti], c.num_points, c.mask_ce_cost, c.mask_dice_cost).mean() * c.mask_cost
        else:
            losses["mask_loss"] = zero + out.masks.sum() * 0.0
        positive = torch.zeros((b, nq), dtype=torch.bool, device=device)
        positive[bi, qi] = True
        losses["obj_loss"] = objectness_loss(out.scores.reshape(b, nq).float(), positive, c.obj_pos, c.obj_neg) * c.cls_cost

        slots = gather_query_slots(sis.q, sis.qpe, bi, qi, ti, n_max)
        pai, pdr = model.interact_and_rank(slots, features, all_predictions=False, heatmaps="all")
        p = pai.out
        labels = keypoints[..., 2:3].gt(0.5).float()
        joint_mask = slots.mask.unsqueeze(-1) * labels  # (B, n, 17, 1)
        j1, j2, j3, _ = torch.where(joint_mask.gt(0.5))
        kp = p.keypoints.float()
        if len(j1):
            joint = F.smooth_l1_loss(kp[..., :2].sigmoid(), keypoints[..., :2], reduction="none")
            losses["joint_loss"] = joint[j1, j2, j3].mean() * c.joint_cost
            losses["heatmap_loss"] = heatmap_focal_loss(p.heatmaps[j1, j2, j3], keypoints[j1, j2, j3, :2], c.sigma, c.heatmap_random_points) * c.heatmap_cost
        else:
            losses["joint_loss"] = kp.sum() * 0.0
            losses["heatmap_loss"] = p.heatmaps.sum() * 0.0 if p.heatmaps is not None else zero
        if len(m):
            cls = F.binary_cross_entropy_with_logits(kp[..., 2:3], labels, reduction="none")
            losses["joint_cls_loss"] = cls[bi, ti].mean() * c.joint_cls_cost
            losses["refined_mask_loss"] = point_sampled_mask_loss(p.masks[bi, ti].float(), masks[bi, ti], c.num_points, c.mask_ce_cost, c.mask_dice_cost).mean() * c.mask_cost
            pred_boxes = box_cxcyhw_to_xyxy(p.boxes[bi, ti].float().sigmoid())
            losses["bbox_loss"] = box_l1_giou_loss(pred_boxes, boxes[bi, ti], c.bbox_l1_cost, c.bbox_giou_cost).mean()
            losses["partition_loss"] = point_sampled_mask_loss(pdr.partitions[bi, ti].float(), next_targets[bi, ti], c.num_points, c.mask_ce_cost, c.mask_dice_cost).mean() * c.partition_cost
            levels = pdr.ranks.shape[-1]
            losses["rank_loss"] = F.cross_entropy(pdr.ranks[bi, ti].float(), order[bi, ti].clamp(0, levels - 1)) * c.rank_cost
        else:
            for k in ("joint_cls_loss", "refined_mask_loss", "bbox_loss", "partition_loss", "rank_loss"):
                losses[k] = zero + p.masks.sum() * 0.0 + pdr.ranks.sum() * 0.0
        return losses
