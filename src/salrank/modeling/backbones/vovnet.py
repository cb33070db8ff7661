"""VoVNet-v2 ("eSE") backbones (Lee & Park, CenterMask, CVPR 2020).

A VoVNet is a stem of three 3x3 convolutions (stride 4 in total) followed by four stages (``stage2`` ..
``stage5``, strides 4, 8, 16, 32). Each stage is a chain of One-Shot-Aggregation (OSA) blocks: a block
runs ``layer_per_block`` 3x3 convolutions one after the other, concatenates its input with *every*
intermediate output, squeezes the concatenation with a 1x1 convolution and re-weights the channels with
effective Squeeze-Excitation (eSE: global average pool -> 1x1 conv -> hard sigmoid). Blocks after the
first in a stage add their input back (identity). Stages 3-5 start with a 3x3/2 max-pool (ceil mode).
The "dw" variants use depthwise-separable convolutions (with a 1x1 channel reduction in front).

The architecture is fully described by a :class:`VoVNetSpec`; the official table is
:data:`VOVNET_SPECS`, and custom (e.g. narrow test) specs work the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from salrank.modeling.layers.frozen_bn import FrozenBatchNorm2d, make_norm
from salrank.modeling.layers.memory_format import memory_format_of

__all__ = ["VOVNET_SPECS", "VoVNet", "VoVNetSpec", "fold_conv_frozen_bn", "vovnet_spec"]


@dataclass(frozen=True)
class VoVNetSpec:
    """The numbers that define a VoVNet (the official ``_STAGE_SPECS`` entries)."""

    name: str
    stem: tuple[int, int, int]
    """Output channels of the three stem convolutions."""
    stage_conv_ch: tuple[int, int, int, int]
    """Channels of the 3x3 convolutions inside the OSA blocks of stages 2-5."""
    stage_out_ch: tuple[int, int, int, int]
    """Output channels (after the 1x1 aggregation) of stages 2-5."""
    layer_per_block: int
    block_per_stage: tuple[int, int, int, int]
    eSE: bool = True
    """Recorded for completeness: the official VoVNet applies eSE in every OSA block whatever this
    says, and so does salrank (all official specs have it set)."""
    dw: bool = False
    """Depthwise-separable 3x3 convolutions (the ``-dw`` variants)."""

    @classmethod
    def from_dict(cls, data: dict) -> VoVNetSpec:
        """Build from the official dict layout (``stem``, ``stage_conv_ch``, ... ``eSE``, ``dw``)."""
        known = {"name", "stem", "stage_conv_ch", "stage_out_ch", "layer_per_block", "block_per_stage", "eSE", "dw"}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown VoVNet spec field(s): {', '.join(sorted(unknown))}")
        return cls(
            name=str(data.get("name", "custom")),
            stem=tuple(int(v) for v in data["stem"]),  # type: ignore[arg-type]
            stage_conv_ch=tuple(int(v) for v in data["stage_conv_ch"]),  # type: ignore[arg-type]
            stage_out_ch=tuple(int(v) for v in data["stage_out_ch"]),  # type: ignore[arg-type]
            layer_per_block=int(data["layer_per_block"]),
            block_per_stage=tuple(int(v) for v in data["block_per_stage"]),  # type: ignore[arg-type]
            eSE=bool(data.get("eSE", True)),
            dw=bool(data.get("dw", False)),
        )

    def __post_init__(self) -> None:
        if len(self.stem) != 3 or len(self.stage_conv_ch) != 4 or len(self.stage_out_ch) != 4 or len(self.block_per_stage) != 4:
            raise ValueError(f"VoVNet spec {self.name!r}: stem needs 3 widths and every stage list 4 entries")
        if self.layer_per_block < 1 or min(self.block_per_stage) < 1:
            raise ValueError(f"VoVNet spec {self.name!r}: layer_per_block and block_per_stage must be >= 1")


def _spec(name: str, stem, conv, out, layers, blocks, dw=False) -> VoVNetSpec:
    return VoVNetSpec(name, tuple(stem), tuple(conv), tuple(out), layers, tuple(blocks), True, dw)


_WIDE_CONV, _WIDE_OUT = (128, 160, 192, 224), (256, 512, 768, 1024)
_SLIM_CONV, _SLIM_OUT = (64, 80, 96, 112), (112, 256, 384, 512)

VOVNET_SPECS: dict[str, VoVNetSpec] = {
    s.name: s
    for s in (
        _spec("V-19-slim-dw-eSE", (64, 64, 64), _SLIM_CONV, _SLIM_OUT, 3, (1, 1, 1, 1), dw=True),
        _spec("V-19-dw-eSE", (64, 64, 64), _WIDE_CONV, _WIDE_OUT, 3, (1, 1, 1, 1), dw=True),
        _spec("V-19-slim-eSE", (64, 64, 128), _SLIM_CONV, _SLIM_OUT, 3, (1, 1, 1, 1)),
        _spec("V-19-eSE", (64, 64, 128), _WIDE_CONV, _WIDE_OUT, 3, (1, 1, 1, 1)),
        _spec("V-39-eSE", (64, 64, 128), _WIDE_CONV, _WIDE_OUT, 5, (1, 1, 2, 2)),
        _spec("V-57-eSE", (64, 64, 128), _WIDE_CONV, _WIDE_OUT, 5, (1, 1, 4, 3)),
        _spec("V-99-eSE", (64, 64, 128), _WIDE_CONV, _WIDE_OUT, 5, (1, 3, 9, 3)),
    )
}
"""The official VoVNet table (CenterMask2 ``_STAGE_SPECS``)."""


def vovnet_spec(name: str) -> VoVNetSpec:
    """The official spec called ``name`` (e.g. ``"V-39-eSE"``)."""
    if name not in VOVNET_SPECS:
        raise KeyError(f"unknown VoVNet {name!r}; official specs: {', '.join(VOVNET_SPECS)} (pass a VoVNetSpec for others)")
    return VOVNET_SPECS[name]


@torch.no_grad()
def fold_conv_frozen_bn(conv: nn.Conv2d, norm: FrozenBatchNorm2d) -> None:
    """Fold ``norm`` (applied to ``conv``'s output) into ``conv``'s weight and bias, in place.

    ``norm(conv(x)) = conv(x) * scale + shift`` per output channel, so the conv with weight
    ``w * scale`` and bias ``b * scale + shift`` computes the same map in one step (float rounding aside:
    the products are formed before the sums instead of after). The weight keeps its memory format.
    """
    scale, shift = norm.scale_and_shift()
    weight = conv.weight
    folded = (weight * scale.reshape(-1, 1, 1, 1).to(weight.dtype)).contiguous(memory_format=memory_format_of(weight))
    bias = shift if conv.bias is None else conv.bias * scale + shift
    conv.weight = nn.Parameter(folded, requires_grad=weight.requires_grad)
    conv.bias = nn.Parameter(bias.to(weight.dtype), requires_grad=weight.requires_grad)


class ConvNormReLU(nn.Module):
    """``conv (no bias) -> norm -> ReLU``."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, norm: str) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride=stride, padding=kernel // 2, bias=False)
        self.norm = make_norm(norm, cout) or nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.norm(self.conv(x)), inplace=True)

    def fold_norm(self) -> bool:
        """Fold a :class:`FrozenBatchNorm2d` into the conv (see :func:`fold_conv_frozen_bn`); ``True`` if one was."""
        if not isinstance(self.norm, FrozenBatchNorm2d):
            return False
        fold_conv_frozen_bn(self.conv, self.norm)
        self.norm = nn.Identity()
        return True


