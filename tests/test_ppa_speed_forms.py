"""PPA's faster inference forms (``optimize_ppa_for_inference``) against the official-arithmetic form.

The optimised form (frozen BatchNorm folded into the VoVNet convolutions, FCOS towers fused) must give
the same function up to float rounding, and the same detections, masks and ranks: on tiny random models
here; against the official outputs of ``../shared/fixtures/models/ppa`` in ``test_ppa_fidelity.py``.
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import torch
from _ppa_helpers import TINY_SPEC, lively, tiny_config

from salrank.modeling.backbones.vovnet import (
    ConvNormReLU,
    DWConvNormReLU,
    VoVNet,
    VoVNetSpec,
    fold_conv_frozen_bn,
)
from salrank.modeling.layers.frozen_bn import FrozenBatchNorm2d
from salrank.modeling.ppa import build_ppa
from salrank.modeling.ppa.config import FCOSConfig
from salrank.modeling.ppa.fcos import FCOSHead, FusedFCOSTowers
from salrank.modeling.ppa.inference_forms import optimize_ppa_for_inference

TINY_DW_SPEC = VoVNetSpec(
    "tiny-dw", (8, 8, 8), (8, 8, 8, 8), (16, 16, 32, 32), 2, (1, 1, 2, 1), dw=True
)


def randomize_frozen_bn(module: torch.nn.Module, seed: int = 0) -> None:
    """Non-trivial frozen statistics (a freshly built network has identity BatchNorms)."""
    g = torch.Generator().manual_seed(seed)
    for m in module.modules():
        if isinstance(m, FrozenBatchNorm2d):
            n = m.num_features
            m.weight.copy_(torch.rand(n, generator=g) + 0.5)
            m.bias.copy_(torch.randn(n, generator=g) * 0.2)
            m.running_mean.copy_(torch.randn(n, generator=g) * 0.2)
            m.running_var.copy_(torch.rand(n, generator=g) + 0.5)


def lively_tiny_ppa(seed: int = 0):
    torch.manual_seed(seed)
    model = lively(build_ppa(tiny_config()))
    with torch.no_grad():
        # the official init (std 0.001) leaves every mask probability within ~1e-3 of the 0.5
        # threshold, where float rounding decides the pasted pixels; a trained head is decisive
        model.roi_heads.mask_head.predictor.weight.normal_(0, 0.05)
        for m in model.fcos.modules():
            if isinstance(
                m, torch.nn.GroupNorm
            ):  # GN affine of a trained model is not (1, 0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0, 0.1)
        randomize_frozen_bn(model.backbone)
    return model


# --------------------------------------------------------------------------- frozen BatchNorm folding
@pytest.mark.parametrize("bias", [False, True])
def test_fold_conv_frozen_bn_is_the_same_map(bias: bool) -> None:
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(6, 5, 3, padding=1, bias=bias)
    norm = FrozenBatchNorm2d(5)
    randomize_frozen_bn(norm)
    x = torch.randn(2, 6, 7, 9)
    with torch.no_grad():
        want = norm(conv(x))
        fold_conv_frozen_bn(conv, norm)
        torch.testing.assert_close(conv(x), want, atol=1e-5, rtol=1e-5)
    assert conv.bias is not None


@pytest.mark.parametrize("spec", [TINY_SPEC, TINY_DW_SPEC], ids=["osa", "osa-dw"])
@pytest.mark.parametrize("channels_last", [False, True])
def test_vovnet_fold_frozen_bn(spec: VoVNetSpec, channels_last: bool) -> None:
    torch.manual_seed(0)
    net = VoVNet(spec, out_features=("stage2", "stage3", "stage4", "stage5")).eval()
    with torch.no_grad():
        randomize_frozen_bn(net)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    for p in net.parameters():
        if p.dim() == 4:
            p.data = p.data.contiguous(memory_format=fmt)
    x = torch.randn(1, 3, 64, 96).contiguous(memory_format=fmt)
    folded = copy.deepcopy(net)
    n_norms = sum(isinstance(m, FrozenBatchNorm2d) for m in net.modules())
    assert folded.fold_frozen_bn() == n_norms > 0
    assert folded.fold_frozen_bn() == 0  # already folded
    assert not any(isinstance(m, FrozenBatchNorm2d) for m in folded.modules())
    assert not any(".norm." in k for k in folded.state_dict())
    for m in folded.modules():
        if isinstance(m, (ConvNormReLU, DWConvNormReLU)):
            conv = m.conv if isinstance(m, ConvNormReLU) else m.pw
            assert conv.bias is not None and conv.weight.is_contiguous(
                memory_format=fmt
            )
    with torch.no_grad():
        want, got = net(x), folded(x)
    for k in want:
        scale = float(want[k].abs().max())
        torch.testing.assert_close(
            got[k], want[k], atol=1e-5 * max(scale, 1.0), rtol=1e-4
        )


def test_fold_leaves_trainable_batchnorm_alone() -> None:
    net = VoVNet(TINY_SPEC, norm="BN")
    assert net.fold_frozen_bn() == 0
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules())


# --------------------------------------------------------------------------- fused FCOS towers
@pytest.mark.parametrize("norm", ["GN", "none"])
def test_fused_fcos_towers_same_outputs(norm: str) -> None:
    torch.manual_seed(0)
    cfg = FCOSConfig(norm=norm, num_cls_convs=3, num_box_convs=3)
    head = FCOSHead(cfg, 64).eval()
    with torch.no_grad():
        for m in head.modules():
            if isinstance(m, torch.nn.Conv2d):
                m.weight.normal_(0, 0.05)
                m.bias.normal_(0, 0.1)
            elif isinstance(m, torch.nn.GroupNorm):
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0, 0.1)
        for s in head.scales:
            s.scale.fill_(1.3)
    levels = [torch.randn(1, 64, h, w) for h, w in ((16, 20), (8, 10), (4, 5))]
    fused = copy.deepcopy(head)
    assert fused.fuse_towers() and not fused.fuse_towers()
    assert isinstance(fused.fused_towers, FusedFCOSTowers)
    assert not hasattr(fused, "cls_tower") and not hasattr(fused, "bbox_pred")
    with torch.no_grad():
        want, got = head(levels), fused(levels)
    for name, w_levels, g_levels in zip(("logits", "bbox_reg", "ctrness"), want, got):
        for w, g in zip(w_levels, g_levels):
            assert g.shape == w.shape, name
            torch.testing.assert_close(g, w, atol=1e-5, rtol=1e-4, msg=name)
    fused.train()
    with pytest.raises(RuntimeError, match="inference form"):
        fused(levels)


def test_towers_of_different_depth_are_not_fused() -> None:
    head = FCOSHead(FCOSConfig(num_cls_convs=2, num_box_convs=3), 32)
    assert (
        not head.fuse_towers()
        and head.fused_towers is None
        and hasattr(head, "cls_tower")
    )


# --------------------------------------------------------------------------- whole model
@pytest.mark.parametrize("seed", [0, 1])
def test_optimised_tiny_ppa_predicts_the_same(seed: int) -> None:
    model = lively_tiny_ppa(seed)
    reference = copy.deepcopy(model).set_channels_last(False)
    optimised = copy.deepcopy(model)
    changes = optimize_ppa_for_inference(optimised)
    assert changes == {
        "folded_bn": sum(isinstance(m, FrozenBatchNorm2d) for m in model.modules()),
        "fused_fcos": 1,
    }
    assert optimize_ppa_for_inference(optimised) == {"folded_bn": 0, "fused_fcos": 0}
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)
    image[30:90, 40:120] = (200, 40, 40)  # some structure
    tensor = model.preprocess(image)
    preds = [
        m.run_image(tensor, output_hw=image.shape[:2])
        for m in (reference, model, optimised)
    ]
    ref = preds[0]
    assert (
        len(ref) > 0
        and ref.detections.pred_ranks is not None
        and (ref.detections.pred_ranks >= 0).any()
    )
    for pred in preds[1:]:
        assert pred.detection_index.tolist() == ref.detection_index.tolist()
        assert pred.detections.pred_ranks.tolist() == ref.detections.pred_ranks.tolist()
        torch.testing.assert_close(pred.boxes, ref.boxes, atol=1e-3, rtol=0)
        torch.testing.assert_close(
            pred.detections.scores, ref.detections.scores, atol=1e-5, rtol=0
        )
        torch.testing.assert_close(
            pred.detections.mask_probs, ref.detections.mask_probs, atol=1e-5, rtol=0
        )
        torch.testing.assert_close(
            pred.detections.sor_logits, ref.detections.sor_logits, atol=1e-4, rtol=0
        )
        assert torch.equal(pred.masks(), ref.masks())
    (want,) = reference.predict([image], ["x"])
    (got,) = optimised.predict([image], ["x"])
    assert got.extras["rank_class"].tolist() == want.extras["rank_class"].tolist()
    np.testing.assert_array_equal(got.masks, want.masks)


# --------------------------------------------------------------------------- official fixture
@pytest.fixture(scope="module")
def official(shared_fixtures: Path) -> tuple:
    """The official PPA fixture's expected outputs and folder (its outputs are compared in every
    inference form, the optimised one included, by ``test_ppa_fidelity.py``)."""
    path = shared_fixtures / "models" / "ppa"
    if not (path / "expected.pt").is_file():
        pytest.skip(f"PPA fixture not found in {path}")
    return torch.load(path / "expected.pt", weights_only=True), path


def test_predictor_loads_ppa_in_its_inference_form(official: tuple) -> None:
    """A Predictor that loads a PPA model itself optimises it, and still gives the official ranking."""
    from salrank.modeling.ppa import ppa_config_from_official_yaml
    from salrank.predictor import Predictor
    from salrank.utils.io import read_image

    expected, path = official
    cfg = ppa_config_from_official_yaml(path / "config.yaml", vovnet_spec=expected["meta"]["vovnet_spec"])
    predictor = Predictor.from_config(cfg, path / "checkpoint.pth")
    assert predictor.model.fcos.fused_towers is not None
    assert not any(isinstance(m, FrozenBatchNorm2d) for m in predictor.model.backbone.modules())
    (result,) = predictor.model.predict([read_image(path / "input.jpg")], ["input"])
    assert result.extras["detection_index"].tolist() == [0, 6, 7, 2, 1]
    np.testing.assert_array_equal(result.masks, expected["final"]["pred_masks"][[0, 6, 7, 2, 1]].bool().numpy())
