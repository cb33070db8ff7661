"""ResNet / ResNeXt backbones with torchvision's module names (no torchvision needed).

He et al., "Deep Residual Learning for Image Recognition" (CVPR 2016); Xie et al., "Aggregated
Residual Transformations for Deep Neural Networks" (CVPR 2017). SeqRank's ``configs/R50.yaml`` and
``R101.yaml`` use torchvision's ImageNet ``resnext50_32x4d`` / ``resnext101_32x8d`` (its code also
offers ``resnet152``) and take ``layer1 .. layer4`` as ``res2 .. res5``. This is the torchvision
architecture (v1.5: the stride sits on the 3x3 conv), with the same parameter names, so a torchvision
ImageNet state dict loads directly (its ``fc`` classifier is ignored).

BatchNorm layers are ordinary ``nn.BatchNorm2d`` as in the official code (they use batch statistics in
training mode); call ``.eval()`` on them to freeze the statistics.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from torch import Tensor, nn

from salrank.config import cfg_get

FEATURE_NAMES = ("res2", "res3", "res4", "res5")
STAGE_BLOCKS = {50: (3, 4, 6, 3), 101: (3, 4, 23, 3), 152: (3, 8, 36, 3)}

# Official SeqRank MODEL.BACKBONE.NAME -> (depth, groups, width_per_group)
OFFICIAL_NAMES = {
    "ResNeXt50": (50, 32, 4),
    "ResNeXt101": (101, 32, 8),
    "ResNet152": (152, 1, 64),
}


@dataclass
class ResNetConfig:
    """Hyper-parameters of :class:`ResNet` (torchvision's ``resnet*`` / ``resnext*`` families)."""

    depth: int = 50
    groups: int = 1
    width_per_group: int = 64
    out_features: tuple[str, ...] = FEATURE_NAMES

    def __post_init__(self) -> None:
        if self.depth not in STAGE_BLOCKS:
            raise ValueError(f"ResNet depth must be one of {sorted(STAGE_BLOCKS)}, got {self.depth}")
        self.out_features = tuple(self.out_features)
        for name in self.out_features:
            if name not in FEATURE_NAMES:
                raise ValueError(f"unknown ResNet output {name!r}; choose from {FEATURE_NAMES}")

    @property
    def num_features(self) -> tuple[int, ...]:
        return (256, 512, 1024, 2048)

    @classmethod
    def resnet50(cls, **kw: Any) -> ResNetConfig:
        return cls(depth=50, **kw)

    @classmethod
    def resnet101(cls, **kw: Any) -> ResNetConfig:
        return cls(depth=101, **kw)

    @classmethod
    def resnet152(cls, **kw: Any) -> ResNetConfig:
        return cls(depth=152, **kw)

    @classmethod
    def resnext50_32x4d(cls, **kw: Any) -> ResNetConfig:
        return cls(depth=50, groups=32, width_per_group=4, **kw)

    @classmethod
    def resnext101_32x8d(cls, **kw: Any) -> ResNetConfig:
        return cls(depth=101, groups=32, width_per_group=8, **kw)

    @classmethod
    def from_official_cfg(cls, cfg: Mapping[str, Any]) -> ResNetConfig:
        """From an official SeqRank config (``MODEL.BACKBONE.NAME`` ResNeXt50 / ResNeXt101 / ResNet152)."""
        name = cfg_get(dict(cfg), "MODEL.BACKBONE.NAME", "ResNeXt50")
        if name not in OFFICIAL_NAMES:
            raise ValueError(f"not a ResNet backbone name: {name!r} (known: {', '.join(OFFICIAL_NAMES)})")
        depth, groups, width = OFFICIAL_NAMES[name]
        keys = tuple(cfg_get(dict(cfg), "MODEL.BACKBONE.FEATURE_KEYS", FEATURE_NAMES))
        return cls(depth=depth, groups=groups, width_per_group=width, out_features=keys)


class Bottleneck(nn.Module):
    """torchvision's ``Bottleneck``: 1x1 -> 3x3 (stride, groups) -> 1x1 (x4), BatchNorm, residual."""

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, groups: int = 1, width_per_group: int = 64) -> None:
        super().__init__()
        width = int(planes * (width_per_group / 64.0)) * groups
        self.conv1 = nn.Conv2d(inplanes, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride=stride, padding=1, groups=groups, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, planes * self.expansion, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample: nn.Sequential | None = None
        if stride != 1 or inplanes != planes * self.expansion:
            self.downsample = nn.Sequential(
                nn.Conv2d(inplanes, planes * self.expansion, 1, stride=stride, bias=False),
                nn.BatchNorm2d(planes * self.expansion),
            )

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class ResNet(nn.Module):
    """ResNet/ResNeXt trunk; ``forward(images)`` returns ``{"res2": ..., "res5": ...}`` (strides 4..32).

    Module names follow torchvision (``conv1``, ``bn1``, ``layer1 .. layer4``), without ``fc``.
    """

    def __init__(self, config: ResNetConfig | None = None) -> None:
        super().__init__()
        cfg = config or ResNetConfig()
        self.config = cfg
        self.out_features = tuple(cfg.out_features)
        self.num_features = list(cfg.num_features)
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        inplanes = 64
        for i, (planes, blocks) in enumerate(zip((64, 128, 256, 512), STAGE_BLOCKS[cfg.depth])):
            layers = []
            for j in range(blocks):
                stride = 2 if (i > 0 and j == 0) else 1
                layers.append(Bottleneck(inplanes, planes, stride, cfg.groups, cfg.width_per_group))
                inplanes = planes * Bottleneck.expansion
            self.add_module(f"layer{i + 1}", nn.Sequential(*layers))
        for m in self.modules():  # torchvision's initialisation
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    @property
    def out_channels(self) -> dict[str, int]:
        return {n: c for n, c in zip(FEATURE_NAMES, self.num_features) if n in self.out_features}

    @property
    def out_strides(self) -> dict[str, int]:
        return {n: s for n, s in zip(FEATURE_NAMES, (4, 8, 16, 32)) if n in self.out_features}

    @property
    def size_divisibility(self) -> int:
        return 32

    def forward(self, images: Tensor) -> dict[str, Tensor]:
        if images.dim() != 4:
            raise ValueError(f"ResNet takes a (B, C, H, W) tensor, got shape {tuple(images.shape)}")
        x = self.maxpool(self.relu(self.bn1(self.conv1(images))))
        outs: dict[str, Tensor] = {}
        last = max((FEATURE_NAMES.index(n) for n in self.out_features), default=-1)
        for i, name in enumerate(FEATURE_NAMES):
            if i > last:
                break
            x = getattr(self, f"layer{i + 1}")(x)
            if name in self.out_features:
                outs[name] = x
        return outs

    @staticmethod
    def official_key_rules(official_prefix: str = "backbone.", prefix: str = "backbone.") -> list[tuple[str, str]]:
        """Rules renaming SeqRank's ResNet keys: its stem is ``layer0 = Sequential(conv1, bn1, relu, maxpool)``."""
        src, dst = re.escape(official_prefix), prefix.replace("\\", r"\\")
        return [
            (src + r"layer0\.0\.(.+)", dst + r"conv1.\1"),
            (src + r"layer0\.1\.(.+)", dst + r"bn1.\1"),
            (src + r"(layer[1-4]\..+)", dst + r"\1"),
        ]
