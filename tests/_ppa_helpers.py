"""A tiny PPA configuration and weights that make a random PPA detect and rank, for the PPA tests."""

from __future__ import annotations

import torch

from salrank.modeling.backbones.vovnet import VoVNetSpec
from salrank.modeling.ppa import PPAConfig, RankHeadConfig

TINY_SPEC = VoVNetSpec("tiny", (8, 8, 16), (8, 8, 8, 8), (16, 16, 32, 32), 2, (1, 1, 2, 1))


def tiny_config(**rank: object) -> PPAConfig:
    """A PPA small enough for unit tests (same structure as the real one)."""
    cfg = PPAConfig(vovnet="tiny", vovnet_spec=TINY_SPEC, fpn_out_channels=32)
    cfg.roi_heads.mask_conv_dim = cfg.roi_heads.maskiou_conv_dim = 32
    options = {"conv_dim": 16, "dense_dim": 32, "obj_dim": 32, "d_model": 32, "n_head": 4, "num_layers": 2, **rank}
    cfg.rank_head = RankHeadConfig(**options)  # type: ignore[arg-type]
    cfg.fcos.post_nms_topk = 6
    cfg.input.min_size_test, cfg.input.max_size_test = 128, 400  # small images keep the tests fast
    return cfg


def lively(model: torch.nn.Module) -> torch.nn.Module:
    """Biases that make a random PPA detect and rank something (as the fixtures do)."""
    with torch.no_grad():
        model.fcos.cls_logits.bias.fill_(-0.6)
        model.fcos.bbox_pred.bias.fill_(3.0)
        model.roi_heads.rank_head.classifier.weight.normal_(0, 0.3)
    return model
