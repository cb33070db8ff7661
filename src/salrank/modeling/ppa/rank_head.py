"""PPA's saliency-ranking (SOR) head, with the official baseline and ablation variants.

For every detection the head sees its pooled ROI features (256 x 14 x 14) and its mask probability
(28x28, max-pooled to 14x14). The paper's head, **Position-Preserved Attention**
(``SelfAttentionWithPosConvCat``), works in two stages:

1. *Position embedding*: the two absolute-coordinate channels that survived ROI pooling (``pos``: the
   normalised y and x of every ROI bin, see :mod:`salrank.modeling.ppa.roi_heads`) are concatenated to
   the features together with ``relu(conv3x3(pos))``; four 3x3 convolutions (the last with stride 2)
   and two fully connected layers turn this into one object vector.
2. *Feature interaction*: a transformer encoder (post-norm, ReLU, PyTorch defaults) lets the object
   vectors of one image attend to each other, and a linear layer gives ``num_ranks`` rank logits.

The other official heads differ from it in one thing each, so they are options of the same module:

==================================  ====================  =========  =======================
official name                       position channels     attention  box position
==================================  ====================  =========  =======================
``SelfAttentionWithPosConvCat``     pos + relu(conv(pos))  yes        -
``SelfAttentionWithPosCat``         pos                   yes        -
``SelfAttentionPredictor``          -                     yes        -
``SinglePredictor`` (baseline)      -                     no         -
``SinglePredictorWithPos``          pos + relu(conv(pos))  no         -
``SelfAttentionWithOtherPos``       -                     yes        ``xywh`` 4-vector appended
``SelfAttentionWithOtherPosQuant``  -                     yes        learned embedding of a QxQ grid cell
==================================  ====================  =========  =======================
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from salrank.modeling.ppa.config import RankHeadConfig

__all__ = ["RANK_HEAD_VARIANTS", "RankHead", "RankHeadVariant", "box_position_vector", "box_quant_index"]


@dataclass(frozen=True)
class RankHeadVariant:
    position_channels: str
    """``"none"``, ``"pos"`` (the 2 coordinate channels) or ``"pos+conv"`` (plus ``relu(conv(pos))``)."""
    attention: bool
    """Transformer encoder over the detections of the image."""
    box_position: str
    """``"none"``, ``"xywh"`` (appended to the object vector) or ``"quant"`` (added learned embedding)."""


RANK_HEAD_VARIANTS: dict[str, RankHeadVariant] = {
    "SelfAttentionWithPosConvCat": RankHeadVariant("pos+conv", True, "none"),
    "SelfAttentionWithPosCat": RankHeadVariant("pos", True, "none"),
    "SelfAttentionPredictor": RankHeadVariant("none", True, "none"),
    "SinglePredictor": RankHeadVariant("none", False, "none"),
    "SinglePredictorWithPos": RankHeadVariant("pos+conv", False, "none"),
    "SelfAttentionWithOtherPos": RankHeadVariant("none", True, "xywh"),
    "SelfAttentionWithOtherPosQuant": RankHeadVariant("none", True, "quant"),
}


def box_position_vector(boxes: Tensor, width: float, height: float) -> Tensor:
    """``(N, 4)`` box position of ``SelfAttentionWithOtherPos``: ``cx/W, cy/H, w/W, (y1 + y2)/H``.

    The last entry reproduces the official code, which adds the y coordinates where the box height
    (``y2 - y1``) was presumably meant; checkpoints trained with that head expect it.
    """
    return torch.stack(
        (
            (0.5 * (boxes[:, 0] + boxes[:, 2])) / width,
            (0.5 * (boxes[:, 1] + boxes[:, 3])) / height,
            (boxes[:, 2] - boxes[:, 0]) / width,
            (boxes[:, 3] + boxes[:, 1]) / height,
        ),
        dim=1,
    )


def box_quant_index(boxes: Tensor, width: float, height: float, quant_num: int) -> Tensor:
    """Grid-cell index ``qx * Q + qy`` of each box centre on a ``Q x Q`` grid over the image.

    As in the official code the cell coordinates are truncated towards zero. Box centres outside the
    image (FCOS boxes are not clipped) would index out of the official table and crash; here the
    index is clamped into the table instead.
    """
    cx = 0.5 * (boxes[:, 0] + boxes[:, 2]) / (width / quant_num)
    cy = 0.5 * (boxes[:, 1] + boxes[:, 3]) / (height / quant_num)
    index = cx.long() * quant_num + cy.long()
    return index.clamp(-(quant_num**2), quant_num**2 - 1)


class RankHead(nn.Module):
    """Rank logits ``(N, num_ranks)`` for the ``N`` detections of one image.

    Args:
        cfg: the ``MODEL.SOR`` settings; ``cfg.name`` picks the variant (:data:`RANK_HEAD_VARIANTS`).
        in_channels: channels of the pooled ROI features (the official head is built with
            ``ROI_MASK_HEAD.CONV_DIM``, which must equal the FPN width).
        resolution: pooled ROI size ``R`` (14); the FC input is ``conv_dim * (R // 2) ** 2``.
    """

    def __init__(self, cfg: RankHeadConfig, in_channels: int, resolution: int = 14) -> None:
        super().__init__()
        if cfg.name not in RANK_HEAD_VARIANTS:
            raise ValueError(f"unknown SOR head {cfg.name!r}; choose from {', '.join(RANK_HEAD_VARIANTS)}")
        self.variant = v = RANK_HEAD_VARIANTS[cfg.name]
        extra = {"none": 0, "pos": 2, "pos+conv": 4}[v.position_channels]
        self.convs = nn.ModuleList(
            nn.Conv2d(in_channels + 1 + extra if k == 0 else cfg.conv_dim, cfg.conv_dim, 3, stride=2 if k == cfg.num_conv - 1 else 1, padding=1)
            for k in range(cfg.num_conv)
        )
        self.fc1 = nn.Linear(cfg.conv_dim * (resolution // 2) ** 2, cfg.dense_dim)
        self.fc2 = nn.Linear(cfg.dense_dim, cfg.obj_dim)
        self.pos_conv = nn.Conv2d(2, 2, 3, padding=1) if v.position_channels == "pos+conv" else None
        obj_dim = cfg.obj_dim + (4 if v.box_position == "xywh" else 0)
        self.obj_dim = obj_dim
        self.encoder: nn.TransformerEncoder | None = None
        if v.attention:
            layer = nn.TransformerEncoderLayer(d_model=cfg.d_model, nhead=cfg.n_head, dim_feedforward=4 * cfg.d_model)
            self.encoder = nn.TransformerEncoder(layer, cfg.num_layers, enable_nested_tensor=False)
        self.pos_embedding = (
            nn.Parameter(torch.rand(cfg.quant_num**2, cfg.obj_dim // 2 * 2)) if v.box_position == "quant" else None
        )
        self.quant_num = cfg.quant_num
        self.classifier = nn.Linear(obj_dim, cfg.num_ranks)
        self._init_weights()

    def _init_weights(self) -> None:
        for layer in [*self.convs, self.fc1, self.fc2] + ([self.pos_conv] if self.pos_conv is not None else []):
            nn.init.kaiming_normal_(layer.weight, mode="fan_out", nonlinearity="relu")
            nn.init.constant_(layer.bias, 0.0)
        nn.init.normal_(self.classifier.weight, mean=0.0, std=0.01)
        nn.init.constant_(self.classifier.bias, 0.0)
        if self.encoder is not None:
            for layer in self.encoder.layers:
                for linear in (layer.linear1, layer.linear2):
                    nn.init.kaiming_normal_(linear.weight, mode="fan_out", nonlinearity="relu")
                    nn.init.constant_(linear.bias, 0.0)

    def forward(
        self,
        features: Tensor,
        mask_probs: Tensor,
        pos: Tensor | None = None,
        boxes: Tensor | None = None,
        image_wh: tuple[float, float] | None = None,
    ) -> Tensor:
        """Rank logits of one image's detections.

        Args:
            features: pooled ROI features ``(N, C, R, R)``.
            mask_probs: mask probabilities ``(N, 1, 2R, 2R)``.
            pos: the pooled coordinate channels ``(N, 2, R, R)`` (variants with position channels).
            boxes: ``(N, 4)`` boxes in input pixels (variants with a box position).
            image_wh: ``(width, height)`` that normalises the box coordinates.
        """
        v = self.variant
        parts = [features, F.max_pool2d(mask_probs, kernel_size=2, stride=2)]
        if v.position_channels != "none":
            if pos is None:
                raise ValueError("this SOR head needs the pooled position channels")
            parts.append(pos)
            if self.pos_conv is not None:
                parts.append(F.relu(self.pos_conv(pos)))
        x = torch.cat(parts, dim=1)
        for conv in self.convs:
            x = F.relu(conv(x), inplace=True)
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x), inplace=True)
        obj = F.relu(self.fc2(x), inplace=True)
        if v.box_position != "none":
            if boxes is None or image_wh is None:
                raise ValueError("this SOR head needs the boxes and the image size")
            width, height = image_wh
            if v.box_position == "xywh":
                obj = torch.cat((obj, box_position_vector(boxes, width, height)), dim=1)
            else:
                assert self.pos_embedding is not None
                obj = obj + self.pos_embedding[box_quant_index(boxes, width, height, self.quant_num)]
        if self.encoder is not None:
            obj = self.encoder(obj.reshape(-1, 1, self.obj_dim)).squeeze(1)  # (sequence, batch=1, dim)
        return self.classifier(obj)
