"""PPA's training forward: FCOS outputs for the detector loss, and the ROI heads on labelled proposals.

In training the official model (CenterMask2's ``GeneralizedRCNN`` with ``CenterROIHeads``) does this for
every image of the batch:

1. **FCOS** runs on P3-P7. Its raw outputs go to the detector loss; they are also decoded into
   proposals with the *training* settings: class probability above ``INFERENCE_TH_TRAIN`` (0.05), the
   ``PRE_NMS_TOPK_TRAIN`` (1000) best per level, class-wise NMS 0.6, at most ``POST_NMS_TOPK_TRAIN``
   (100) per image (:func:`train_proposals`). No gradient flows through the proposal boxes
   (detectron2's ROIAlign does not differentiate with respect to the boxes).
2. **GT boxes are appended** to the proposals (``PROPOSAL_APPEND_GT``), so the heads have positives
   from the first iteration.
3. **Labelling** (:func:`label_proposals`): each proposal takes the GT box it overlaps most; it is
   foreground when that IoU is at least 0.5 (detectron2's ``Matcher`` with thresholds ``[0.5]``,
   labels ``[0, 1]``, no low-quality matches).
4. **Sampling** (:func:`sample_foreground`): detectron2's ``subsample_labels`` draws at most
   ``512 x 0.25 = 128`` foreground proposals at random. PPA has no box head, so only foreground
   proposals reach a loss (mask, MaskIoU and rank losses are all defined on them); the background
   samples the official code also draws feed nothing and are not drawn here.
5. **ROI heads** on the foreground proposals (:meth:`CenterMaskROIHeads.forward_train`): position
   channels + ROIAlign on P3-P5 (CenterMask's ratio rule on the proposal box), mask logits, the MaskIoU
   head on the mask *probabilities* (not detached, as in the official code) and the rank head, whose
   transformer attends over the foreground proposals of the image. Each proposal inherits the rank
   class of its GT.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import torch
from torch import Tensor

from salrank.modeling.ppa.config import FCOSConfig
from salrank.modeling.ppa.fcos import FCOSOutputs, fcos_detections
from salrank.ops.boxes import box_iou

__all__ = [
    "ImageROIOutputs",
    "PPATrainOutputs",
    "PPATrainTargets",
    "label_proposals",
    "rank_classes_from_ranks",
    "sample_foreground",
    "train_proposals",
]


@dataclass
class PPATrainTargets:
    """The ground truth of one image, in network-input pixels (after resizing and flipping)."""

    boxes: Tensor
    """``(M, 4)`` ``x1, y1, x2, y2`` of the salient objects."""
    rank_classes: Tensor
    """``(M,)`` ``int64`` official rank class: ``num_ranks - 1`` = most salient (rank 1) ... 0."""
    masks: Tensor | None = None
    """``(M, H, W)`` binary masks at the image size (the criterion needs them; the forward does not)."""


@dataclass
class ImageROIOutputs:
    """The ROI-head outputs on the sampled foreground proposals of one image (``P`` of them)."""

    proposal_boxes: Tensor
    """``(P, 4)`` proposal boxes (no gradient)."""
    matched_gt: Tensor
    """``(P,)`` index of each proposal's GT object."""
    rank_targets: Tensor
    """``(P,)`` rank class of that GT object."""
    mask_logits: Tensor
    """``(P, M, M)`` mask logits of the proposal's class (28x28)."""
    maskiou: Tensor
    """``(P,)`` predicted mask IoU of the proposal's class."""
    sor_logits: Tensor
    """``(P, num_ranks)`` rank logits."""
    num_proposals: int = 0
    """FCOS proposals of the image before the GT boxes were appended (for logging)."""


@dataclass
class PPATrainOutputs:
    """Everything the PPA criterion needs from one training forward."""

    fcos: FCOSOutputs
    """Per level: class logits, box distances (stride units), centerness logits, each ``(B, ., H, W)``."""
    locations: list[Tensor]
    """Per level ``(H*W, 2)`` image coordinates ``(x, y)`` of the FCOS locations."""
    strides: tuple[int, ...]
    image_sizes: list[tuple[int, int]]
    """``(h, w)`` of each image before padding."""
    rois: list[ImageROIOutputs]
    """One entry per image."""


def rank_classes_from_ranks(ranks: Tensor, num_ranks: int = 5) -> Tensor:
    """Official rank classes from salrank ranks (1 = most salient): ``num_ranks - rank``, clamped to ``[0, num_ranks - 1]``.

    The official ASSR loader computes ``int(rank_order * 10 - 6)``; the (at most five) salient ASSR
    objects hold ``rank_order`` 1.0, 0.9, ..., 0.6 for ranks 1..5, so this is the same class. Objects
    ranked below ``num_ranks`` (other datasets) share the lowest class 0; a missing rank (0) is treated
    as the lowest too.
    """
    ranks = ranks.to(torch.int64)
    out = num_ranks - ranks
    out = torch.where(ranks <= 0, torch.zeros_like(out), out)
    return out.clamp(0, num_ranks - 1)


def train_proposals(
    locations: Sequence[Tensor],
    outputs: FCOSOutputs,
    strides: Sequence[int],
    image_size: tuple[int, int],
    cfg: FCOSConfig,
    batch_index: int,
) -> Tensor:
    """``(K, 4)`` proposal boxes of image ``batch_index`` decoded with FCOS's *training* thresholds (detached)."""
    train_cfg = replace(
        cfg,
        score_threshold=cfg.score_threshold_train,
        pre_nms_topk=cfg.pre_nms_topk_train,
        post_nms_topk=cfg.post_nms_topk_train,
    )
    detached = tuple([t.detach() for t in part] for part in outputs)
    # Early in training FCOS predicts zero-size boxes; their IoU is 0/0 (NaN), which, as in the
    # official NMS, suppresses nothing.
    with torch.no_grad():
        det = fcos_detections(locations, detached, strides, image_size, train_cfg, batch_index)  # type: ignore[arg-type]
    return det.boxes.float()


def label_proposals(proposal_boxes: Tensor, gt_boxes: Tensor, iou_threshold: float = 0.5) -> tuple[Tensor, Tensor]:
    """Match proposals to GT boxes by IoU.

    Returns:
        ``(matched_gt, foreground)``: for each proposal the index of the GT box with the highest IoU
        (the first on ties; 0 when there is no GT) and whether that IoU is ``>= iou_threshold``.
    """
    n = proposal_boxes.shape[0]
    if gt_boxes.shape[0] == 0 or n == 0:
        zeros = torch.zeros(n, dtype=torch.int64, device=proposal_boxes.device)
        return zeros, torch.zeros(n, dtype=torch.bool, device=proposal_boxes.device)
    iou = box_iou(gt_boxes.float(), proposal_boxes.float())  # (M, N)
    best, matched = iou.max(dim=0)
    return matched, best >= iou_threshold


def sample_foreground(
    foreground: Tensor, batch_size_per_image: int, positive_fraction: float, generator: torch.Generator | None = None
) -> Tensor:
    """Indices of at most ``int(batch_size_per_image * positive_fraction)`` foreground proposals, drawn at random.

    detectron2's ``subsample_labels``: a random permutation of the foreground proposals, cut to the cap
    (the order of the returned indices is the permutation's).
    """
    positive = torch.nonzero(foreground).squeeze(1)
    cap = int(batch_size_per_image * positive_fraction)
    num = min(positive.numel(), cap)
    perm = torch.randperm(positive.numel(), generator=generator)[:num].to(positive.device)
    return positive[perm]
