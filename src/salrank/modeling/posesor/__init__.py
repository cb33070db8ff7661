"""PoseSOR (Guan & Lau, ECCV 2024): "Human Pose Can Guide Our Attention", in pure PyTorch.

Quick use::

    from salrank.modeling.posesor import build_posesor, load_official_posesor_checkpoint
    model = build_posesor("posesor-swinl")                          # Swin-L, 768x768, random weights
    load_official_posesor_checkpoint(model, "checkpoint.pth")       # the authors' released checkpoint
    result = model.predict([rgb_uint8_image], ["photo"])[0]          # RankedInstances, most salient first
    result.keypoints                                                 # (N, 17, 3) COCO joints: x, y px, visibility

Modules, in the order of the paper's method section: :mod:`.sis_decoder` (salient instance
segmentation), :mod:`.query_selection`, :mod:`.pose_interaction` (PAI), :mod:`.pose_ranking` (PDR),
:mod:`.readout` (rank scores, joints, duplicate merge); :mod:`.posesor` (the model), :mod:`.config`
(typed config, presets, official yaml), :mod:`.key_map` (official checkpoints).
"""

from __future__ import annotations

import os
from typing import Any

from salrank.modeling.posesor.config import (
    PAI_VARIANTS,
    PDR_VARIANTS,
    POSESOR_PRESETS,
    PAIConfig,
    PDRConfig,
    PoseSORBackboneConfig,
    PoseSORConfig,
    PoseSORInputConfig,
    PoseSORTestConfig,
    SISDecoderConfig,
    posesor_config_from_official_yaml,
    posesor_preset,
    posesor_swinl_config,
    posesor_tiny_config,
    register_posesor_preset,
)
from salrank.modeling.posesor.key_map import (
    POSESOR_KEY_MAP,
    checkpoint_variant,
    describe_checkpoint,
    load_official_posesor_checkpoint,
)
from salrank.modeling.posesor.pose_interaction import (
    PAIOutput,
    PAIPrediction,
    PoseAwareInteraction,
)
from salrank.modeling.posesor.pose_ranking import PDROutput, PoseDrivenRanking
from salrank.modeling.posesor.posesor import (
    PoseSOR,
    PoseSORFeatures,
    PoseSORPrediction,
    build_posesor,
    resize_for_posesor,
)
from salrank.modeling.posesor.query_selection import (
    QuerySlots,
    gather_query_slots,
    select_hit_queries,
)
from salrank.modeling.posesor.readout import (
    heatmap_argmax,
    merge_duplicates,
    partition_maps,
    rank_scores,
)
from salrank.modeling.posesor.sis_decoder import SISDecoder, SISOutput, SISPrediction


def load_posesor_from_official(
    config: str | os.PathLike[str] | dict[str, Any] | PoseSORConfig, checkpoint: str | os.PathLike[str], **overrides: Any
) -> PoseSOR:
    """Build PoseSOR from an official yaml (or a :class:`PoseSORConfig` / preset name) and load an official checkpoint."""
    if isinstance(config, PoseSORConfig):
        cfg = config
    elif isinstance(config, str) and config in POSESOR_PRESETS:
        cfg = posesor_preset(config)
    else:
        cfg = posesor_config_from_official_yaml(config, **overrides)
    model = build_posesor(cfg)
    load_official_posesor_checkpoint(model, checkpoint)
    return model.eval()


__all__ = [
    "PAI_VARIANTS",
    "PDR_VARIANTS",
    "POSESOR_KEY_MAP",
    "POSESOR_PRESETS",
    "PAIConfig",
    "PAIOutput",
    "PAIPrediction",
    "PDRConfig",
    "PDROutput",
    "PoseAwareInteraction",
    "PoseDrivenRanking",
    "PoseSOR",
    "PoseSORBackboneConfig",
    "PoseSORConfig",
    "PoseSORFeatures",
    "PoseSORInputConfig",
    "PoseSORPrediction",
    "PoseSORTestConfig",
    "QuerySlots",
    "SISDecoder",
    "SISDecoderConfig",
    "SISOutput",
    "SISPrediction",
    "build_posesor",
    "checkpoint_variant",
    "describe_checkpoint",
    "gather_query_slots",
    "heatmap_argmax",
    "load_official_posesor_checkpoint",
    "load_posesor_from_official",
    "merge_duplicates",
    "partition_maps",
    "posesor_config_from_official_yaml",
    "posesor_preset",
    "posesor_swinl_config",
    "posesor_tiny_config",
    "rank_scores",
    "register_posesor_preset",
    "resize_for_posesor",
    "select_hit_queries",
]
