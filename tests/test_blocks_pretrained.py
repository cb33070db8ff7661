"""ImageNet backbone loaders on synthetic files shaped like the official ones (tiny sizes)."""

from __future__ import annotations

import logging

import pytest
import torch

from salrank.errors import CheckpointError
from salrank.modeling.backbones import ResNet, ResNetConfig, SwinConfig, SwinTransformer
from salrank.modeling.backbones.pretrained import load_resnet_pretrained, load_swin_pretrained
from salrank.modeling.backbones.swin import relative_position_index

TINY = dict(embed_dim=16, depths=(2, 2, 4, 2), num_heads=(1, 2, 2, 4), window_size=4)


def release_state(cfg: SwinConfig, seed: int = 0) -> dict[str, torch.Tensor]:
    """A state dict laid out like Microsoft's Swin classification release (``{"model": this}``)."""
    torch.manual_seed(seed)
    model = SwinTransformer(cfg)
    state = {k: torch.randn_like(v) for k, v in model.state_dict().items() if not k.startswith("norm")}
    n = cfg.window_size**2
    for i, depth in enumerate(cfg.depths):
        for j in range(depth):
            state[f"layers.{i}.blocks.{j}.attn.relative_position_index"] = relative_position_index(cfg.window_size)
            if j % 2 and i < len(cfg.depths) - 1:  # the release stores masks for 384x384 inputs
                state[f"layers.{i}.blocks.{j}.attn_mask"] = torch.zeros(4, n, n)
    c = cfg.num_features[-1]
    state.update({"norm.weight": torch.ones(c), "norm.bias": torch.zeros(c), "head.weight": torch.randn(7, c), "head.bias": torch.zeros(7)})
    return state


def check_loaded(model, state, report):
    own = model.state_dict()
    for key, value in state.items():
        if key in own:
            assert torch.equal(own[key], value), key
    assert sorted(report.missing) == sorted(f"norm{i}.{w}" for i in range(4) for w in ("weight", "bias"))
    assert report.unexpected == [] and report.mismatched == []
    dropped = set(report.dropped)
    assert {"head.weight", "head.bias", "norm.weight", "norm.bias"} <= dropped
    assert sum(k.endswith("attn_mask") for k in dropped) == 4  # odd blocks of stages 0-2
    assert sum(k.endswith("relative_position_index") for k in dropped) == 10


def test_swin_release_format(tmp_path, caplog):
    cfg = SwinConfig(**TINY)
    state = release_state(cfg)
    torch.save({"model": state}, tmp_path / "swin_tiny_release.pth")
    model = SwinTransformer(cfg)
    with caplog.at_level(logging.INFO, logger="salrank.modeling.backbones.pretrained"):
        report = load_swin_pretrained(model, tmp_path / "swin_tiny_release.pth")
    check_loaded(model, state, report)
    assert "Microsoft Swin release" in caplog.text and "norm0.weight" in caplog.text


def test_swin_converted_and_full_checkpoint_formats(tmp_path):
    cfg = SwinConfig(**TINY)
    state = release_state(cfg, seed=1)
    # what pretrained/convert_backbone.py writes: every key prefixed, other top-level entries kept
    torch.save({"model": {"backbone." + k: v for k, v in state.items()}, "epoch": 30}, tmp_path / "converted.pth")
    model = SwinTransformer(cfg)
    check_loaded(model, state, load_swin_pretrained(model, tmp_path / "converted.pth"))

    full = {"backbone." + k: v for k, v in state.items()}
    full.update({"neck.lateral_conv.0.0.weight": torch.zeros(1), "pe_layer.ape": torch.zeros(1)})
    torch.save({"model": full}, tmp_path / "full.pth")
    model = SwinTransformer(cfg)
    report = load_swin_pretrained(model, tmp_path / "full.pth")
    check_loaded(model, state, report)
    assert {"neck.lateral_conv.0.0.weight", "pe_layer.ape"} <= set(report.dropped)


def test_swin_loader_errors(tmp_path):
    cfg = SwinConfig(**TINY)
    state = release_state(cfg)
    torch.save({"model": state}, tmp_path / "w4.pth")
    wrong_window = SwinTransformer(SwinConfig(**{**TINY, "window_size": 7}))
    with pytest.raises(CheckpointError, match="relative_position_bias_table"):
        load_swin_pretrained(wrong_window, tmp_path / "w4.pth")
    report = load_swin_pretrained(wrong_window, tmp_path / "w4.pth", strict=False)
    assert len(report.mismatched) == 10  # one bias table per block, skipped

    bad = dict(state)
    bad["layers.0.blocks.0.attn.relative_position_index"] = torch.zeros(16, 16, dtype=torch.long)
    torch.save({"model": bad}, tmp_path / "bad_index.pth")
    with pytest.raises(CheckpointError, match="relative position index"):
        load_swin_pretrained(SwinTransformer(cfg), tmp_path / "bad_index.pth")

    extra = dict(state)
    extra["layers.0.blocks.0.attn.extra"] = torch.zeros(3)
    torch.save({"model": extra}, tmp_path / "extra.pth")
    with pytest.raises(CheckpointError, match="unexpected"):
        load_swin_pretrained(SwinTransformer(cfg), tmp_path / "extra.pth")

    torch.save({"model": {"conv1.weight": torch.zeros(1)}}, tmp_path / "resnet.pth")
    with pytest.raises(CheckpointError, match="no Swin"):
        load_swin_pretrained(SwinTransformer(cfg), tmp_path / "resnet.pth")


def test_resnet_torchvision_and_seqrank_formats(tmp_path):
    cfg = ResNetConfig(depth=50, groups=8, width_per_group=1)  # small but torchvision-shaped
    torch.manual_seed(0)
    source = ResNet(cfg)
    state = {k: (torch.randn_like(v) if v.is_floating_point() else v) for k, v in source.state_dict().items()}
    tv = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}  # old torchvision files
    tv.update({"fc.weight": torch.randn(10, 2048), "fc.bias": torch.randn(10)})
    torch.save(tv, tmp_path / "resnet_tv.pth")  # torchvision files are bare state dicts
    model = ResNet(cfg)
    report = load_resnet_pretrained(model, tmp_path / "resnet_tv.pth")
    assert sorted(report.dropped) == ["fc.bias", "fc.weight"]
    assert report.missing and all(k.endswith("num_batches_tracked") for k in report.missing)
    assert all(torch.equal(model.state_dict()[k], v) for k, v in tv.items() if not k.startswith("fc."))

    seqrank = {}
    for k, v in state.items():
        k = k.replace("conv1.", "layer0.0.", 1) if k.startswith("conv1.") else k
        k = k.replace("bn1.", "layer0.1.", 1) if k.startswith("bn1.") else k
        seqrank["backbone." + k] = v
    torch.save({"model": seqrank}, tmp_path / "resnet_seqrank.pth")
    model = ResNet(cfg)
    report = load_resnet_pretrained(model, tmp_path / "resnet_seqrank.pth")
    assert report.ok
    assert all(torch.equal(model.state_dict()[k], v) for k, v in state.items())

    torch.save({"layer1.0.conv1.weight": torch.zeros(3)}, tmp_path / "broken.pth")
    with pytest.raises(CheckpointError):
        load_resnet_pretrained(ResNet(cfg), tmp_path / "broken.pth")
