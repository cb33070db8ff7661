"""Training losses, one small module per loss, each checked against the official formulas.

* :mod:`.point_sampling` - random pixels for mask losses, read from low-resolution logits exactly;
* :mod:`.mask_losses` - BCE + Dice per mask and for every (query, target) pair;
* :mod:`.box_losses` - L1 on ``(cx, cy, h, w)`` + generalised IoU;
* :mod:`.objectness` - BCE with positive/negative weights;
* :mod:`.seqrank_criterion`, :mod:`.posesor_criterion`, :mod:`.ppa_criterion` - the three models' full losses.
"""

from salrank.training.losses.box_losses import (
    box_cxcyhw_to_xyxy,
    box_l1_giou_loss,
    box_xyxy_to_cxcyhw,
    generalized_box_iou_loss,
    masks_to_boxes_normalised,
)
from salrank.training.losses.mask_losses import (
    bce_dice_loss,
    pairwise_mask_cost,
    point_sampled_mask_loss,
)
from salrank.training.losses.objectness import objectness_loss
from salrank.training.losses.point_sampling import (
    PointSample,
    sample_logits_at,
    sample_points,
    take_points,
)

__all__ = [
    "PointSample",
    "bce_dice_loss",
    "box_cxcyhw_to_xyxy",
    "box_l1_giou_loss",
    "box_xyxy_to_cxcyhw",
    "generalized_box_iou_loss",
    "masks_to_boxes_normalised",
    "objectness_loss",
    "pairwise_mask_cost",
    "point_sampled_mask_loss",
    "sample_logits_at",
    "sample_points",
    "take_points",
]
