"""CenterMask's ROI heads with PPA's position-preserving pooling.

For each FCOS detection:

1. **Level assignment.** CenterMask's ``"ratio"`` rule picks the pyramid level from the box area
   relative to the image area, ``k = ceil(5 - log2(image_area / box_area))`` clamped to P3-P5: a box
   covering more than half the image pools from P5, one covering a quarter to a half from P4, smaller
   ones from P3 (the FPN ``"area"`` rule is available too).
2. **Position preservation.** Before pooling, every level gets two extra channels holding the
   normalised absolute coordinates ``y / H`` and ``x / W`` of each feature cell centre. ROIAlign
   (14x14, adaptive sampling, aligned) pools them like any feature, so the last two pooled channels
   (``pos``) hold the absolute position of every ROI bin: position survives the pooling that normally
   discards it. The official code builds these grids for a fixed 640x480 image; salrank builds them
   from the size of the image being processed (identical at 640x480, and any size works).
3. The remaining channels feed the **mask head** (28x28 logits), the **MaskIoU head** (``mask_scores``)
   and the **rank head** (:mod:`salrank.modeling.ppa.rank_head`), whose logits the greedy read-out turns
   into ranks.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from salrank.errors import InputError
from salrank.modeling.ppa.config import PPAConfig
from salrank.modeling.ppa.detections import PPADetections
from salrank.modeling.ppa.mask_head import SpatialAttentionMaskHead, mask_probabilities
from salrank.modeling.ppa.maskiou_head import MaskIoUHead
from salrank.modeling.ppa.rank_head import RankHead
from salrank.modeling.ppa.readout import greedy_rank_readout
from salrank.ops import roi_align
from salrank.ops.boxes import box_area

__all__ = [
    "CenterMaskROIHeads",
    "MultiLevelROIAlign",
    "assign_levels_by_area",
    "assign_levels_by_ratio",
    "position_channels",
]

_EPS = sys.float_info.epsilon


def assign_levels_by_ratio(boxes: Tensor, image_size: tuple[int, int], min_level: int, max_level: int) -> Tensor:
    """CenterMask's adaptive level: ``ceil(max_level - log2(image_area / box_area))``, clamped.

    Returns the level index relative to ``min_level`` (0 = the finest pooled level). The arithmetic
    is the official float32 one (a zero-area box gets the finest level).
    """
    image_area = torch.full((boxes.shape[0],), float(image_size[0] * image_size[1]), dtype=torch.float32, device=boxes.device)
    levels = torch.ceil(max_level - torch.log2(image_area / box_area(boxes) + _EPS))
    return torch.clamp(levels, min=min_level, max=max_level).to(torch.int64) - min_level


def assign_levels_by_area(
    boxes: Tensor, min_level: int, max_level: int, canonical_box_size: int = 224, canonical_level: int = 4
) -> Tensor:
    """The FPN paper's rule ``floor(canonical_level + log2(sqrt(area) / canonical_box_size))``, clamped."""
    sizes = torch.sqrt(box_area(boxes))
    levels = torch.floor(canonical_level + torch.log2(sizes / canonical_box_size + _EPS))
    return torch.clamp(levels, min=min_level, max=max_level).to(torch.int64) - min_level


def position_channels(
    feature_hw: tuple[int, int], stride: int, frame_hw: tuple[int, int], dtype: torch.dtype = torch.float32, device: torch.device | None = None
) -> tuple[Tensor, Tensor]:
    """The ``(1, 1, H, W)`` maps ``y / frame_h`` and ``x / frame_w`` of a stride-``stride`` level's cell centres.

    Cell ``i`` has its centre at pixel ``i * stride + stride / 2``. With ``frame_hw`` = (480, 640) and a
    480x640 input these are exactly the official hard-coded grids.
    """
    h, w = feature_hw
    y = (torch.arange(h, dtype=torch.float32, device=device) * stride + stride / 2) / frame_hw[0]
    x = (torch.arange(w, dtype=torch.float32, device=device) * stride + stride / 2) / frame_hw[1]
    return y.reshape(1, 1, h, 1).expand(1, 1, h, w).to(dtype), x.reshape(1, 1, 1, w).expand(1, 1, h, w).to(dtype)


