"""The per-image detection record PPA's stages fill in (detectron2's ``Instances``, made explicit)."""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch
from torch import Tensor


@dataclass
class PPADetections:
    """Detections of one image, at the resolution of the network input (before post-processing).

    FCOS fills ``boxes``/``scores``/``classes``/``locations``; the ROI heads add the mask, MaskIoU and
    ranking fields. ``pred_ranks`` uses the official rank classes: 4 = most salient (rank 1) ... 0 =
    rank 5, -1 = not ranked.
    """

    image_size: tuple[int, int]
    """``(height, width)`` of the resized image, before padding."""
    boxes: Tensor
    """``(N, 4)`` ``x1, y1, x2, y2``, not clipped (as FCOS predicts them)."""
    scores: Tensor
    """``(N,)`` ``sqrt(class probability x centerness)``."""
    classes: Tensor
    """``(N,)`` ``int64`` class index (always 0: PPA has the single class "salient object")."""
    locations: Tensor
    """``(N, 2)`` the FCOS location (x, y) each box was regressed from."""
    mask_probs: Tensor | None = None
    """``(N, 1, M, M)`` mask probabilities in the box (sigmoid of the mask logits)."""
    maskiou: Tensor | None = None
    """``(N,)`` predicted IoU of each mask with its object."""
    mask_scores: Tensor | None = None
    """``(N,)`` ``scores x maskiou``."""
    sor_logits: Tensor | None = None
    """``(N, num_ranks)`` ranking logits; column ``num_ranks - 1`` is the most salient rank."""
    pred_ranks: Tensor | None = None
    """``(N,)`` ``int64`` rank class from the greedy read-out, -1 when unranked."""
    rank_probs: Tensor | None = None
    """``(N,)`` read-out probability with which each rank was given (0 when unranked)."""

    def __len__(self) -> int:
        return int(self.boxes.shape[0])

    def select(self, index: Tensor) -> PPADetections:
        """The detections at ``index`` (indices or a boolean mask), every field indexed alike."""
        values = {}
        for f in fields(self):
            v = getattr(self, f.name)
            values[f.name] = v[index] if isinstance(v, Tensor) else v
        return PPADetections(**values)

    @classmethod
    def empty(cls, image_size: tuple[int, int], device: torch.device | None = None) -> PPADetections:
        return cls(
            image_size=image_size,
            boxes=torch.zeros(0, 4, device=device),
            scores=torch.zeros(0, device=device),
            classes=torch.zeros(0, dtype=torch.int64, device=device),
            locations=torch.zeros(0, 2, device=device),
        )
