"""Official PPA checkpoints: the key map covers the full-size model, and foreign files are refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from salrank.errors import CheckpointError, InputError
from salrank.modeling.ppa import (
    PPA,
    PPA_KEY_MAP,
    build_ppa,
    describe_checkpoint,
    load_official_ppa_checkpoint,
    ppa_config_from_official_yaml,
    ppa_v39_config,
)


@pytest.fixture(scope="module")
def full_model_meta() -> PPA:
    with torch.device("meta"):  # 119M parameters: shapes only
        return PPA(ppa_v39_config())


def test_every_official_key_of_the_full_model_maps(shared_fixtures: Path, full_model_meta: PPA) -> None:
    listing = json.loads((shared_fixtures / "models" / "ppa" / "keys-ppa.json").read_text())
    assert listing["vovnet"] == "V-39-eSE"
    ours = {k: tuple(v.shape) for k, v in full_model_meta.state_dict().items()}
    mapped = {}
    for key, shape in listing["keys"].items():
        name = PPA_KEY_MAP.map_key(key)
        assert name is not None, f"official key {key} is not mapped"
        assert name in ours, f"{key} -> {name}, which the model does not have"
        assert ours[name] == tuple(shape), f"{key}: official {shape} vs ours {ours[name]}"
        mapped[name] = key
    assert len(mapped) == len(listing["keys"]) == listing["num_keys"]
    assert set(mapped) == set(ours), f"model keys without an official source: {sorted(set(ours) - set(mapped))[:5]}"
    assert sum(p.numel() for p in full_model_meta.parameters()) == listing["num_parameters"]
    assert sum(v.numel() for v in full_model_meta.state_dict().values()) == listing["num_state_dict_elements"]


def test_released_config_is_the_full_official_config(shared_fixtures: Path) -> None:
    cfg = ppa_config_from_official_yaml(shared_fixtures / "models" / "ppa" / "full_config-ppa.yaml")
    assert cfg == ppa_v39_config()


def _official_names(model: PPA) -> dict[str, torch.Tensor]:
    """Invert the key map on a model's own state dict (official names, like a detectron2 checkpoint)."""
    candidates = _official_key_candidates(model)
    out = {}
    for name, value in model.state_dict().items():
        official = PPA_KEY_MAP.inverse_key(name, candidates)
        assert official is not None, name
        out[official] = value
    return out


def _official_key_candidates(model: PPA) -> list[str]:
    """Official-style names for a tiny model, generated from the official naming scheme."""
    keys = []
    for k in (1, 2, 3):
        for p in ("conv.weight", "norm.weight", "norm.bias", "norm.running_mean", "norm.running_var"):
            keys.append(f"backbone.bottom_up.stem.stem_{k}/{p}")
    for s in (2, 3, 4, 5):
        stage = getattr(model.backbone, f"stage{s}")
        for b in range(1, len(stage.blocks) + 1):
            osa = f"backbone.bottom_up.stage{s}.OSA{s}_{b}"
            for layer in range(len(stage.blocks[b - 1].layers)):
                for p in ("conv.weight", "norm.weight", "norm.bias", "norm.running_mean", "norm.running_var"):
                    keys.append(f"{osa}.layers.{layer}.OSA{s}_{b}_{layer}/{p}")
            for p in ("conv.weight", "norm.weight", "norm.bias", "norm.running_mean", "norm.running_var"):
                keys.append(f"{osa}.concat.OSA{s}_{b}_concat/{p}")
            keys += [f"{osa}.ese.fc.weight", f"{osa}.ese.fc.bias"]
    for k in (3, 4, 5):
        keys += [f"backbone.fpn_lateral{k}.{p}" for p in ("weight", "bias")] + [f"backbone.fpn_output{k}.{p}" for p in ("weight", "bias")]
    keys += [f"backbone.top_block.p{k}.{p}" for k in (6, 7) for p in ("weight", "bias")]
    keys += ["proposal_generator.fcos_head." + k for k in model.fcos.state_dict()]
    keys += [f"roi_heads.mask_head.mask_fcn{k}.{p}" for k in range(1, 5) for p in ("weight", "bias")]
    keys += ["roi_heads.mask_head.spatialAtt.conv.weight"] + [f"roi_heads.mask_head.{m}.{p}" for m in ("deconv", "predictor") for p in ("weight", "bias")]
    keys += [f"roi_heads.maskiou_head.maskiou_fcn{k}.{p}" for k in range(1, 5) for p in ("weight", "bias")]
    keys += [f"roi_heads.maskiou_head.{m}.{p}" for m in ("maskiou_fc1", "maskiou_fc2", "maskiou") for p in ("weight", "bias")]
    keys += [f"roi_heads.sor_head.sor_fcn{k}.{p}" for k in range(1, 5) for p in ("weight", "bias")]
    keys += [f"roi_heads.sor_head.{m}.{p}" for m in ("sor_fc1", "sor_fc2", "sor", "pos_conv") for p in ("weight", "bias")]
    keys += ["roi_heads.sor_head.pos_embedding"]
    keys += ["roi_heads.sor_head.transformer_encoder." + k for k in model.roi_heads.rank_head.encoder.state_dict()] if model.roi_heads.rank_head.encoder is not None else []
    return keys


