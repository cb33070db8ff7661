"""SeqRank config: presets, official yaml dumps (both fixtures, full size), round trips, refusals."""

from __future__ import annotations

import re

import pytest
import yaml

from salrank.config import config_from_dict, config_to_dict, load_official_yaml
from salrank.errors import InputError
from salrank.modeling.backbones import ResNetConfig, SwinConfig
from salrank.modeling.seqrank import (
    SEQRANK_PRESETS,
    BackboneConfig,
    SeqRankConfig,
    seqrank_config_from_official_yaml,
    seqrank_config_to_official_yaml,
    seqrank_preset,
    seqrank_swinL_config,
    seqrank_tiny_config,
)
from salrank.modeling.seqrank.config import RankingConfig, ReadoutConfig

VARIANTS = {"seqrank_correct": "correct", "seqrank_orig": "original"}


def test_presets_are_the_released_models():
    correct, original = seqrank_swinL_config("correct"), seqrank_swinL_config("original")
    assert (correct.neck, correct.ranking.num_blocks, correct.variant) == ("FPN", 2, "correct")
    assert (original.neck, original.ranking.num_blocks, original.variant) == ("FrcPN", 6, "original")
    for cfg in (correct, original):
        assert cfg.backbone.kind == "swin" and cfg.backbone.swin == SwinConfig.large()
        assert (cfg.common.embed_dim, cfg.common.num_heads, cfg.common.hidden_dim, cfg.common.num_queries) == (256, 8, 2048, 100)
        assert (cfg.fovea.num_blocks, cfg.fovea.key_features, cfg.fovea.mask_key) == (6, ("res5", "res4", "res3"), "res2")
        assert cfg.fovea.grid_sizes == ((1, 1), (2, 2), (3, 3))
        assert cfg.input.test_size == 800 and cfg.input.pixel_mean == (123.675, 116.28, 103.53)
        assert cfg.readout.objectness_threshold == cfg.readout.saliency_threshold == 0.001
        assert cfg.is_official and not cfg.readout.exclude_visited and cfg.ranking.gate == "official"
    assert seqrank_swinL_config("orig") == original and seqrank_swinL_config("corrected") == correct
    assert seqrank_preset("seqrank-swinl") == original and seqrank_preset("seqrank-swinl-correct") == correct
    assert set(SEQRANK_PRESETS) >= {"seqrank-swinl", "seqrank-swinl-correct"}
    with pytest.raises(InputError, match="variant"):
        seqrank_swinL_config("large")
    with pytest.raises(InputError, match="preset"):
        seqrank_preset("seqrank-huge")


def test_zoo_entries_name_registered_presets():
    from salrank.weights import list_entries

    for entry in list_entries():
        if entry.architecture == "seqrank":
            cfg = seqrank_preset(entry.config)
            assert cfg.variant == entry.variant, entry.name


def test_invalid_configs_are_refused_with_reasons():
    with pytest.raises(InputError, match="unknown neck"):
        SeqRankConfig(neck="BiFPN")
    with pytest.raises(InputError, match="heads do not divide"):
        seqrank_swinL_config(common=type(SeqRankConfig().common)(embed_dim=250))
    with pytest.raises(InputError, match="not a neck output"):
        SeqRankConfig(ranking=RankingConfig(key="res6"))
    with pytest.raises(InputError, match="gate"):
        SeqRankConfig(ranking=RankingConfig(gate="tanh"))
    with pytest.raises(InputError, match="backbone kind"):
        BackboneConfig(kind="vit")


def test_dict_round_trip_with_every_backbone():
    for backbone in (BackboneConfig.swin_large(), BackboneConfig.resnet_official("ResNeXt101"), BackboneConfig.efficientnet("lite2")):
        cfg = seqrank_swinL_config("original", backbone=backbone, readout=ReadoutConfig(exclude_visited=True))
        assert config_from_dict(SeqRankConfig, config_to_dict(cfg)) == cfg
    assert BackboneConfig.resnet_official("ResNeXt101").resnet == ResNetConfig.resnext101_32x8d()
    tiny = seqrank_tiny_config()
    assert SeqRankConfig.from_dict(tiny.to_dict()) == tiny


@pytest.mark.fixtures
@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_reads_the_fixture_dumps(shared_fixtures, name):
    folder = shared_fixtures / "models" / name
    tiny = seqrank_config_from_official_yaml(folder / "config.yaml")
    assert tiny.variant == VARIANTS[name]
    assert tiny.backbone.swin.embed_dim == 32 and tiny.backbone.swin.window_size == 4
    assert (tiny.common.embed_dim, tiny.common.num_heads, tiny.common.hidden_dim, tiny.common.num_queries) == (32, 4, 64, 12)
    assert tiny.input.test_size == 256 and tiny.fovea.grid_sizes == ((1, 1), (2, 2), (3, 3))
    full = seqrank_config_from_official_yaml(folder / f"full_config-{name}.yaml")
    assert full == seqrank_swinL_config(VARIANTS[name])


