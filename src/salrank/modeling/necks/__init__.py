"""Necks: feature pyramids built on a backbone's multi-scale outputs (FPN variants of the models).

* :class:`FPN` - SeqRank's (corrected models) and PoseSOR's pyramid;
* :class:`FrcPN` - the original SeqRank models' pyramid with FRC fusion (:func:`frc_average`);
* ``fcos_fpn`` - PPA's FCOS feature pyramid (its own module).

:class:`NeckConfig` / :func:`build_neck` build the SeqRank/PoseSOR necks from a typed config or from an
official config (``MODEL.NECK.NAME``, ``MODEL.COMMON.EMBED_DIM``, ``MODEL.BACKBONE.NUM_FEATURES`` /
``FEATURE_KEYS``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from torch import nn

from salrank.config import cfg_get
from salrank.modeling.necks.fpn import FPN, ConvGELUNorm, FPNLayer
from salrank.modeling.necks.frcpn import FRC, FrcPN, frc_average

NECKS: dict[str, type[nn.Module]] = {"FPN": FPN, "FrcPN": FrcPN}


@dataclass
class NeckConfig:
    """Which SeqRank/PoseSOR neck to build and its sizes."""

    name: str = "FPN"
    """``"FPN"`` or ``"FrcPN"`` (the official ``MODEL.NECK.NAME``)."""
    dim: int = 256
    in_channels: tuple[int, ...] = (192, 384, 768, 1536)
    in_features: tuple[str, ...] = ("res2", "res3", "res4", "res5")

    def __post_init__(self) -> None:
        if self.name not in NECKS:
            raise ValueError(f"unknown neck {self.name!r}; choose from {', '.join(NECKS)}")
        self.in_channels = tuple(int(c) for c in self.in_channels)
        self.in_features = tuple(self.in_features)

    @classmethod
    def from_official_cfg(cls, cfg: Mapping[str, Any]) -> NeckConfig:
        c = dict(cfg)
        return cls(
            name=str(cfg_get(c, "MODEL.NECK.NAME", "FPN")),
            dim=int(cfg_get(c, "MODEL.COMMON.EMBED_DIM", 256)),
            in_channels=tuple(cfg_get(c, "MODEL.BACKBONE.NUM_FEATURES", (256, 512, 1024, 2048))),
            in_features=tuple(cfg_get(c, "MODEL.BACKBONE.FEATURE_KEYS", ("res2", "res3", "res4", "res5"))),
        )


def build_neck(config: NeckConfig) -> nn.Module:
    """The :class:`FPN` or :class:`FrcPN` a config describes."""
    return NECKS[config.name](config.in_channels, config.dim, config.in_features)


__all__ = ["FPN", "FRC", "ConvGELUNorm", "FPNLayer", "FrcPN", "NeckConfig", "build_neck", "frc_average"]