class MultiLevelROIAlign(nn.Module):
    """ROIAlign from a pyramid, each box on the level chosen by ``assign_criterion``.

    Args:
        output_size: pooled size (14).
        strides: strides of the pooled levels, fine to coarse (powers of two forming a pyramid).
        sampling_ratio: samples per bin side; 0 = adaptive.
        aligned: the half-pixel-corrected RoIAlign (detectron2 ``ROIAlignV2``).
        assign_criterion: ``"ratio"`` (CenterMask) or ``"area"`` (FPN).
    """

    def __init__(
        self, output_size: int, strides: Sequence[int], sampling_ratio: int = 0, aligned: bool = True, assign_criterion: str = "ratio"
    ) -> None:
        super().__init__()
        self.output_size = output_size
        self.strides = tuple(int(s) for s in strides)
        self.min_level = int(math.log2(self.strides[0]))
        self.max_level = int(math.log2(self.strides[-1]))
        if [2 ** (self.min_level + i) for i in range(len(self.strides))] != list(self.strides):
            raise ValueError(f"pooled levels must form a stride-2 pyramid, got strides {self.strides}")
        self.sampling_ratio = sampling_ratio
        self.aligned = aligned
        self.assign_criterion = assign_criterion

    def assign_levels(self, boxes: Tensor, image_size: tuple[int, int]) -> Tensor:
        if len(self.strides) == 1:
            return torch.zeros(boxes.shape[0], dtype=torch.int64, device=boxes.device)
        if self.assign_criterion == "ratio":
            return assign_levels_by_ratio(boxes, image_size, self.min_level, self.max_level)
        return assign_levels_by_area(boxes, self.min_level, self.max_level)

    def forward(self, features: Sequence[Tensor], boxes: Tensor, image_size: tuple[int, int]) -> tuple[Tensor, Tensor]:
        """Pool ``(N, C, R, R)`` for the boxes of one image; also returns each box's level index."""
        levels = self.assign_levels(boxes, image_size)
        n, c = boxes.shape[0], features[0].shape[1]
        out = features[0].new_zeros((n, c, self.output_size, self.output_size))
        rois = torch.cat((boxes.new_zeros(n, 1), boxes), dim=1)
        for level, (feature, stride) in enumerate(zip(features, self.strides)):
            index = torch.nonzero(levels == level).squeeze(1)
            if index.numel():
                out[index] = roi_align(
                    feature, rois[index], self.output_size, 1.0 / stride, self.sampling_ratio, aligned=self.aligned
                )
        return out, levels


