"""SeqRank weights: the official key map at full size, variant refusal, load reports, salrank
safetensors, ImageNet backbone files, and load_model."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from salrank.checkpoint import read_official_checkpoint
from salrank.errors import CheckpointError, InputError
from salrank.modeling.backbones.swin import SwinConfig
from salrank.modeling.loading import load_model, save_model
from salrank.modeling.seqrank import (
    SEQRANK_KEY_MAP,
    BackboneConfig,
    SeqRank,
    build_seqrank,
    checkpoint_facts,
    load_backbone_pretrained,
    load_official_seqrank_checkpoint,
    seqrank_config_from_official_yaml,
    seqrank_swinL_config,
    seqrank_tiny_config,
)

VARIANTS = {"seqrank_correct": "correct", "seqrank_orig": "original"}


pytestmark = pytest.mark.usefixtures("one_thread")


def image(seed=0, h=50, w=70):
    return (np.random.RandomState(seed).rand(h, w, 3) * 255).astype(np.uint8)


@pytest.mark.fixtures
@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_every_full_size_official_key_maps(shared_fixtures, name):
    listing = json.loads((shared_fixtures / "models" / name / f"keys-{name}.json").read_text())["keys"]
    with torch.device("meta"):
        model = SeqRank(seqrank_swinL_config(VARIANTS[name]))
    ours = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    mapped, dropped, unmapped = SEQRANK_KEY_MAP.apply({k: torch.empty(s, device="meta") for k, s in listing.items()})
    assert unmapped == []
    assert len(dropped) == 24 and all(k.endswith("attn.relative_position_index") for k in dropped)
    wrong = {k: (tuple(v.shape), ours.get(k)) for k, v in mapped.items() if ours.get(k) != tuple(v.shape)}
    assert wrong == {}
    assert sorted(set(ours) - set(mapped)) == []
    facts = checkpoint_facts(listing)
    assert facts.variant == VARIANTS[name] and facts.fom_blocks == 6


@pytest.mark.fixtures
def test_wrong_variant_is_refused_with_its_name(shared_fixtures):
    models = shared_fixtures / "models"
    original = build_seqrank(seqrank_config_from_official_yaml(models / "seqrank_orig" / "config.yaml"))
    with pytest.raises(CheckpointError, match=r"SeqRank corrected \(FPN neck, 2 SRM blocks\) checkpoint.*model is a SeqRank original"):
        load_official_seqrank_checkpoint(original, models / "seqrank_correct" / "checkpoint.pth")
    correct = build_seqrank(seqrank_config_from_official_yaml(models / "seqrank_correct" / "config.yaml"))
    with pytest.raises(CheckpointError, match=r"SeqRank original \(FrcPN neck, 6 SRM blocks\) checkpoint.*'original'"):
        load_official_seqrank_checkpoint(correct, models / "seqrank_orig" / "checkpoint.pth")
    with pytest.raises(CheckpointError, match="not an official SeqRank checkpoint: .*PPA"):
        load_official_seqrank_checkpoint(correct, models / "ppa" / "checkpoint.pth")


@pytest.mark.fixtures
def test_missing_and_unexpected_keys_are_reported(shared_fixtures, tmp_path):
    folder = shared_fixtures / "models" / "seqrank_correct"
    state = read_official_checkpoint(folder / "checkpoint.pth")
    state.pop("gaze_shift.blocks.1.norm_mlp.weight")
    state["gaze_shift.blocks.0.extra_gate.weight"] = torch.zeros(1)
    state["instance_seg.head.score_head.bias"] = torch.zeros(3)
    model = build_seqrank(seqrank_config_from_official_yaml(folder / "config.yaml"))
    with pytest.raises(CheckpointError, match="gaze_shift.blocks.0.extra_gate.weight"):
        load_official_seqrank_checkpoint(model, folder / "checkpoint.pth", state=state)
    del state["gaze_shift.blocks.0.extra_gate.weight"]
    with pytest.raises(CheckpointError) as err:
        load_official_seqrank_checkpoint(model, folder / "checkpoint.pth", state=state)
    assert "missing keys (1): ranking.blocks.1.peripheral_norm.weight" in str(err.value)
    assert "fovea.head.objectness.bias (3,) vs model (1,)" in str(err.value)
    state["gaze_shift.blocks.0.extra_gate.weight"] = torch.zeros(1)
    report = load_official_seqrank_checkpoint(model, folder / "checkpoint.pth", state=state, strict=False)
    assert report.missing == ["ranking.blocks.1.peripheral_norm.weight"]
    assert report.unexpected == ["gaze_shift.blocks.0.extra_gate.weight"]
    assert [m[0] for m in report.mismatched] == ["fovea.head.objectness.bias"]
    torch.save({"model": state}, tmp_path / "broken.pth")
    with pytest.raises(CheckpointError, match="broken.pth"):
        load_official_seqrank_checkpoint(model, tmp_path / "broken.pth")


def test_salrank_safetensors_round_trip_gives_identical_outputs(tmp_path):
    torch.manual_seed(0)
    model = build_seqrank(seqrank_tiny_config())
    path = save_model(model, tmp_path / "tiny")
    assert path.name == "tiny.safetensors" and (tmp_path / "tiny.json").is_file()
    assert json.loads((tmp_path / "tiny.json").read_text())["architecture"] == "seqrank"
    loaded = load_model(weights=path)
    assert isinstance(loaded, SeqRank) and loaded.cfg == model.cfg and not loaded.training
    images = [image(0), image(1, 61, 43)]
    for a, b in zip(model.predict(images), loaded.predict(images)):
        assert np.array_equal(a.extras["query_index"], b.extras["query_index"])
        assert np.array_equal(a.masks, b.masks)
        assert np.array_equal(a.scores, b.scores) and np.array_equal(a.saliency, b.saliency) and np.array_equal(a.boxes, b.boxes)
    # the sidecar config alone builds the same model; a config of another model is refused
    again = load_model(tmp_path / "tiny.json", path)
    assert again.cfg == model.cfg
    with pytest.raises(InputError):
        load_model({"architecture": "seqrank", "config": {"neck": "BiFPN"}}, path)
    other = build_seqrank(seqrank_tiny_config(neck="FrcPN"))
    with pytest.raises(CheckpointError, match="does not fit"):
        load_model(other.cfg, path)


def _tiny_swin_release(cfg: SwinConfig, prefix: str = "") -> dict[str, torch.Tensor]:
    """A synthetic Swin classification state dict laid out like Microsoft's release files."""
    from salrank.modeling.backbones.swin import SwinTransformer, relative_position_index

    swin = SwinTransformer(cfg)
    state = {k: torch.randn_like(v) for k, v in swin.state_dict().items() if not k.startswith("norm") or k.startswith("norm.")}
    state = {k: v for k, v in state.items() if not k.startswith(("norm0", "norm1", "norm2", "norm3"))}
    last = cfg.num_features[-1]
    state.update({"norm.weight": torch.ones(last), "norm.bias": torch.zeros(last), "head.weight": torch.zeros(5, last), "head.bias": torch.zeros(5)})
    for i, depth in enumerate(cfg.depths):
        for j in range(depth):
            state[f"layers.{i}.blocks.{j}.attn.relative_position_index"] = relative_position_index(cfg.window_size)
            if j % 2:
                state[f"layers.{i}.blocks.{j}.attn_mask"] = torch.zeros(4, cfg.window_size**2, cfg.window_size**2)
    return {prefix + k: v for k, v in state.items()}


