"""Box losses of SeqRank and PoseSOR: L1 on ``(cx, cy, h, w)`` plus generalised IoU on corners.

Both models predict boxes as four logits read after a sigmoid as ``(cx, cy, h, w)`` in ``[0, 1]`` (height
before width). The official ``batch_bbox_loss(pred_xyxy, gt_xyxy)`` converts back to ``(cx, cy, h, w)``
for the L1 term (mean over the 4 numbers) and uses torchvision's ``generalized_box_iou_loss`` (1 - GIoU,
``eps = 1e-7``) on the corners::

    loss = l1_weight * mean|cxcyhw(pred) - cxcyhw(gt)| + giou_weight * (1 - GIoU(pred, gt))

SeqRank's box targets are torchvision's ``masks_to_boxes`` of the resized GT masks (the last row/column
*index*, not +1), divided by the mask size and clamped to ``[0, 1]``: :func:`masks_to_boxes_normalised`.
"""

from __future__ import annotations

import torch
from torch import Tensor

from salrank.ops.boxes import box_cxcyhw_to_xyxy, box_xyxy_to_cxcyhw

__all__ = [
    "box_cxcyhw_to_xyxy",
    "box_l1_giou_loss",
    "box_xyxy_to_cxcyhw",
    "generalized_box_iou_loss",
    "masks_to_boxes_normalised",
]


def generalized_box_iou_loss(boxes1: Tensor, boxes2: Tensor, eps: float = 1e-7) -> Tensor:
    """``1 - GIoU`` of paired ``(N, 4)`` corner boxes -> ``(N,)`` (torchvision's formula and ``eps``)."""
    x1, y1, x2, y2 = boxes1.unbind(-1)
    x1g, y1g, x2g, y2g = boxes2.unbind(-1)
    xk1, yk1 = torch.max(x1, x1g), torch.max(y1, y1g)
    xk2, yk2 = torch.min(x2, x2g), torch.min(y2, y2g)
    inter = torch.zeros_like(x1)
    valid = (yk2 > yk1) & (xk2 > xk1)
    inter = torch.where(valid, (xk2 - xk1) * (yk2 - yk1), inter)
    union = (x2 - x1) * (y2 - y1) + (x2g - x1g) * (y2g - y1g) - inter
    iou = inter / (union + eps)
    area_c = (torch.max(x2, x2g) - torch.min(x1, x1g)) * (torch.max(y2, y2g) - torch.min(y1, y1g))
    giou = iou - (area_c - union) / (area_c + eps)
    return 1.0 - giou


def box_l1_giou_loss(pred_xyxy: Tensor, target_xyxy: Tensor, l1_weight: float = 1.0, giou_weight: float = 1.0) -> Tensor:
    """The official ``batch_bbox_loss`` -> ``(N,)`` (see the module docstring)."""
    l1 = (box_xyxy_to_cxcyhw(pred_xyxy) - box_xyxy_to_cxcyhw(target_xyxy)).abs().mean(dim=-1)
    return l1_weight * l1 + giou_weight * generalized_box_iou_loss(pred_xyxy, target_xyxy)


def masks_to_boxes_normalised(masks: Tensor) -> Tensor:
    """SeqRank's ``mask2Boxes``: torchvision ``masks_to_boxes`` ``/ (W, H)``, clamped to [0, 1] -> ``(N, 4)``.

    torchvision gives the first and last foreground row/column *indices*; an empty mask gives zeros here
    (torchvision raises).
    """
    n, h, w = masks.shape
    out = torch.zeros((n, 4), dtype=torch.float32, device=masks.device)
    if n == 0:
        return out
    fg = masks > 0
    rows, cols = fg.any(dim=2), fg.any(dim=1)
    ar_h = torch.arange(h, device=masks.device, dtype=torch.float32)
    ar_w = torch.arange(w, device=masks.device, dtype=torch.float32)
    big = float(max(h, w) + 1)
    x1 = torch.where(cols, ar_w, big).min(dim=1).values
    x2 = torch.where(cols, ar_w, -1.0).max(dim=1).values
    y1 = torch.where(rows, ar_h, big).min(dim=1).values
    y2 = torch.where(rows, ar_h, -1.0).max(dim=1).values
    boxes = torch.stack([x1 / w, y1 / h, x2 / w, y2 / h], dim=1).clamp(0.0, 1.0)
    empty = ~rows.any(dim=1)
    boxes[empty] = 0.0
    return boxes
