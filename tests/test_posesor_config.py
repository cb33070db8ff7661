"""PoseSOR's typed config: official yaml in and out, presets under the zoo's names, ablation switches."""

from __future__ import annotations

import dataclasses

import pytest
import yaml

from salrank.config import config_from_dict, config_to_dict
from salrank.errors import InputError
from salrank.modeling import build_model
from salrank.modeling.posesor import (
    PAI_VARIANTS,
    PDR_VARIANTS,
    POSESOR_PRESETS,
    PAIConfig,
    PDRConfig,
    PoseSOR,
    PoseSORConfig,
    posesor_config_from_official_yaml,
    posesor_preset,
    posesor_swinl_config,
    posesor_tiny_config,
)
from salrank.weights import list_entries


@pytest.mark.fixtures
def test_fixture_config_is_the_tiny_preset(shared_fixtures):
    cfg = posesor_config_from_official_yaml(shared_fixtures / "models" / "posesor" / "config.yaml")
    assert cfg == posesor_tiny_config()
    assert cfg.variant == "full" and cfg.sis.num_blocks == 6 and cfg.pai.key_feature == "res3" and cfg.pdr.mask_key == "res3"
    assert cfg.test.obj_threshold == 0.1 and cfg.test.maskness_threshold == 0.95


@pytest.mark.fixtures
def test_full_size_dump_is_the_released_model(shared_fixtures):
    cfg = posesor_config_from_official_yaml(shared_fixtures / "models" / "posesor" / "full_config-posesor.yaml")
    assert cfg == posesor_swinl_config("full")
    assert cfg.input.test_image_size == 768 and cfg.num_queries == 100 and cfg.pai.scene_bins == (4, 4)


def test_base_and_swinl_with_base_inheritance(tmp_path):
    base = {
        "MODEL": {
            "META_ARCHITECTURE": "PoseSOR",
            "PIXEL_MEAN": [123.675, 116.28, 103.53],
            "PIXEL_STD": [58.395, 57.12, 57.375],
            "SIS_HEAD": {"NUM_BLOCKS": 6},
            "ACTOR_INTERACTION": {"NAME": "PAI", "NUM_LAYERS": 1, "KEY_FEATURE": "res3", "SCENE_BINS": [4, 4]},
            "POSE_SHIFT": {"NAME": "PDR", "MASK_KEY": "res3"},
        },
        "INPUT": {"TEST_IMAGE_SIZE": 768},
    }
    swin = {"EMBED_DIM": 192, "DEPTHS": [2, 2, 18, 2], "NUM_HEADS": [6, 12, 24, 48], "WINDOW_SIZE": 12, "DROP_PATH_RATE": 0.2}
    swin["PRETRAIN_IMG_SIZE"] = 384
    swin_l = {"_BASE_": "base.yaml", "MODEL": {"BACKBONE": {"NAME": "D2SwinTransformer", "NUM_FEATURES": [192, 384, 768, 1536]}, "SWIN": swin}}
    (tmp_path / "base.yaml").write_text(yaml.safe_dump(base))
    (tmp_path / "swinL.yaml").write_text(yaml.safe_dump(swin_l))
    assert posesor_config_from_official_yaml(tmp_path / "swinL.yaml") == posesor_swinl_config()


@pytest.mark.parametrize("pai", list(PAI_VARIANTS))
@pytest.mark.parametrize("pdr", ["PDR", "PDRDCL"])
def test_official_yaml_round_trip(pai, pdr):
    cfg = posesor_tiny_config()
    cfg.pai = dataclasses.replace(cfg.pai, **PAI_VARIANTS[pai])
    cfg.pdr = dataclasses.replace(cfg.pdr, **PDR_VARIANTS[pdr])
    data = cfg.to_official_yaml()
    assert data["MODEL"]["ACTOR_INTERACTION"]["NAME"] == pai and data["MODEL"]["POSE_SHIFT"]["NAME"] == pdr
    back = posesor_config_from_official_yaml(yaml.safe_load(yaml.safe_dump(data)))
    assert back == cfg


def test_variant_names():
    assert posesor_swinl_config("id2").variant == "id2"
    assert posesor_swinl_config("full").variant == "full"
    assert posesor_swinl_config("PAIID3").variant == "PAIID3+PDR"
    assert posesor_swinl_config("id2").pai.official_name == "PAIID2"
    assert not posesor_swinl_config("id2").pai.keeps_scene_norm
    assert posesor_swinl_config("PAIID6").pai.keeps_scene_norm  # ID6 keeps the unused LayerNorm
    with pytest.raises(InputError, match="unknown PoseSOR variant"):
        posesor_swinl_config("id5")
    odd = PAIConfig(scene_tokens=False, object_gating=False)  # no official module
    with pytest.raises(InputError, match="not an official PoseSOR module"):
        odd.official_name  # noqa: B018
    with pytest.raises(InputError):
        PoseSORConfig(pdr=PDRConfig(direction_tokens=False, pairwise_relation=False)).validate()