class CenterMaskROIHeads(nn.Module):
    """Mask, MaskIoU and rank heads on the pooled ROIs of FCOS detections (one image at a time)."""

    def __init__(self, cfg: PPAConfig, feature_strides: Mapping[str, int]) -> None:
        super().__init__()
        r, s = cfg.roi_heads, cfg.rank_head
        self.in_features = r.in_features
        self.use_pos = s.use_pos
        self.coordinate_frame = cfg.coordinate_frame
        self.official_frame = (s.img_height, s.img_width)
        self.mask_pooler = MultiLevelROIAlign(
            r.pooler_resolution,
            [feature_strides[f] for f in r.in_features],
            r.pooler_sampling_ratio,
            aligned=r.pooler_type == "ROIAlignV2",
            assign_criterion=r.assign_criterion,
        )
        in_channels = cfg.fpn_out_channels
        num_mask_classes = 1 if r.cls_agnostic_mask else r.num_classes
        self.mask_head = SpatialAttentionMaskHead(in_channels, r.mask_conv_dim, r.mask_num_conv, num_mask_classes, r.mask_norm)
        self.maskiou_head = MaskIoUHead(r.mask_conv_dim, r.pooler_resolution, r.maskiou_conv_dim, r.maskiou_num_conv, r.num_classes)
        self.rank_head = RankHead(s, r.mask_conv_dim, r.pooler_resolution)
        self.rank_threshold = s.rank_threshold

    def frame_size(self, image_size: tuple[int, int]) -> tuple[int, int]:
        """``(height, width)`` that normalises absolute coordinates (see ``PPAConfig.coordinate_frame``)."""
        return image_size if self.coordinate_frame == "image" else self.official_frame

    def with_position_channels(self, features: Mapping[str, Tensor], image_size: tuple[int, int]) -> list[Tensor]:
        """The pooled levels with the ``y``, ``x`` coordinate channels appended."""
        frame = self.frame_size(image_size)
        out = []
        for name, stride in zip(self.in_features, self.mask_pooler.strides):
            feature = features[name]
            b, _, h, w = feature.shape
            if self.coordinate_frame == "official" and (h * stride, w * stride) != tuple(frame):
                raise InputError(
                    f"the official position grids assume a {frame[1]}x{frame[0]} input but this one is "
                    f"{image_size[1]}x{image_size[0]} (padded {w * stride}x{h * stride}); use coordinate_frame='image'"
                )
            y, x = position_channels((h, w), stride, frame, feature.dtype, feature.device)
            out.append(torch.cat((feature, y.expand(b, -1, -1, -1), x.expand(b, -1, -1, -1)), dim=1))
        return out

    def forward(
        self, features: Mapping[str, Tensor], detections: PPADetections, record: dict[str, Any] | None = None
    ) -> PPADetections:
        """Add masks, mask scores and ranks to ``detections`` (one image; ``features`` have batch size 1).

        ``record``, when given, receives the intermediate tensors under the names of the official
        fixture (``mask_pooler_out``, ``mask_logits``, ``sor_logits``, ...).
        """
        if len(detections) == 0:
            return detections
        image_size = detections.image_size
        if self.use_pos:
            levels = self.with_position_channels(features, image_size)
        else:
            levels = [features[f] for f in self.in_features]
        pooled, level_index = self.mask_pooler(levels, detections.boxes, image_size)
        if self.use_pos:
            roi_features, pos = pooled[:, :-2], pooled[:, -2:]
        else:
            roi_features, pos = pooled, None
        mask_logits = self.mask_head(roi_features)
        mask_probs = mask_probabilities(mask_logits, detections.classes)
        maskiou = self.maskiou_head(roi_features, mask_probs)
        index = torch.arange(len(detections), device=maskiou.device)
        maskiou = maskiou[index, detections.classes]
        frame_h, frame_w = self.frame_size(image_size)
        sor_logits = self.rank_head(roi_features, mask_probs, pos, detections.boxes, (frame_w, frame_h))
        ranks, rank_probs = greedy_rank_readout(sor_logits, self.rank_threshold)
        if record is not None:
            record.update(
                mask_pooler_level_index=level_index,
                mask_pooler_out=pooled,
                mask_logits=mask_logits,
                maskiou_pred=maskiou[:, None],
                sor_in_mask_probs_28=mask_probs,
                sor_logits=sor_logits,
            )
            if pos is not None:
                record["sor_in_pos"] = pos
        detections.mask_probs = mask_probs
        detections.maskiou = maskiou
        detections.mask_scores = detections.scores * maskiou
        detections.sor_logits = sor_logits
        detections.pred_ranks = ranks
        detections.rank_probs = rank_probs
        return detections

    def forward_train(self, features: Mapping[str, Tensor], boxes: Tensor, image_size: tuple[int, int]) -> tuple[Tensor, Tensor, Tensor]:
        """The heads on the foreground proposals of one image, in training (see :mod:`salrank.modeling.ppa.training`).

        ``features`` have batch size 1; ``boxes`` ``(P, 4)`` are the proposal boxes, all of class 0 (the
        single "salient object" class), and ``P > 0``. Returns the proposal-class mask logits
        ``(P, M, M)``, the predicted mask IoU ``(P,)`` and the rank logits ``(P, num_ranks)``. As in the
        official code the MaskIoU and rank heads see the mask *probabilities* with their gradient.
        """
        if self.use_pos:
            levels = self.with_position_channels(features, image_size)
        else:
            levels = [features[f] for f in self.in_features]
        pooled, _ = self.mask_pooler(levels, boxes, image_size)
        if self.use_pos:
            roi_features, pos = pooled[:, :-2], pooled[:, -2:]
        else:
            roi_features, pos = pooled, None
        mask_logits = self.mask_head(roi_features)[:, 0]  # class 0 (class-agnostic or the only class)
        mask_probs = mask_logits.sigmoid()[:, None]
        maskiou = self.maskiou_head(roi_features, mask_probs)[:, 0]
        frame_h, frame_w = self.frame_size(image_size)
        sor_logits = self.rank_head(roi_features, mask_probs, pos, boxes, (frame_w, frame_h))
        return mask_logits, maskiou, sor_logits
