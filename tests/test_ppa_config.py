"""Reading PPA configs from official-style detectron2 yaml files."""

from __future__ import annotations

from pathlib import Path

import pytest

from salrank.config import config_from_dict, config_to_dict
from salrank.errors import InputError
from salrank.modeling.backbones.vovnet import VoVNetSpec
from salrank.modeling.ppa import PPAConfig, ppa_config_from_official_yaml, ppa_v39_config

BASE = """
MODEL:
  META_ARCHITECTURE: "GeneralizedRCNN"
  BACKBONE: {NAME: "build_fcos_vovnet_fpn_backbone", FREEZE_AT: 0}
  VOVNET: {OUT_FEATURES: ["stage3", "stage4", "stage5"]}
  FPN: {IN_FEATURES: ["stage3", "stage4", "stage5"]}
  PROPOSAL_GENERATOR: {NAME: "FCOS"}
  FCOS: {POST_NMS_TOPK_TEST: 50, NUM_CLASSES: 1}
  MASK_ON: True
  MASKIOU_ON: True
  ROI_HEADS: {NAME: "CenterROIHeads", IN_FEATURES: ["p3", "p4", "p5"], NUM_CLASSES: 1}
  ROI_MASK_HEAD: {NAME: "SpatialAttentionMaskHead", ASSIGN_CRITERION: "ratio", NUM_CONV: 4, POOLER_RESOLUTION: 14}
  SOR: {NAME: "SinglePredictor"}
INPUT: {MIN_SIZE_TRAIN: [480], MIN_SIZE_TEST: 480}
"""

PPA_HEAD = """
_BASE_: "base.yaml"
MODEL:
  VOVNET: {CONV_BODY: "V-39-eSE"}
  SOR:
    NAME: "SelfAttentionWithPosConvCat"
    CONV_DIM: 256
    NUM_CONV: 4
    DENSE_DIM: 1024
    OBJ_DIM: 1024
    TRANSFORMER: {D_MODEL: 1024, N_HEAD: 4, LAYERS: 4, USE_POS: True}
"""


def write(tmp: Path, name: str, text: str) -> Path:
    path = tmp / name
    path.write_text(text)
    return path


def test_base_plus_child_gives_the_released_model(tmp_path: Path) -> None:
    write(tmp_path, "base.yaml", BASE)
    cfg = ppa_config_from_official_yaml(write(tmp_path, "ppa.yaml", PPA_HEAD))
    assert cfg == ppa_v39_config()
    assert cfg.fcos.score_threshold == 0.3  # forced as train_sor.py does
    assert ppa_config_from_official_yaml(tmp_path / "ppa.yaml", score_threshold=None).fcos.score_threshold == 0.05


def test_baseline_and_ablation_heads(tmp_path: Path) -> None:
    write(tmp_path, "base.yaml", BASE)
    baseline = ppa_config_from_official_yaml(write(tmp_path, "baseline.yaml", """
_BASE_: "base.yaml"
MODEL:
  VOVNET: {CONV_BODY: "V-39-eSE"}
  SOR: {NAME: "SinglePredictor", CONV_DIM: 128, NUM_CONV: 2, DENSE_DIM: 512, OBJ_DIM: 256}
"""))
    assert baseline.rank_head.name == "SinglePredictor" and baseline.rank_head.conv_dim == 128 and not baseline.rank_head.use_pos
    xywh = ppa_config_from_official_yaml(write(tmp_path, "xywh.yaml", PPA_HEAD.replace("SelfAttentionWithPosConvCat", "SelfAttentionWithOtherPos")
                                              .replace("OBJ_DIM: 1024", "OBJ_DIM: 1020").replace("USE_POS: True", "USE_POS: False")))
    assert xywh.rank_head.obj_dim == 1020
    v57 = ppa_config_from_official_yaml(write(tmp_path, "v57.yaml", PPA_HEAD.replace("V-39-eSE", "V-57-eSE")))
    assert v57.resolved_vovnet_spec().block_per_stage == (1, 1, 4, 3)


def test_custom_vovnet_spec(tmp_path: Path) -> None:
    write(tmp_path, "base.yaml", BASE)
    path = write(tmp_path, "tiny.yaml", PPA_HEAD.replace("V-39-eSE", "V-39-eSE-narrow"))
    with pytest.raises(InputError, match="vovnet_spec"):
        ppa_config_from_official_yaml(path)
    spec = {"stem": [16, 16, 32], "stage_conv_ch": [16, 24, 32, 40], "stage_out_ch": [32, 64, 96, 128],
            "layer_per_block": 5, "block_per_stage": [1, 1, 2, 2], "eSE": True, "dw": False}
    cfg = ppa_config_from_official_yaml(path, vovnet_spec=spec)
    assert cfg.resolved_vovnet_spec() == VoVNetSpec("V-39-eSE-narrow", (16, 16, 32), (16, 24, 32, 40), (32, 64, 96, 128), 5, (1, 1, 2, 2))
    # the dict form round-trips (e.g. through safetensors metadata)
    assert config_from_dict(PPAConfig, config_to_dict(cfg)) == cfg


@pytest.mark.parametrize(
    "patch,message",
    [
        (("CenterROIHeads", "MaskRCNNHeads"), "CenterMask"),
        (("build_fcos_vovnet_fpn_backbone", "build_resnet_fpn_backbone"), "VoVNet"),
        (("MASKIOU_ON: True", "MASKIOU_ON: False"), "MASKIOU_ON"),
        (('SOR: {NAME: "SinglePredictor"}', 'SOR: {NAME: "Transformer2000"}'), "unknown SOR head"),
        (("MASK_ON: True", "MASK_ON: True\n  KEYPOINT_ON: True"), "keypoint"),
    ],
)
def test_unsupported_variants_are_refused_with_a_reason(tmp_path: Path, patch: tuple[str, str], message: str) -> None:
    write(tmp_path, "base.yaml", BASE.replace(*patch))
    child = PPA_HEAD if "SOR: {NAME" not in patch[0] else PPA_HEAD.replace('NAME: "SelfAttentionWithPosConvCat"', 'NAME: "Transformer2000"')
    with pytest.raises(InputError, match=message) as info:
        ppa_config_from_official_yaml(write(tmp_path, "ppa.yaml", child))
    assert "ppa.yaml" in str(info.value)


def test_not_a_ppa_config(tmp_path: Path) -> None:
    path = write(tmp_path, "seqrank.yaml", "MODEL:\n  META_ARCHITECTURE: SeqRank\n")
    with pytest.raises(InputError, match="seqrank"):
        ppa_config_from_official_yaml(path)
    with pytest.raises(InputError, match="not found"):
        ppa_config_from_official_yaml(tmp_path / "missing.yaml")


def test_inconsistent_widths_are_explained() -> None:
    cfg = ppa_v39_config()
    cfg.roi_heads.mask_conv_dim = 128
    with pytest.raises(InputError, match="FPN.OUT_CHANNELS"):
        cfg.validate()
    cfg = ppa_v39_config()
    cfg.rank_head.d_model = 512
    with pytest.raises(InputError, match="D_MODEL"):
        cfg.validate()
