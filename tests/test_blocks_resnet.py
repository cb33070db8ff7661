"""ResNet / ResNeXt backbones: torchvision structure, names, outputs."""

from __future__ import annotations

import pytest
import torch

from salrank.checkpoint import KeyMap
from salrank.modeling.backbones import ResNet, ResNetConfig, backbone_config_from_official, build_backbone

# (parameter count without fc, number of state-dict tensors incl. BN buffers) of torchvision's models
TORCHVISION_SIZES = {
    "resnet50": (23_508_032, 318),
    "resnext50_32x4d": (22_979_904, 318),
    "resnet101": (42_500_160, 624),
    "resnet152": (58_143_808, 930),
    "resnext101_32x8d": (86_742_336, 624),
}


@pytest.mark.parametrize("name", sorted(TORCHVISION_SIZES))
def test_torchvision_architecture_sizes(name):
    with torch.device("meta"):
        model = ResNet(getattr(ResNetConfig, name)())
    n_params = sum(p.numel() for p in model.parameters())
    # torchvision's totals minus the 1000-way fc (2048*1000 + 1000)
    assert (n_params, len(model.state_dict())) == TORCHVISION_SIZES[name]


def test_names_are_torchvision_names():
    model = ResNet(ResNetConfig.resnext50_32x4d())
    keys = set(model.state_dict())
    for key in [
        "conv1.weight",
        "bn1.running_var",
        "bn1.num_batches_tracked",
        "layer1.0.conv1.weight",
        "layer1.0.downsample.0.weight",
        "layer1.0.downsample.1.bias",
        "layer2.3.bn3.weight",
        "layer4.2.conv2.weight",
    ]:
        assert key in keys, key
    assert model.layer1[0].conv2.groups == 32 and model.layer1[0].conv2.out_channels == 128
    assert model.layer2[0].conv2.stride == (2, 2) and model.layer2[0].conv1.stride == (1, 1)  # v1.5


def test_outputs_and_strides():
    torch.manual_seed(0)
    model = ResNet(ResNetConfig.resnet50()).eval()
    with torch.no_grad():
        out = model(torch.randn(1, 3, 67, 90))
    assert {k: tuple(v.shape) for k, v in out.items()} == {
        "res2": (1, 256, 17, 23),
        "res3": (1, 512, 9, 12),
        "res4": (1, 1024, 5, 6),
        "res5": (1, 2048, 3, 3),
    }
    assert model.out_channels == {"res2": 256, "res3": 512, "res4": 1024, "res5": 2048}
    assert model.out_strides == {"res2": 4, "res3": 8, "res4": 16, "res5": 32}
    sub = ResNet(ResNetConfig(depth=50, out_features=("res3",))).eval()
    with torch.no_grad():
        assert list(sub(torch.randn(1, 3, 64, 64))) == ["res3"]
    with pytest.raises(ValueError):
        ResNetConfig(depth=34)


def test_official_configs_and_key_rules():
    cfg = {"MODEL": {"BACKBONE": {"NAME": "ResNeXt101", "FEATURE_KEYS": ["res2", "res3", "res4", "res5"]}}}
    config = backbone_config_from_official(cfg)
    assert isinstance(config, ResNetConfig) and (config.depth, config.groups, config.width_per_group) == (101, 32, 8)
    assert ResNetConfig.from_official_cfg({"MODEL": {"BACKBONE": {"NAME": "ResNet152"}}}).depth == 152
    with pytest.raises(ValueError):
        backbone_config_from_official({"MODEL": {"BACKBONE": {"NAME": "SMT"}}})
    model = build_backbone(ResNetConfig.resnet50())
    # SeqRank wraps the stem as layer0 = Sequential(conv1, bn1, relu, maxpool)
    official = {"backbone.layer0.0.weight": 0, "backbone.layer0.1.running_mean": 0, "backbone.layer3.5.bn2.bias": 0}
    key_map = KeyMap(rules=ResNet.official_key_rules("backbone.", "backbone."))
    assert {key_map.map_key(k) for k in official} == {
        "backbone.conv1.weight",
        "backbone.bn1.running_mean",
        "backbone.layer3.5.bn2.bias",
    }
    assert all(k[len("backbone.") :] in model.state_dict() for k in map(key_map.map_key, official))
