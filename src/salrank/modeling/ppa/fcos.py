"""FCOS (Tian et al., ICCV 2019): the one-stage, anchor-free detector that proposes PPA's objects.

Every location of every pyramid level predicts, through two conv towers shared across levels, a class
logit, a centerness logit and the distances (left, top, right, bottom) to the box sides. At test time
(:func:`fcos_detections`) a location is a candidate when its class probability exceeds the score
threshold; per level the ``pre_nms_topk`` most confident candidates are kept; the box score is
``sqrt(probability x sigmoid(centerness))``; class-wise NMS (IoU 0.6) and a per-image cap of
``post_nms_topk`` detections follow. This is CenterMask2's ``FCOS``/``FCOSOutputs`` at inference.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from salrank.modeling.ppa.config import FCOSConfig
from salrank.modeling.ppa.detections import PPADetections
from salrank.ops import batched_nms

__all__ = ["FCOSHead", "FCOSOutputs", "Scale", "fcos_detections", "fcos_locations"]


class Scale(nn.Module):
    """A learnable scalar that multiplies the box regression of one pyramid level."""

    def __init__(self, init_value: float = 1.0) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.tensor([init_value], dtype=torch.float32))

    def forward(self, x: Tensor) -> Tensor:
        return x * self.scale


def _tower(num_convs: int, channels: int, norm: str) -> nn.Sequential:
    layers: list[nn.Module] = []
    for _ in range(num_convs):
        layers.append(nn.Conv2d(channels, channels, 3, padding=1))
        if norm == "GN":
            layers.append(nn.GroupNorm(32, channels))
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


FCOSOutputs = tuple[list[Tensor], list[Tensor], list[Tensor]]
"""Per level: class logits ``(B, C, H, W)``, box distances ``(B, 4, H, W)`` (after ReLU, in stride units),
centerness logits ``(B, 1, H, W)``."""


class FCOSHead(nn.Module):
    """The shared classification and box towers with their three predictors."""

    def __init__(self, cfg: FCOSConfig, in_channels: int) -> None:
        super().__init__()
        self.num_classes = cfg.num_classes
        self.share_tower = _tower(cfg.num_share_convs, in_channels, cfg.norm)
        self.cls_tower = _tower(cfg.num_cls_convs, in_channels, cfg.norm)
        self.bbox_tower = _tower(cfg.num_box_convs, in_channels, cfg.norm)
        self.cls_logits = nn.Conv2d(in_channels, cfg.num_classes, 3, padding=1)
        self.bbox_pred = nn.Conv2d(in_channels, 4, 3, padding=1)
        self.ctrness = nn.Conv2d(in_channels, 1, 3, padding=1)
        self.scales = nn.ModuleList(Scale() for _ in cfg.strides) if cfg.use_scale else None
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.normal_(module.weight, std=0.01)
                nn.init.constant_(module.bias, 0.0)
        # focal-loss prior: every location starts with class probability ``prior_prob``
        nn.init.constant_(self.cls_logits.bias, -math.log((1 - cfg.prior_prob) / cfg.prior_prob))

    def forward(self, features: Sequence[Tensor]) -> FCOSOutputs:
        logits, bbox_reg, ctrness = [], [], []
        for level, feature in enumerate(features):
            feature = self.share_tower(feature)
            cls_feat = self.cls_tower(feature)
            box_feat = self.bbox_tower(feature)
            logits.append(self.cls_logits(cls_feat))
            ctrness.append(self.ctrness(box_feat))
            reg = self.bbox_pred(box_feat)
            if self.scales is not None:
                reg = self.scales[level](reg)
            bbox_reg.append(F.relu(reg))  # "improved FCOS": ReLU instead of exp
        return logits, bbox_reg, ctrness


def fcos_locations(sizes: Sequence[tuple[int, int]], strides: Sequence[int], device: torch.device | None = None) -> list[Tensor]:
    """``(H*W, 2)`` image coordinates ``(x, y)`` of each level's locations: ``i * stride + stride // 2``."""
    out = []
    for (h, w), stride in zip(sizes, strides):
        xs = torch.arange(0, w * stride, step=stride, dtype=torch.float32, device=device)
        ys = torch.arange(0, h * stride, step=stride, dtype=torch.float32, device=device)
        yy, xx = torch.meshgrid(ys, xs, indexing="ij")
        out.append(torch.stack((xx.reshape(-1), yy.reshape(-1)), dim=1) + stride // 2)
    return out


def _level_candidates(
    locations: Tensor, logits: Tensor, bbox_reg: Tensor, ctrness: Tensor, stride: int, cfg: FCOSConfig
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Boxes, squared scores, classes and locations of one level's candidates (one image)."""
    c = logits.shape[0]
    probs = logits.reshape(c, -1).t().sigmoid()  # (HW, C)
    reg = bbox_reg.reshape(4, -1).t() * stride  # distances in pixels
    ctr = ctrness.reshape(-1).sigmoid()
    if cfg.thresh_with_ctr:
        probs = probs * ctr[:, None]
    candidates = probs > cfg.score_threshold
    num = int(candidates.sum())
    if not cfg.thresh_with_ctr:
        probs = probs * ctr[:, None]
    scores = probs[candidates]
    nonzero = candidates.nonzero()
    loc_idx, classes = nonzero[:, 0], nonzero[:, 1]
    if num > cfg.pre_nms_topk:
        scores, top = scores.topk(cfg.pre_nms_topk, sorted=False)
        loc_idx, classes = loc_idx[top], classes[top]
    reg = reg[loc_idx]
    locs = locations[loc_idx]
    boxes = torch.stack(
        (locs[:, 0] - reg[:, 0], locs[:, 1] - reg[:, 1], locs[:, 0] + reg[:, 2], locs[:, 1] + reg[:, 3]), dim=1
    )
    return boxes, scores, classes, locs


def fcos_detections(
    locations: Sequence[Tensor],
    outputs: FCOSOutputs,
    strides: Sequence[int],
    image_size: tuple[int, int],
    cfg: FCOSConfig,
    batch_index: int = 0,
) -> PPADetections:
    """The test-time detections of image ``batch_index`` from the head outputs.

    Candidates are gathered level by level, then class-wise NMS keeps the best boxes (by decreasing
    score) and, when more than ``post_nms_topk`` remain, only those scoring at least the
    ``post_nms_topk``-th best score survive (ties at the cut are all kept, as the official
    ``kthvalue`` rule does). Boxes are not clipped.
    """
    logits, bbox_reg, ctrness = outputs
    parts = [
        _level_candidates(loc, lg[batch_index], rg[batch_index], ct[batch_index], s, cfg)
        for loc, lg, rg, ct, s in zip(locations, logits, bbox_reg, ctrness, strides)
    ]
    boxes = torch.cat([p[0] for p in parts])
    scores = torch.cat([p[1] for p in parts]).sqrt()
    classes = torch.cat([p[2] for p in parts])
    locs = torch.cat([p[3] for p in parts])
    det = PPADetections(image_size=image_size, boxes=boxes, scores=scores, classes=classes, locations=locs)
    if cfg.nms_threshold > 0:
        det = det.select(batched_nms(boxes.float(), scores, classes, cfg.nms_threshold))
    n = len(det)
    if n > cfg.post_nms_topk > 0:
        kth = torch.kthvalue(det.scores.cpu(), n - cfg.post_nms_topk + 1).values.item()
        det = det.select(torch.nonzero(det.scores >= kth).squeeze(1))
    return det
