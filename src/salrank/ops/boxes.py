"""Small operations on ``[x1, y1, x2, y2]`` boxes, with detectron2's ``Boxes`` semantics, and the
``(cx, cy, h, w)`` <-> corners conversions of SeqRank and PoseSOR (height before width)."""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = [
    "box_area",
    "box_cxcyhw_to_xyxy",
    "box_iou",
    "box_xyxy_to_cxcyhw",
    "clip_boxes",
    "nonempty_boxes",
    "scale_boxes",
]


def box_area(boxes: Tensor) -> Tensor:
    """``(x2 - x1) * (y2 - y1)`` per box (no "+1"; negative extents give negative areas, as detectron2)."""
    return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])


def box_iou(a: Tensor, b: Tensor) -> Tensor:
    """Pairwise IoU ``(len(a), len(b))``; pairs with no overlap (or empty union) are 0."""
    area_a, area_b = box_area(a), box_area(b)
    lt = torch.max(a[:, None, :2], b[None, :, :2])
    rb = torch.min(a[:, None, 2:], b[None, :, 2:])
    wh = (rb - lt).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]
    union = area_a[:, None] + area_b[None, :] - inter
    return torch.where(inter > 0, inter / union, torch.zeros((), dtype=inter.dtype, device=inter.device))


def clip_boxes(boxes: Tensor, height: int, width: int) -> Tensor:
    """Clamp x to ``[0, width]`` and y to ``[0, height]`` (detectron2 ``Boxes.clip``)."""
    x1 = boxes[:, 0].clamp(min=0, max=width)
    y1 = boxes[:, 1].clamp(min=0, max=height)
    x2 = boxes[:, 2].clamp(min=0, max=width)
    y2 = boxes[:, 3].clamp(min=0, max=height)
    return torch.stack((x1, y1, x2, y2), dim=-1)


def scale_boxes(boxes: Tensor, scale_x: float, scale_y: float) -> Tensor:
    """Multiply x coordinates by ``scale_x`` and y by ``scale_y`` (detectron2 ``Boxes.scale``)."""
    out = boxes.clone()
    out[:, 0::2] *= scale_x
    out[:, 1::2] *= scale_y
    return out


def nonempty_boxes(boxes: Tensor, threshold: float = 0.0) -> Tensor:
    """Boolean mask of boxes whose width and height are both ``> threshold`` (``Boxes.nonempty``)."""
    return ((boxes[:, 2] - boxes[:, 0]) > threshold) & ((boxes[:, 3] - boxes[:, 1]) > threshold)


def box_cxcyhw_to_xyxy(boxes: Tensor) -> Tensor:
    """``(..., 4)`` ``(cx, cy, h, w)`` -> ``(x1, y1, x2, y2)`` (the official ``xyhw2xyxy``).

    SeqRank's and PoseSOR's box heads predict height before width; every consumer of their boxes
    converts with this.
    """
    cx, cy, h, w = boxes.unbind(-1)
    return torch.stack([cx - w / 2.0, cy - h / 2.0, cx + w / 2.0, cy + h / 2.0], dim=-1)


def box_xyxy_to_cxcyhw(boxes: Tensor) -> Tensor:
    """``(..., 4)`` ``(x1, y1, x2, y2)`` -> ``(cx, cy, h, w)`` (the official ``xyxy2xyhw``)."""
    x1, y1, x2, y2 = boxes.unbind(-1)
    return torch.stack([(x1 + x2) / 2.0, (y1 + y2) / 2.0, y2 - y1, x2 - x1], dim=-1)
