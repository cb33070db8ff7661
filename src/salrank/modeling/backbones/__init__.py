"""Backbone networks shared by the models (Swin, ResNet, VoVNet, EfficientNet-Lite).

The Swin Transformer (Mask2Former/D2 variant, SeqRank and PoseSOR) and ResNet/ResNeXt (SeqRank's
R50/R101 configs) are exported here; VoVNet (PPA) and EfficientNet-Lite (the default model) live in
their own modules. The Swin and ResNet backbones map normalised ``(B, 3, H, W)`` images to
``{"res2": ..., "res5": ...}`` feature maps (strides 4, 8, 16, 32) and expose ``out_channels``,
``out_strides`` and ``size_divisibility``.
ImageNet weights load with :mod:`salrank.modeling.backbones.pretrained`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import nn

from salrank.config import cfg_get
from salrank.modeling.backbones.pretrained import load_resnet_pretrained, load_swin_pretrained
from salrank.modeling.backbones.resnet import OFFICIAL_NAMES as RESNET_OFFICIAL_NAMES
from salrank.modeling.backbones.resnet import ResNet, ResNetConfig
from salrank.modeling.backbones.swin import SwinConfig, SwinTransformer

BackboneConfig = SwinConfig | ResNetConfig


def build_backbone(config: BackboneConfig) -> nn.Module:
    """The backbone a config describes."""
    if isinstance(config, SwinConfig):
        return SwinTransformer(config)
    if isinstance(config, ResNetConfig):
        return ResNet(config)
    raise TypeError(f"not a backbone config: {type(config).__name__}")


def backbone_config_from_official(cfg: Mapping[str, Any]) -> BackboneConfig:
    """The backbone config of an official SeqRank/PoseSOR config (``MODEL.BACKBONE.NAME``)."""
    name = cfg_get(dict(cfg), "MODEL.BACKBONE.NAME", "ResNeXt50")
    if name == "D2SwinTransformer":
        return SwinConfig.from_official_cfg(cfg)
    if name in RESNET_OFFICIAL_NAMES:
        return ResNetConfig.from_official_cfg(cfg)
    raise ValueError(f"backbone {name!r} is not supported (supported: D2SwinTransformer, {', '.join(RESNET_OFFICIAL_NAMES)})")


__all__ = [
    "BackboneConfig",
    "ResNet",
    "ResNetConfig",
    "SwinConfig",
    "SwinTransformer",
    "backbone_config_from_official",
    "build_backbone",
    "load_resnet_pretrained",
    "load_swin_pretrained",
]
