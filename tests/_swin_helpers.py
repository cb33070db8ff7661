"""Loading the Swin backbone of an official fixture checkpoint, for the backbone and neck tests."""

from __future__ import annotations

import torch

from salrank.checkpoint import read_official_checkpoint
from salrank.config import load_official_yaml
from salrank.modeling.backbones import SwinConfig, SwinTransformer
from salrank.modeling.backbones.swin import relative_position_index

PIXEL_MEAN = torch.tensor([123.675, 116.28, 103.53]).view(1, 3, 1, 1)
PIXEL_STD = torch.tensor([58.395, 57.12, 57.375]).view(1, 3, 1, 1)


def load_fixture_backbone(folder, fused: bool = False) -> tuple[SwinTransformer, dict]:
    cfg = load_official_yaml(folder / "config.yaml")
    config = SwinConfig.from_official_cfg(cfg)
    config.fused_attention = fused
    model = SwinTransformer(config).eval()
    state = read_official_checkpoint(folder / "checkpoint.pth")
    backbone = {k[len("backbone.") :]: v for k, v in state.items() if k.startswith("backbone.")}
    for key in [k for k in backbone if k.endswith("relative_position_index")]:
        index = backbone.pop(key)  # the official buffer must equal the one computed here
        assert torch.equal(index, relative_position_index(model.config.window_size)), key
    model.load_state_dict(backbone, strict=True)
    expected = torch.load(folder / "expected.pt", weights_only=True)
    return model, expected