@pytest.fixture(scope="module")
def tiny() -> PPA:
    from _ppa_helpers import tiny_config

    torch.manual_seed(1)
    return build_ppa(tiny_config())


def test_round_trip_through_official_names(tiny: PPA, tmp_path: Path) -> None:
    official = _official_names(tiny)
    path = tmp_path / "model_final.pth"
    torch.save({"model": official}, path)
    other = build_ppa(tiny.cfg)
    report = load_official_ppa_checkpoint(other, path)
    assert report.ok and not report.dropped
    for key, value in tiny.state_dict().items():
        assert torch.equal(other.state_dict()[key], value), key


def test_refuses_a_seqrank_checkpoint(tiny: PPA, tmp_path: Path) -> None:
    path = tmp_path / "seqrank.pth"
    torch.save({"model": {"backbone.patch_embed.proj.weight": torch.zeros(2, 3, 4, 4), "gaze_shift.head.weight": torch.zeros(1, 2)},
                "iteration": 3}, path)
    with pytest.raises(CheckpointError, match="SeqRank"):
        load_official_ppa_checkpoint(tiny, path)


@pytest.mark.parametrize("name,what", [("seqrank_orig", "SeqRank"), ("posesor", "PoseSOR")])
def test_refuses_the_official_seqrank_and_posesor_fixtures(shared_fixtures: Path, tiny: PPA, name: str, what: str) -> None:
    path = shared_fixtures / "models" / name / "checkpoint.pth"
    if not path.is_file():
        pytest.skip(f"{path} not present")
    with pytest.raises(CheckpointError, match=what) as info:
        load_official_ppa_checkpoint(tiny, path)
    assert str(path) in str(info.value)


def test_refuses_a_detector_without_sor_head_and_wrong_sizes(tiny: PPA, tmp_path: Path) -> None:
    official = _official_names(tiny)
    no_sor = {k: v for k, v in official.items() if not k.startswith("roi_heads.sor_head.")}
    path = tmp_path / "centermask.pth"
    torch.save({"model": no_sor}, path)
    with pytest.raises(CheckpointError, match="without a SOR head"):
        load_official_ppa_checkpoint(tiny, path)
    assert "without a SOR head" in describe_checkpoint(no_sor)
    # a PPA checkpoint of another size: shapes are reported, nothing is loaded
    bigger = dict(official)
    bigger["roi_heads.sor_head.sor.weight"] = torch.zeros(5, 99)
    torch.save({"model": bigger}, path)
    before = {k: v.clone() for k, v in tiny.state_dict().items()}
    with pytest.raises(CheckpointError, match="rank_head.classifier.weight"):
        load_official_ppa_checkpoint(tiny, path)
    assert all(torch.equal(before[k], v) for k, v in tiny.state_dict().items())
    # an unknown official key (another variant) is refused in strict mode, reported otherwise
    extra = dict(official)
    extra["roi_heads.keypoint_head.conv.weight"] = torch.zeros(1)
    torch.save({"model": extra}, path)
    with pytest.raises(CheckpointError, match="keypoint_head"):
        load_official_ppa_checkpoint(tiny, path)
    report = load_official_ppa_checkpoint(tiny, path, strict=False)
    assert report.unexpected == ["roi_heads.keypoint_head.conv.weight"]


def test_not_a_checkpoint(tiny: PPA, tmp_path: Path) -> None:
    path = tmp_path / "broken.pth"
    path.write_bytes(b"not a pickle")
    with pytest.raises(InputError):
        load_official_ppa_checkpoint(tiny, path)