class DWConvNormReLU(nn.Module):
    """Depthwise 3x3 conv -> pointwise 1x1 conv -> norm -> ReLU (the ``-dw`` variants).

    As in the official code the depthwise conv has ``groups = out_channels`` (so it needs
    ``in_channels == out_channels``, which every official spec satisfies).
    """

    def __init__(self, cin: int, cout: int, stride: int, norm: str) -> None:
        super().__init__()
        self.dw = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, groups=cout, bias=False)
        self.pw = nn.Conv2d(cin, cout, 1, bias=False)
        self.norm = make_norm(norm, cout) or nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.norm(self.pw(self.dw(x))), inplace=True)

    def fold_norm(self) -> bool:
        """Fold a :class:`FrozenBatchNorm2d` into the pointwise conv; ``True`` if one was."""
        if not isinstance(self.norm, FrozenBatchNorm2d):
            return False
        fold_conv_frozen_bn(self.pw, self.norm)
        self.norm = nn.Identity()
        return True


class EffectiveSE(nn.Module):
    """eSE channel attention: ``x * hard_sigmoid(fc(avg_pool(x)))`` with a single 1x1 conv."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.fc = nn.Conv2d(channels, channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        gate = self.fc(F.adaptive_avg_pool2d(x, 1))
        return x * (F.relu6(gate + 3.0) / 6.0)


class OSABlock(nn.Module):
    """One-Shot Aggregation: ``concat(x, f1(x), f2(f1(x)), ...) -> 1x1 -> eSE (+ x)``."""

    def __init__(
        self, cin: int, conv_ch: int, out_ch: int, num_layers: int, norm: str, *, identity: bool, depthwise: bool
    ) -> None:
        super().__init__()
        self.identity = identity
        self.reduction = ConvNormReLU(cin, conv_ch, 1, 1, norm) if depthwise and cin != conv_ch else None
        layers: list[nn.Module] = []
        ch = cin
        for _ in range(num_layers):
            layers.append(DWConvNormReLU(conv_ch, conv_ch, 1, norm) if depthwise else ConvNormReLU(ch, conv_ch, 3, 1, norm))
            ch = conv_ch
        self.layers = nn.ModuleList(layers)
        self.concat = ConvNormReLU(cin + num_layers * conv_ch, out_ch, 1, 1, norm)
        self.ese = EffectiveSE(out_ch)

    def forward(self, x: Tensor) -> Tensor:
        outputs = [x]
        y = self.reduction(x) if self.reduction is not None else x
        for layer in self.layers:
            y = layer(y)
            outputs.append(y)
        out = self.ese(self.concat(torch.cat(outputs, dim=1)))
        return out + x if self.identity else out


class OSAStage(nn.Module):
    """A (max-pool and) chain of OSA blocks; the first block changes the width, the others are residual."""

    def __init__(self, cin: int, conv_ch: int, out_ch: int, num_blocks: int, num_layers: int, norm: str, *, pool: bool, depthwise: bool) -> None:
        super().__init__()
        self.pool = nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True) if pool else None
        self.blocks = nn.ModuleList(
            OSABlock(cin if i == 0 else out_ch, conv_ch, out_ch, num_layers, norm, identity=i > 0, depthwise=depthwise)
            for i in range(num_blocks)
        )

    def forward(self, x: Tensor) -> Tensor:
        if self.pool is not None:
            x = self.pool(x)
        for block in self.blocks:
            x = block(x)
        return x


@dataclass
class FeatureInfo:
    channels: int
    stride: int


class VoVNet(nn.Module):
    """VoVNet feature extractor returning ``{"stage3": ..., ...}`` for the requested ``out_features``.

    Args:
        spec: the architecture (see :data:`VOVNET_SPECS`).
        norm: normalisation after every convolution (``"FrozenBN"`` for detection fine-tuning).
        out_features: which of ``"stem"``, ``"stage2"`` .. ``"stage5"`` to return.
        in_channels: image channels.
    """

    stage_names = ("stage2", "stage3", "stage4", "stage5")

    def __init__(
        self,
        spec: VoVNetSpec,
        norm: str = "FrozenBN",
        out_features: Sequence[str] = ("stage3", "stage4", "stage5"),
        in_channels: int = 3,
    ) -> None:
        super().__init__()
        unknown = set(out_features) - {"stem", *self.stage_names}
        if unknown:
            raise ValueError(f"unknown VoVNet output(s) {sorted(unknown)}; choose from stem, stage2..stage5")
        self.spec = spec
        self.out_features = tuple(out_features)
        s = spec
        if s.dw:
            stem: list[nn.Module] = [
                ConvNormReLU(in_channels, s.stem[0], 3, 2, norm),
                DWConvNormReLU(s.stem[0], s.stem[1], 1, norm),
                DWConvNormReLU(s.stem[1], s.stem[2], 2, norm),
            ]
        else:
            stem = [
                ConvNormReLU(in_channels, s.stem[0], 3, 2, norm),
                ConvNormReLU(s.stem[0], s.stem[1], 3, 1, norm),
                ConvNormReLU(s.stem[1], s.stem[2], 3, 2, norm),
            ]
        self.stem = nn.Sequential(*stem)
        self.feature_info: dict[str, FeatureInfo] = {"stem": FeatureInfo(s.stem[2], 4)}
        cin = s.stem[2]
        for i, name in enumerate(self.stage_names):
            stage = OSAStage(
                cin, s.stage_conv_ch[i], s.stage_out_ch[i], s.block_per_stage[i], s.layer_per_block, norm,
                pool=i > 0, depthwise=s.dw,
            )
            self.add_module(name, stage)
            self.feature_info[name] = FeatureInfo(s.stage_out_ch[i], 4 * 2**i)
            cin = s.stage_out_ch[i]

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        out: dict[str, Tensor] = {}
        x = self.stem(x)
        if "stem" in self.out_features:
            out["stem"] = x
        last = max((self.stage_names.index(f) for f in self.out_features if f != "stem"), default=-1)
        for name in self.stage_names[: last + 1]:
            x = getattr(self, name)(x)
            if name in self.out_features:
                out[name] = x
        return out

    def fold_frozen_bn(self) -> int:
        """Fold every frozen BatchNorm into the convolution before it (an inference-only step).

        Each ``conv -> FrozenBN -> ReLU`` becomes ``conv (with bias) -> ReLU``: one pass over the feature
        map less per layer, same function up to float rounding (~1e-6 relative). Call it after loading
        the weights: the folded model has no ``norm.*`` tensors and new conv biases, so it no longer
        loads official checkpoints, and trainable BatchNorm layers are left alone. Returns the number of
        layers folded (0 if already folded).
        """
        folded = 0
        for module in self.modules():
            if isinstance(module, (ConvNormReLU, DWConvNormReLU)):
                folded += int(module.fold_norm())
        return folded

    def output_shape(self) -> dict[str, FeatureInfo]:
        """Channels and stride of each returned feature."""
        return {k: self.feature_info[k] for k in self.out_features}
