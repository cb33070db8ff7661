"""Every key of the official full-size PoseSOR (and of its ablations) has a place in salrank's model,
and official checkpoints of other models or variants are refused with a message saying what they are."""

from __future__ import annotations

import json
import re

import pytest
import torch

from salrank.checkpoint import read_official_checkpoint
from salrank.errors import CheckpointError
from salrank.modeling.posesor import (
    PAI_VARIANTS,
    PDR_VARIANTS,
    POSESOR_KEY_MAP,
    PAIConfig,
    PDRConfig,
    PoseSOR,
    build_posesor,
    checkpoint_variant,
    describe_checkpoint,
    load_official_posesor_checkpoint,
    posesor_swinl_config,
    posesor_tiny_config,
)


@pytest.fixture(scope="module")
def listing(shared_fixtures):
    data = json.loads((shared_fixtures / "models" / "posesor" / "keys-posesor.json").read_text())
    return data, {k: tuple(v) for k, v in data["keys"].items()}


def shapes_on_meta(cfg) -> dict[str, tuple[int, ...]]:
    with torch.device("meta"):
        model = PoseSOR(cfg)
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def check_listing_maps(official: dict[str, tuple[int, ...]], cfg) -> None:
    ours = shapes_on_meta(cfg)
    mapped, dropped, unmapped = POSESOR_KEY_MAP.apply({k: torch.empty(s, device="meta") for k, s in official.items()})
    assert unmapped == []
    assert all(k.endswith("relative_position_index") for k in dropped)
    assert {k: tuple(v.shape) for k, v in mapped.items()} == ours  # every key, every shape, nothing left over


# Official ablation modules (network/modules/pai_id*.py, pdr_*.py) relative to the full model's keys:
# which official keys each one does not have.
VARIANT_ABSENT = {
    "PAI": [],
    "PAIID2": [r"actor_interaction\.blocks\.\d+\.scene_norm\."],
    "PAIID3": [],
    "PAIID4": [],
    "PAIID6": [],
    "PAIID8": [r"actor_interaction\.blocks\.\d+\.(inner_joints_ia|q_linear|sub_pose|sub_pose_norm)\."],
    "PAIID9": [r"actor_interaction\.blocks\.", r"actor_interaction\.jpe$"],
    "PDR": [],
    "PDRDCL": [],
    "PDRRI": [],
    "PDRID8": [r"pose_shift\.(?!head\.)"],
}


@pytest.mark.fixtures
def test_full_size_listing_maps_onto_the_model(listing):
    data, official = listing
    check_listing_maps(official, posesor_swinl_config())
    ours = shapes_on_meta(posesor_swinl_config())
    assert sum(torch.Size(s).numel() for s in ours.values()) == data["num_parameters"] == 220_520_072


@pytest.mark.fixtures
@pytest.mark.parametrize("name", [n for n in PAI_VARIANTS] + [n for n in PDR_VARIANTS if n != "PDR"])
def test_ablation_listings_map_onto_their_variant(listing, name):
    _, official = listing
    absent = [re.compile(p) for p in VARIANT_ABSENT[name]]
    keys = {k: s for k, s in official.items() if not any(p.match(k) for p in absent)}
    cfg = posesor_swinl_config()
    if name in PAI_VARIANTS:
        cfg.pai = PAIConfig(**PAI_VARIANTS[name])
    else:
        cfg.pdr = PDRConfig(**PDR_VARIANTS[name])
    check_listing_maps(keys, cfg)


@pytest.mark.fixtures
def test_id2_is_the_listing_without_scene_tokens(listing):
    full = set(shapes_on_meta(posesor_swinl_config("full")))
    id2 = set(shapes_on_meta(posesor_swinl_config("id2")))
    assert sorted(full - id2) == [f"pose_interaction.blocks.{i}.scene_norm.{p}" for i in range(3) for p in ("bias", "weight")]
    assert id2 < full


@pytest.fixture(scope="module")
def official_state(shared_fixtures):
    """The fixture's tiny official checkpoint (full model) and the same without scene LayerNorms (ID2)."""
    full = read_official_checkpoint(shared_fixtures / "models" / "posesor" / "checkpoint.pth")
    id2 = {k: v for k, v in full.items() if ".scene_norm." not in k}
    return full, id2


@pytest.mark.fixtures
def test_variant_mismatch_is_refused_with_a_hint(official_state):
    full, id2 = official_state
    assert checkpoint_variant(full).startswith("full") and checkpoint_variant(id2).startswith("id2")
    assert load_official_posesor_checkpoint(build_posesor(posesor_tiny_config("id2")), "id2.pth", state=id2).ok
    with pytest.raises(CheckpointError, match=r"id2 \('w/o pose knowledge'.*posesor_swinl_config\('id2'\)"):
        load_official_posesor_checkpoint(build_posesor(posesor_tiny_config("full")), "id2.pth", state=id2)
    with pytest.raises(CheckpointError, match=r"full model.*posesor_swinl_config\('full'\)"):
        load_official_posesor_checkpoint(build_posesor(posesor_tiny_config("id2")), "full.pth", state=full)


@pytest.mark.fixtures
def test_size_mismatch_names_the_file_size(official_state):
    full, _ = official_state
    with pytest.raises(CheckpointError, match=r"PoseSOR checkpoint, full model .*12 queries, 32-d, Swin embed 32"):
        load_official_posesor_checkpoint(build_posesor(posesor_tiny_config(num_queries=20)), "tiny.pth", state=full)
    report = load_official_posesor_checkpoint(build_posesor(posesor_tiny_config(num_queries=20)), "tiny.pth", state=full, strict=False)
    assert not report.ok and report.mismatched


def test_other_models_are_refused():
    seqrank_like = {
        "backbone.patch_embed.proj.weight": torch.zeros(8, 3, 4, 4),
        "instance_seg.q": torch.zeros(1, 4, 8),
        "gaze_shift.blocks.0.q_linear.weight": torch.zeros(8, 8),
    }
    with pytest.raises(CheckpointError, match="not an official PoseSOR checkpoint"):
        load_official_posesor_checkpoint(build_posesor(posesor_tiny_config()), "seqrank.pth", state=seqrank_like)
    ppa_like = {"backbone.bottom_up.stem.stem_1/conv.weight": torch.zeros(1), "roi_heads.sor_head.sor.weight": torch.zeros(1)}
    with pytest.raises(CheckpointError, match="PPA"):
        load_official_posesor_checkpoint(build_posesor(posesor_tiny_config()), "ppa.pth", state=ppa_like)
    assert "PoseSOR" in describe_checkpoint({"actor_interaction.j": torch.zeros(1, 17, 8), "pose_shift.bg_coord_rep": torch.zeros(1)})
