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

_ROW_BLOCK = 256  # rows of the IoU matrix computed at once (bounds memory: 256 x N values)


def _overlap_bits(boxes: Tensor, iou_threshold: float) -> np.ndarray:
    """Row ``i``, bit ``j`` (``j > i``): box ``j`` overlaps box ``i`` by more than the threshold.

    Rows are bit-packed (little-endian ``uint64`` words, ``[N, ceil(N / 64)]``). The IoUs are computed on
    the boxes' device, in their precision, block by block, and compared in double precision.
    """
    n = len(boxes)
    x1, y1, x2, y2 = boxes.unbind(1)
    areas = (x2 - x1) * (y2 - y1)
    words = (n + 63) // 64
    bits = np.zeros((n, words * 8), dtype=np.uint8)
    zero = boxes.new_zeros(())
    for start in range(0, n, _ROW_BLOCK):
        stop = min(start + _ROW_BLOCK, n)
        rows, cols = slice(start, stop), slice(start, n)  # only j >= start can be suppressed by these rows
        w = torch.minimum(x2[rows, None], x2[cols]) - torch.maximum(x1[rows, None], x1[cols])
        h = torch.minimum(y2[rows, None], y2[cols]) - torch.maximum(y1[rows, None], y1[cols])
        inter = w.clamp_(min=zero) * h.clamp_(min=zero)
        iou = inter.div_(areas[rows, None] + areas[cols] - inter)
        over = iou.double() > iou_threshold
        over &= torch.arange(start, n, device=boxes.device) > torch.arange(start, stop, device=boxes.device)[:, None]
        over = over.cpu().numpy()
        # Columns start..n-1 go to bits start..n-1: pack from the byte holding bit `start`.
        first_byte = start // 8
        lead = start - first_byte * 8
        packed = np.packbits(np.pad(over, ((0, 0), (lead, 0))), axis=1, bitorder="little")
        bits[rows, first_byte : first_byte + packed.shape[1]] = packed
    return bits.view("<u8")


def nms(boxes: Tensor, scores: Tensor, iou_threshold: float) -> Tensor:
    """Indices (``int64``) of the boxes kept by greedy NMS, by decreasing score.

    The pairwise "overlaps too much" relation is computed at once (on the boxes' device, so a GPU does
    the quadratic part), then the greedy pass walks the boxes by score on bit-packed rows: a box is kept
    unless an earlier kept box suppressed it, and keeping it suppresses its row. The relation takes
    ``N * N / 8`` bytes of host memory (3 MB for 5000 boxes).
    """
    if boxes.numel() == 0:
        return torch.zeros(0, dtype=torch.int64, device=boxes.device)
    order = torch.sort(scores, descending=True, stable=True).indices
    overlaps = _overlap_bits(boxes[order].detach(), iou_threshold)
    suppressed = np.zeros(overlaps.shape[1], dtype=np.uint64)
    keep = []
    for i in range(len(overlaps)):
        if (int(suppressed[i >> 6]) >> (i & 63)) & 1:
            continue
        keep.append(i)
        suppressed |= overlaps[i]
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