@pytest.mark.fixtures
@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_official_yaml_round_trip(shared_fixtures, name, tmp_path):
    dump = load_official_yaml(shared_fixtures / "models" / name / f"full_config-{name}.yaml")
    cfg = seqrank_config_from_official_yaml(dump)
    written = seqrank_config_to_official_yaml(cfg, tmp_path / "config.yaml")
    assert seqrank_config_from_official_yaml(tmp_path / "config.yaml") == cfg

    def same(node, official):  # every key written has the dump's value
        for key, value in node.items():
            if isinstance(value, dict):
                same(value, official[key])
            else:
                assert yaml.safe_load(yaml.safe_dump(value)) == official[key], key

    same(written, dump)


def test_reads_base_configs_with_detectron2_tuples(tmp_path):
    # the repository's configs/*.yaml use _BASE_ and tuple strings such as "(192,384,768,1536)"
    (tmp_path / "R50.yaml").write_text(
        "MODEL:\n  META_ARCHITECTURE: SeqRank\n  PIXEL_MEAN: [123.675, 116.280, 103.530]\n  PIXEL_STD: [58.395, 57.120, 57.375]\n"
        "  BACKBONE:\n    NAME: ResNeXt50\n    NUM_FEATURES: (256,512,1024,2048)\n  NECK:\n    NAME: FrcPN\n"
        "  GAZE_SHIFT_HEAD:\n    NAME: SequentialRankingModule\n    NUM_BLOCKS: 6\n"
    )
    (tmp_path / "swinL.yaml").write_text(
        "_BASE_: R50.yaml\nMODEL:\n  BACKBONE:\n    NAME: D2SwinTransformer\n    NUM_FEATURES: (192,384,768,1536)\n"
        "  SWIN:\n    EMBED_DIM: 192\n    DEPTHS: [2, 2, 18, 2]\n    NUM_HEADS: [6, 12, 24, 48]\n    WINDOW_SIZE: 12\n"
        "    DROP_PATH_RATE: 0.2\n    PRETRAIN_IMG_SIZE: 384\n"
    )
    (tmp_path / "swinL_correct.yaml").write_text("_BASE_: swinL.yaml\nMODEL:\n  NECK:\n    NAME: FPN\n  GAZE_SHIFT_HEAD:\n    NUM_BLOCKS: 2\n")
    assert seqrank_config_from_official_yaml(tmp_path / "swinL.yaml") == seqrank_swinL_config("original")
    assert seqrank_config_from_official_yaml(tmp_path / "swinL_correct.yaml") == seqrank_swinL_config("correct")
    r50 = seqrank_config_from_official_yaml(tmp_path / "R50.yaml")
    assert r50.backbone.kind == "resnet" and r50.backbone.official_name == "ResNeXt50"
    assert seqrank_config_from_official_yaml(seqrank_config_to_official_yaml(r50)) == r50


def test_refuses_other_models_and_unsupported_variants(tmp_path):
    with pytest.raises(InputError, match="not a SeqRank config .*posesor"):
        seqrank_config_from_official_yaml({"MODEL": {"META_ARCHITECTURE": "PoseSOR"}})
    smt = {"MODEL": {"META_ARCHITECTURE": "SeqRank", "BACKBONE": {"NAME": "SMT_L"}}}
    with pytest.raises(InputError, match="SMT"):
        seqrank_config_from_official_yaml(smt)
    bad = {"MODEL": {"META_ARCHITECTURE": "SeqRank", "BACKBONE": {"NAME": "D2SwinTransformer", "NUM_FEATURES": [1, 2, 3, 4]}}}
    with pytest.raises(InputError, match="NUM_FEATURES"):
        seqrank_config_from_official_yaml(bad)
    path = tmp_path / "c.yaml"
    path.write_text("MODEL:\n  META_ARCHITECTURE: SeqRank\n  NECK:\n    NAME: BiFPN\n")
    with pytest.raises(InputError, match="c.yaml.*unknown neck"):
        seqrank_config_from_official_yaml(path)
    with pytest.raises(InputError, match="no official"):
        seqrank_config_to_official_yaml(seqrank_swinL_config(backbone=BackboneConfig.efficientnet()))
    with pytest.raises(InputError, match="official code does not have"):
        seqrank_config_to_official_yaml(seqrank_swinL_config(readout=ReadoutConfig(exclude_visited=True)))


@pytest.mark.fixtures
def test_each_reader_refuses_another_models_config(shared_fixtures) -> None:
    """One shared check: the error names the file and what the config looks like."""
    from salrank.modeling.posesor import posesor_config_from_official_yaml
    from salrank.modeling.ppa import ppa_config_from_official_yaml
    from salrank.modeling.seqrank import seqrank_config_from_official_yaml

    models = shared_fixtures / "models"
    cases = [
        (seqrank_config_from_official_yaml, models / "posesor" / "config.yaml", "not a SeqRank config (it looks like a posesor config)"),
        (posesor_config_from_official_yaml, models / "ppa" / "config.yaml", "not a PoseSOR config (it looks like a ppa config)"),
        (ppa_config_from_official_yaml, models / "seqrank_correct" / "config.yaml", "not a PPA config (it looks like a seqrank config)"),
    ]
    for reader, path, message in cases:
        with pytest.raises(InputError, match=re.escape(message)) as info:
            reader(path)
        assert str(path) in str(info.value)