@pytest.mark.parametrize("prefix", ["", "backbone."], ids=["microsoft-release", "official-converted"])
def test_swin_imagenet_weights_in_both_formats(tmp_path, prefix):
    cfg = seqrank_tiny_config()
    model = build_seqrank(cfg)
    state = _tiny_swin_release(cfg.backbone.swin, prefix)
    torch.save({"model": state}, tmp_path / "swin.pth")
    report = load_backbone_pretrained(model, tmp_path / "swin.pth")
    key = "layers.1.blocks.1.attn.qkv.weight"
    assert torch.equal(model.backbone.state_dict()[key], state[prefix + key])
    assert sorted(report.missing) == sorted(f"norm{i}.{p}" for i in range(4) for p in ("weight", "bias"))
    assert any(k.endswith("head.weight") for k in report.dropped)


def test_resnet_backbone_weights(tmp_path):
    model = build_seqrank(seqrank_tiny_config(backbone=BackboneConfig.resnet_official("ResNeXt50")))
    state = {k: torch.randn_like(v) if v.is_floating_point() else v for k, v in model.backbone.state_dict().items()}
    state.update({"fc.weight": torch.zeros(1000, 2048), "fc.bias": torch.zeros(1000)})
    torch.save(state, tmp_path / "resnext50.pth")
    load_backbone_pretrained(model, tmp_path / "resnext50.pth")
    assert torch.equal(model.backbone.layer2[0].conv2.weight, state["layer2.0.conv2.weight"])


@pytest.mark.fixtures
def test_load_model_from_official_files(shared_fixtures, tmp_path):
    folder = shared_fixtures / "models" / "seqrank_orig"
    model = load_model(folder / "config.yaml", folder / "checkpoint.pth")
    assert isinstance(model, SeqRank) and model.variant == "original"
    reference = build_seqrank(seqrank_config_from_official_yaml(folder / "config.yaml"))
    load_official_seqrank_checkpoint(reference, folder / "checkpoint.pth")
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), reference.state_dict().values()))
    # without a config, an official file is taken for the released full-size model: a small one says so
    with pytest.raises(InputError, match=r"SeqRank original .* not of the released model's size .*pass its config"):
        load_model(weights=folder / "checkpoint.pth")
    with pytest.raises(CheckpointError, match="SeqRank original"):
        load_model(shared_fixtures / "models" / "seqrank_correct" / "config.yaml", folder / "checkpoint.pth")
    # salrank weights of an official checkpoint load without the official files
    path = save_model(model, tmp_path / "orig.safetensors")
    assert load_model(weights=path).cfg == model.cfg
