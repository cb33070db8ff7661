"""Every backbone / neck / PE key of the full-size official models has a place in salrank's modules."""

from __future__ import annotations

import json

import pytest
import torch

from salrank.checkpoint import KeyMap
from salrank.modeling.backbones import SwinConfig, SwinTransformer
from salrank.modeling.layers import LearnablePE
from salrank.modeling.necks import NeckConfig, build_neck

MODELS = {"seqrank_correct": "FPN", "seqrank_orig": "FrcPN", "posesor": "FPN"}
PREFIXES = ("backbone.", "neck.", "pe_layer.")


def build_full_size(neck_name: str) -> dict[str, tuple[int, ...]]:
    """Shapes of the salrank state dict of Swin-L + neck + PE at full size (on the meta device)."""
    with torch.device("meta"):
        backbone = SwinTransformer(SwinConfig.large())
        neck = build_neck(NeckConfig(name=neck_name, dim=256, in_channels=(192, 384, 768, 1536)))
        pe = LearnablePE(256)
    shapes = {}
    for prefix, module in (("backbone.", backbone), ("neck.", neck), ("pos_embed.", pe)):
        shapes.update({prefix + k: tuple(v.shape) for k, v in module.state_dict().items()})
    return shapes


@pytest.mark.fixtures
@pytest.mark.parametrize("name", sorted(MODELS))
def test_official_full_size_keys_map_onto_salrank_modules(shared_fixtures, name):
    listing = json.loads((shared_fixtures / "models" / name / f"keys-{name}.json").read_text())
    official = {k: tuple(v) for k, v in listing["keys"].items() if k.startswith(PREFIXES)}
    neck_cls = type(build_neck(NeckConfig(name=MODELS[name], in_channels=(8, 8, 8, 8), dim=8)))
    key_map = KeyMap(
        rules=SwinTransformer.official_key_rules("backbone.", "backbone.")
        + neck_cls.official_key_rules("neck.", "neck.")
        + LearnablePE.official_key_rules("pe_layer.", "pos_embed."),
        drop=SwinTransformer.official_dropped_keys("backbone."),
    )
    ours = build_full_size(MODELS[name])
    mapped, dropped, unmapped = key_map.apply({k: torch.empty(s, device="meta") for k, s in official.items()})
    assert unmapped == []
    assert all(k.endswith("relative_position_index") for k in dropped)
    assert len(dropped) == 24  # one per Swin-L block
    wrong = {k: (tuple(v.shape), ours.get(k)) for k, v in mapped.items() if ours.get(k) != tuple(v.shape)}
    assert wrong == {}
    assert sorted(set(ours) - set(mapped)) == []  # every salrank tensor is provided by the checkpoint
    n_params = sum(torch.Size(s).numel() for k, s in ours.items())
    assert n_params == sum(torch.Size(s).numel() for k, s in official.items() if not k.endswith("relative_position_index"))