@pytest.mark.parametrize(
    "change,message",
    [
        ({"MODEL": {"PE": "SINE"}}, "only the learnable positional encoding"),
        ({"MODEL": {"ACTOR_INTERACTION": {"NAME": "PAIX"}}}, "not a PoseSOR module"),
        ({"MODEL": {"POSE_SHIFT": {"NAME": ""}}}, "not a PoseSOR module"),
        ({"MODEL": {"NECK": {"NAME": "BiFrcPN"}}}, "supported necks"),
        ({"MODEL": {"SIS_HEAD": {"NAME": "FoveaModule"}}}, "only 'TransformerDecoder'"),
        ({"MODEL": {"BACKBONE": {"NAME": "SMT_L"}}}, "not supported"),
        ({"MODEL": {"COMMON": {"NUM_HEADS": 5}}}, "not divisible"),
    ],
)
def test_bad_official_configs(change, message):
    data = posesor_tiny_config().to_official_yaml()
    for section, values in change["MODEL"].items():
        if isinstance(values, dict):
            data["MODEL"].setdefault(section, {}).update(values)
        else:
            data["MODEL"][section] = values
    with pytest.raises(InputError, match=message):
        posesor_config_from_official_yaml(data)


def test_other_architectures_are_refused():
    with pytest.raises(InputError, match="not a PoseSOR config .*seqrank"):
        posesor_config_from_official_yaml({"MODEL": {"META_ARCHITECTURE": "SeqRank"}})


def test_resnet_backbone_from_official_yaml():
    data = posesor_tiny_config().to_official_yaml()
    data["MODEL"]["BACKBONE"] = {"NAME": "ResNeXt50", "NUM_FEATURES": [256, 512, 1024, 2048]}
    cfg = posesor_config_from_official_yaml(data)
    assert cfg.backbone.kind == "resnet" and cfg.backbone_channels == (256, 512, 1024, 2048)
    with pytest.raises(InputError, match="Swin backbones only"):
        cfg.to_official_yaml()


def test_dict_round_trip_and_presets():
    for name in ("posesor-swinl", "posesor-swinl-id2", "posesor-tiny"):
        cfg = posesor_preset(name)
        assert PoseSORConfig.from_dict(cfg.to_dict()) == cfg
        assert config_from_dict(PoseSORConfig, config_to_dict(cfg)) == cfg  # what salrank's save_model/load_model use
    resnet = posesor_tiny_config()
    data = posesor_tiny_config().to_official_yaml()
    data["MODEL"]["BACKBONE"] = {"NAME": "ResNeXt50", "NUM_FEATURES": [256, 512, 1024, 2048]}
    resnet = posesor_config_from_official_yaml(data)
    assert PoseSORConfig.from_dict(resnet.to_dict()) == resnet
    with pytest.raises(InputError, match="unknown PoseSOR config preset"):
        posesor_preset("posesor-huge")
    with pytest.raises(InputError, match="unknown PoseSORConfig option"):
        PoseSORConfig.from_dict({"embed": 3})


def test_every_zoo_posesor_entry_names_a_registered_preset():
    entries = [e for e in list_entries() if e.architecture == "posesor"]
    assert {e.name for e in entries} >= {"posesor-assr", "posesor-irsr", "posesor-assr-nopose"}
    for e in entries:
        assert e.config in POSESOR_PRESETS
    by_name = {e.name: e for e in entries}
    assert posesor_preset(by_name["posesor-assr-nopose"].config).variant == "id2"
    assert posesor_preset(by_name["posesor-assr"].config).variant == "full"
    assert dict(by_name["posesor-assr"].metrics) == {"sa_sor": 0.673, "sor": 0.871, "mae": 0.0723}
    assert dict(by_name["posesor-irsr"].metrics) == {"sa_sor": 0.568, "sor": 0.817, "mae": 0.0629}


def test_registry_builds_posesor():
    model = build_model("posesor", "posesor-tiny")
    assert isinstance(model, PoseSOR) and not model.training
    assert model.architecture == "posesor" and model.has_keypoints
    assert isinstance(build_model("posesor", posesor_tiny_config("id2").to_dict()), PoseSOR)
