"""Non-maximum suppression with the semantics of ``torchvision.ops.nms`` / ``batched_nms``.

Boxes are ``[x1, y1, x2, y2]``; the IoU is computed in the boxes' precision (``(x2 - x1) * (y2 - y1)``
areas, no "+1"), and box ``j`` is suppressed by a kept box ``i`` when ``IoU > iou_threshold`` (compared in
double precision, as torchvision's C++ kernel does). Candidates are visited by descending score with a
stable sort, so equal scores keep their input order.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor


def nms(boxes: Tensor, scores: Tensor, iou_threshold: float) -> Tensor:
    """Indices (``int64``) of the boxes kept by greedy NMS, by decreasing score."""
    if boxes.numel() == 0:
        return torch.zeros(0, dtype=torch.int64, device=boxes.device)
    order = torch.sort(scores, descending=True, stable=True).indices
    b = boxes[order].detach().cpu().numpy()
    ftype = b.dtype
    x1, y1, x2, y2 = b[:, 0], b[:, 1], b[:, 2], b[:, 3]
    areas = (x2 - x1) * (y2 - y1)
    n = len(b)
    suppressed = np.zeros(n, dtype=bool)
    keep = []
    for i in range(n):
        if suppressed[i]:
            continue
        keep.append(i)
        rest = np.arange(i + 1, n)
        rest = rest[~suppressed[rest]]
        if len(rest) == 0:
            break
        w = np.maximum(np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]), ftype.type(0))
        h = np.maximum(np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]), ftype.type(0))
        inter = w * h
        iou = inter / (areas[i] + areas[rest] - inter)
        suppressed[rest[iou.astype(np.float64) > iou_threshold]] = True
    return order[torch.as_tensor(keep, dtype=torch.int64, device=order.device)]


def batched_nms(boxes: Tensor, scores: Tensor, idxs: Tensor, iou_threshold: float) -> Tensor:
    """NMS done independently per category ``idxs``; indices of kept boxes sorted by decreasing score."""
    if boxes.numel() == 0:
        return torch.zeros(0, dtype=torch.int64, device=boxes.device)
    keep_all = []
    for cat in torch.unique(idxs):
        members = torch.nonzero(idxs == cat).flatten()
        keep_all.append(members[nms(boxes[members], scores[members], iou_threshold)])
    keep = torch.cat(keep_all)
    return keep[torch.sort(scores[keep], descending=True, stable=True).indices]
