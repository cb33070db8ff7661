"""FPN / FrcPN necks and the learnable PE against the official intermediates; FRC against its formula."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from salrank.checkpoint import KeyMap, read_official_checkpoint
from salrank.config import load_official_yaml
from salrank.modeling.layers import LayerNorm2d, LearnablePE
from salrank.modeling.necks import FPN, FrcPN, NeckConfig, build_neck, frc_average

NECK_OF = {"seqrank_correct": "FPN", "seqrank_orig": "FrcPN", "posesor": "FPN"}


@pytest.fixture(autouse=True)
def two_threads():
    old = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(old)


def load_fixture_neck(folder):
    cfg = load_official_yaml(folder / "config.yaml")
    config = NeckConfig.from_official_cfg(cfg)
    neck = build_neck(config).eval()
    pe = LearnablePE(config.dim)
    state = read_official_checkpoint(folder / "checkpoint.pth")
    key_map = KeyMap(rules=type(neck).official_key_rules("neck.", "neck.") + LearnablePE.official_key_rules("pe_layer.", "pe."))
    mapped, _, unmapped = key_map.apply({k: v for k, v in state.items() if k.startswith(("neck.", "pe_layer."))})
    assert unmapped == []
    neck.load_state_dict({k[len("neck.") :]: v for k, v in mapped.items() if k.startswith("neck.")}, strict=True)
    pe.load_state_dict({"weight": mapped["pe.weight"]}, strict=True)
    return config, neck, pe, torch.load(folder / "expected.pt", weights_only=True)


@pytest.mark.fixtures
@pytest.mark.parametrize("name", sorted(NECK_OF))
def test_neck_matches_official_intermediates(shared_fixtures, name):
    config, neck, pe, expected = load_fixture_neck(shared_fixtures / "models" / name)
    assert config.name == NECK_OF[name] and isinstance(neck, {"FPN": FPN, "FrcPN": FrcPN}[config.name])
    with torch.no_grad():
        out = neck(expected["backbone"])
    trained = neck({k: v.clone().requires_grad_() for k, v in expected["backbone"].items()})
    for key, ref in expected["neck"].items():
        torch.testing.assert_close(out[key], ref, atol=1e-4, rtol=1e-4, msg=f"{name} {key}")
        torch.testing.assert_close(trained[key].detach(), out[key], atol=0, rtol=0, msg=f"{name} {key} grad path")
    for size, ref in expected["pos_embed"].items():
        h, w = map(int, size.split("x"))
        torch.testing.assert_close(pe.for_size(h, w).detach(), ref, atol=1e-6, rtol=0)
        assert pe(torch.zeros(2, 1, h, w)).shape == (2, ref.shape[0], h, w)


@pytest.mark.fixtures
@pytest.mark.parametrize("name", sorted(NECK_OF))
def test_backbone_and_neck_chain_matches_official(shared_fixtures, name):
    """Swin (official numerics) -> neck: FrcPN's local-mean comparisons must see the official features."""
    from _swin_helpers import PIXEL_MEAN, PIXEL_STD, load_fixture_backbone

    folder = shared_fixtures / "models" / name
    backbone, expected = load_fixture_backbone(folder)
    _, neck, _, _ = load_fixture_neck(folder)
    images = (expected["input"]["image_resized"].float()[None] - PIXEL_MEAN) / PIXEL_STD
    with torch.no_grad():
        out = neck(backbone(images))
    for key, ref in expected["neck"].items():
        torch.testing.assert_close(out[key], ref, atol=1e-4, rtol=1e-4, msg=f"{name} {key}")


def reference_frc_average(low, high):
    """The official unfold formulation, literally."""
    b, c, h, w = low.shape
    unfold = torch.nn.Unfold(3, padding=1)
    x = unfold(low).reshape(b, c, 9, h, w)
    thr = x.mean(dim=2, keepdim=True)
    pos = (x - thr).gt(0.0).float()
    idc = (low.unsqueeze(2) - thr).gt(0.0).float()
    mask = idc * pos + (1.0 - idc) * (1.0 - pos)
    hx = unfold(high).reshape(b, c, 9, h, w)
    return torch.sum(hx * mask, dim=2) / (torch.sum(mask, dim=2) + 1e-6)


