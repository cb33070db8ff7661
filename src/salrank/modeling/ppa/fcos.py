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

from salrank.modeling.layers.memory_format import memory_format_of
from salrank.modeling.ppa.config import FCOSConfig
from salrank.modeling.ppa.detections import PPADetections
from salrank.ops import batched_nms

__all__ = ["FCOSHead", "FCOSOutputs", "FusedFCOSTowers", "Scale", "fcos_detections", "fcos_locations"]


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
        self.fused_towers: FusedFCOSTowers | None = None
        """Set by :meth:`fuse_towers` (inference only); ``None`` runs the official module layout."""
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.normal_(module.weight, std=0.01)
                nn.init.constant_(module.bias, 0.0)
        # focal-loss prior: every location starts with class probability ``prior_prob``
        nn.init.constant_(self.cls_logits.bias, -math.log((1 - cfg.prior_prob) / cfg.prior_prob))

    def fuse_towers(self) -> bool:
        """Run the classification and box towers as one (an inference-only step; see :class:`FusedFCOSTowers`).

        The two towers read the same input, so their first convolutions become one convolution with
        the output channels of both, the later ones grouped convolutions (two groups), each GroupNorm
        one GroupNorm with twice the groups, and the centerness and box predictors one convolution:
        half the kernel launches on every level, the same function up to float rounding. The towers'
        parameters move into ``fused_towers`` (the state dict changes; load weights first). Returns
        ``False`` (and changes nothing) when the towers cannot be fused (different depths, no convs) or
        are already fused.
        """
        if self.fused_towers is not None:
            return False
        fused = FusedFCOSTowers.from_head(self)
        if fused is None:
            return False
        self.fused_towers = fused
        del self.cls_tower, self.bbox_tower, self.ctrness, self.bbox_pred
        return True

    def forward(self, features: Sequence[Tensor]) -> FCOSOutputs:
        if self.fused_towers is not None:
            if self.training:
                raise RuntimeError("the fused FCOS towers are an inference form; build an unfused model to train")
            return self._forward_fused(features)
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

    def _forward_fused(self, features: Sequence[Tensor]) -> FCOSOutputs:
        assert self.fused_towers is not None
        towers = self.fused_towers
        logits, bbox_reg, ctrness = [], [], []
        for level, feature in enumerate(features):
            cls_feat, box_feat = towers(self.share_tower(feature))
            logits.append(self.cls_logits(cls_feat))
            box_out = towers.box_predictor(box_feat)
            reg, ctr = box_out[:, :4], box_out[:, 4:]
            if self.scales is not None:
                reg = self.scales[level](reg)
            bbox_reg.append(F.relu(reg))
            ctrness.append(ctr)
        return logits, bbox_reg, ctrness


class FusedFCOSTowers(nn.Module):
    """FCOS's classification and box towers as one stack of convolutions (an inference form).

    Layer ``k`` of the cls tower and layer ``k`` of the box tower become one convolution with the
    output channels of both (``C -> 2C`` for the first layer, which both towers apply to the same
    input; a two-group ``2C -> 2C`` convolution after that) and one GroupNorm with twice the groups
    (GroupNorm normalises each group of consecutive channels on its own, so ``GN(2G, 2C)`` over the
    concatenation is the two ``GN(G, C)``). ``box_predictor`` is ``bbox_pred`` and ``ctrness`` stacked
    into one ``C -> 5`` convolution (both read the box tower). Build it with :meth:`from_head`.
    """

    def __init__(self, layers: nn.Sequential, box_predictor: nn.Conv2d, channels: int) -> None:
        super().__init__()
        self.layers = layers
        self.box_predictor = box_predictor
        self.channels = channels

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``(cls_feat, box_feat)`` for one level (views into one ``2C``-channel map)."""
        y = self.layers(x)
        return y[:, : self.channels], y[:, self.channels :]

    @classmethod
    @torch.no_grad()
    def from_head(cls, head: FCOSHead) -> FusedFCOSTowers | None:
        """The fused form of ``head``'s towers (copies of its weights), or ``None`` if they do not pair up."""
        cls_layers, box_layers = list(head.cls_tower), list(head.bbox_tower)
        if not cls_layers or len(cls_layers) != len(box_layers):
            return None
        layers: list[nn.Module] = []
        first = True
        for a, b in zip(cls_layers, box_layers):
            if type(a) is not type(b):
                return None
            if isinstance(a, nn.Conv2d):
                assert isinstance(b, nn.Conv2d)
                if a.weight.shape != b.weight.shape or a.bias is None or b.bias is None:
                    return None
                groups = 1 if first else 2
                conv = nn.Conv2d(a.in_channels * groups, 2 * a.out_channels, a.kernel_size, a.stride, a.padding, groups=groups)
                conv.weight.copy_(torch.cat((a.weight, b.weight)))
                conv.bias.copy_(torch.cat((a.bias, b.bias)))
                conv.weight.data = conv.weight.data.contiguous(memory_format=memory_format_of(a.weight))
                layers.append(conv.to(a.weight.device))
                first = False
            elif isinstance(a, nn.GroupNorm):
                assert isinstance(b, nn.GroupNorm)
                if (a.num_groups, a.num_channels, a.eps, a.affine) != (b.num_groups, b.num_channels, b.eps, b.affine):
                    return None
                norm = nn.GroupNorm(2 * a.num_groups, 2 * a.num_channels, a.eps, a.affine).to(a.weight.device)
                if a.affine:
                    norm.weight.copy_(torch.cat((a.weight, b.weight)))
                    norm.bias.copy_(torch.cat((a.bias, b.bias)))
                layers.append(norm)
            elif isinstance(a, nn.ReLU):
                layers.append(nn.ReLU(inplace=True))
            else:
                return None
        pred, ctr = head.bbox_pred, head.ctrness
        box_predictor = nn.Conv2d(pred.in_channels, pred.out_channels + ctr.out_channels, pred.kernel_size, pred.stride, pred.padding)
        box_predictor.weight.copy_(torch.cat((pred.weight, ctr.weight)))
        box_predictor.bias.copy_(torch.cat((pred.bias, ctr.bias)))
        box_predictor.weight.data = box_predictor.weight.data.contiguous(memory_format=memory_format_of(pred.weight))
        channels = cls_layers[0].out_channels if isinstance(cls_layers[0], nn.Conv2d) else 0
        return cls(nn.Sequential(*layers), box_predictor.to(pred.weight.device), channels)


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