@pytest.mark.parametrize(("shape", "channels_last"), [((2, 8, 13, 29), False), ((1, 16, 40, 7), True), ((1, 4, 1, 1), False)])
def test_frc_average_is_the_official_formula(shape, channels_last):
    gen = torch.Generator().manual_seed(0)
    low = torch.randn(shape, generator=gen)
    low[..., :3, :3] = 0.5  # flat patches: neighbours equal to the local mean
    low[..., -1, -1] = 0.0  # border zeros vs zero padding
    high = torch.randn(shape, generator=gen)
    if channels_last:
        low = low.contiguous(memory_format=torch.channels_last)
    ref = reference_frc_average(low, high)
    out = frc_average(low, high)
    # Same float operations in the same order, except that PyTorch's reduction over the unfolded axis
    # sums the last few (h*w mod vector width) positions of each plane in another order: 1 ulp there.
    torch.testing.assert_close(out, ref, atol=1e-6, rtol=1e-6)

    hg = high.clone().requires_grad_()
    hr = high.clone().requires_grad_()
    weight = torch.randn(shape, generator=gen)
    (frc_average(low, hg) * weight).sum().backward()
    (reference_frc_average(low, hr) * weight).sum().backward()
    torch.testing.assert_close(hg.grad, hr.grad, atol=1e-6, rtol=1e-6)


def test_frc_average_large_map_bands():
    # more rows than one band: checks the band seams
    gen = torch.Generator().manual_seed(1)
    low, high = torch.randn(1, 64, 90, 100, generator=gen), torch.randn(1, 64, 90, 100, generator=gen)
    torch.testing.assert_close(frc_average(low, high), reference_frc_average(low, high), atol=1e-6, rtol=1e-6)
    with pytest.raises(ValueError):
        frc_average(low, high[:, :, :10])


@pytest.mark.parametrize("cls", [FPN, FrcPN])
def test_neck_shapes_and_gradients(cls):
    torch.manual_seed(0)
    neck = cls((8, 16, 32, 64), dim=16)
    feats = {f"res{i + 2}": torch.randn(2, c, 33 // 2**i + 1, 20 // 2**i + 1, requires_grad=True) for i, c in enumerate((8, 16, 32, 64))}
    out = neck(feats)
    assert list(out) == ["res2", "res3", "res4", "res5"]
    for key in feats:
        assert out[key].shape == (2, 16, *feats[key].shape[-2:])
    sum(o.sum() for o in out.values()).backward()
    assert all(f.grad is not None and torch.isfinite(f.grad).all() for f in feats.values())


def test_neck_config():
    cfg = {"MODEL": {"NECK": {"NAME": "FrcPN"}, "COMMON": {"EMBED_DIM": 64}, "BACKBONE": {"NUM_FEATURES": [8, 16, 32, 64]}}}
    config = NeckConfig.from_official_cfg(cfg)
    assert (config.name, config.dim, config.in_channels) == ("FrcPN", 64, (8, 16, 32, 64))
    assert isinstance(build_neck(config), FrcPN)
    with pytest.raises(ValueError):
        NeckConfig(name="BiFrcPN")


def test_layernorm2d_is_channel_layernorm():
    x = torch.randn(2, 6, 5, 7)
    ln = LayerNorm2d(6)
    with torch.no_grad():
        ln.weight.normal_()
        ln.bias.normal_()
    ref = F.layer_norm(x.permute(0, 2, 3, 1), (6,), ln.weight, ln.bias, 1e-5).permute(0, 3, 1, 2)
    assert torch.equal(ln(x), ref)
    assert ln(x).is_contiguous(memory_format=torch.channels_last)
    assert set(ln.state_dict()) == {"weight", "bias"}
