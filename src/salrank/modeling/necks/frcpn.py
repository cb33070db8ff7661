"""FrcPN, the pixel decoder of the original (uncorrected) SeqRank models.

FRC ("feature re-coordination") fuses an upsampled coarse map into a fine one with an edge-aware
3x3 average: for every pixel and channel, only the neighbours whose *fine* value lies on the same side
of the local 3x3 mean as the centre pixel contribute. The official code (``seqrank/neck/frcpn.py``)
unfolds 3x3 neighbourhoods into ``(B, C, 9, H, W)`` tensors (several of them, 9x the size of the map
each); :func:`frc_average` computes the same numbers, in the same order of float operations, from
nine shifted views of zero-padded maps, a band of rows at a time.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from salrank.modeling.necks.fpn import FEATURE_NAMES, ConvGELUNorm, upsample_to

# Elements per band of rows in frc_average (~2 MiB of float32): keeps the band's temporaries in cache.
_BAND_ELEMENTS = 1 << 19
_OFFSETS = [(dy, dx) for dy in range(3) for dx in range(3)]  # row-major 3x3, the order of nn.Unfold


def _padded_nhwc(x: Tensor) -> Tensor:
    """``(B, C, H, W)`` -> zero-padded ``(B, H+2, W+2, C)`` (one copy)."""
    b, c, h, w = x.shape
    out = x.new_zeros(b, h + 2, w + 2, c)
    out[:, 1 : h + 1, 1 : w + 1] = x.permute(0, 2, 3, 1)
    return out


def frc_average(low: Tensor, high: Tensor) -> Tensor:
    """The FRC masked 3x3 average of ``high`` guided by ``low`` (both ``(B, C, H, W)``).

    For every position and channel, with ``N`` its 3x3 neighbourhood (zero padding outside the map,
    the centre included) and ``t = mean_N(low)`` (always divided by 9)::

        m_k = 1 if (low_k > t) == (low_centre > t) else 0          for k in N
        out = sum_k m_k * high_k / (sum_k m_k + 1e-6)

    The official ``FRC.calcMask`` / masked-sum arithmetic, with the sums accumulated over the nine
    neighbours in row-major order as the official reductions over the unfolded axis do (bit for bit,
    except for the few positions of each plane that fall in the tail of PyTorch's vectorised reduction,
    which orders the additions differently: 1 ulp there), computed without materialising unfolded tensors.
    Returns a ``(B, C, H, W)`` tensor with channels-last memory.
    """
    if low.shape != high.shape:
        raise ValueError(f"low {tuple(low.shape)} and high {tuple(high.shape)} must have the same shape")
    b, c, h, w = low.shape
    with torch.no_grad():  # the masks carry no gradient (comparisons), as in the official code
        low_p = _padded_nhwc(low)
    high_p = _padded_nhwc(high)
    track_grad = torch.is_grad_enabled() and high.requires_grad
    out = None if track_grad else low.new_empty(b, h, w, c)
    parts = []
    band = max(1, _BAND_ELEMENTS // max(1, w * c * b))
    for r0 in range(0, h, band):
        r1 = min(h, r0 + band)

        def shifted(t: Tensor, dy: int, dx: int) -> Tensor:
            return t[:, r0 + dy : r1 + dy, dx : dx + w]

        with torch.no_grad():
            thr = shifted(low_p, 0, 0).clone()
            for dy, dx in _OFFSETS[1:]:
                thr += shifted(low_p, dy, dx)
            thr.div_(9)
            centre_above = shifted(low_p, 1, 1) > thr
            count = torch.zeros_like(thr, dtype=torch.uint8)  # at most 9: exact, and a quarter of the traffic
        total = torch.zeros_like(thr)
        for dy, dx in _OFFSETS:
            with torch.no_grad():
                same_side = torch.gt(shifted(low_p, dy, dx), thr).eq_(centre_above)
                count += same_side
            total += torch.where(same_side, shifted(high_p, dy, dx), 0.0)
        denominator = count.to(total.dtype).add_(1e-6)
        if out is None:
            parts.append(total / denominator)
        else:
            torch.div(total, denominator, out=out[:, r0:r1])
    if out is None:
        out = torch.cat(parts, dim=1)
    return out.permute(0, 3, 1, 2)


class FRC(nn.Module):
    """One FrcPN fusion step: ``fuse(frc_average(low, upsample(project_high(high))) + low)``.

    ``project_high`` and ``fuse`` are ``ConvGELUNorm`` (official ``conv1`` / ``conv2``), both
    xavier-initialised as in the official code.
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.project_high = ConvGELUNorm(in_channels, out_channels)
        self.fuse = ConvGELUNorm(out_channels, out_channels)
        self.project_high.xavier_init_()
        self.fuse.xavier_init_()

    def forward(self, high: Tensor, low: Tensor) -> Tensor:
        """Fuse coarse ``high`` (B, C_in, h, w) into fine ``low`` (B, C_out, H, W)."""
        up = upsample_to(self.project_high(high), low)
        return self.fuse(frc_average(low, up) + low)


class FrcPN(nn.Module):
    """Pyramid with FRC top-down fusion (``MODEL.NECK.NAME: FrcPN``, the original SeqRank models).

    Same interface as :class:`~salrank.modeling.necks.fpn.FPN`: lateral ``ConvGELUNorm`` per level
    (default PyTorch init here, as in the official FrcPN), then each lower level is fused with the
    already fused level above it by an :class:`FRC`.
    """

    def __init__(self, in_channels: Sequence[int], dim: int = 256, in_features: Sequence[str] = FEATURE_NAMES) -> None:
        super().__init__()
        if len(in_channels) != len(in_features):
            raise ValueError("in_channels and in_features must have one entry per level")
        self.in_features = tuple(in_features)
        self.dim = dim
        self.lateral_convs = nn.ModuleList(ConvGELUNorm(c, dim) for c in in_channels)
        self.frcs = nn.ModuleList(FRC(dim, dim) for _ in range(len(in_channels) - 1))

    def forward(self, feats: dict[str, Tensor]) -> dict[str, Tensor]:
        maps = [lateral(feats[name]) for lateral, name in zip(self.lateral_convs, self.in_features)]
        out = [maps[-1]]
        for frc, low in zip(self.frcs, reversed(maps[:-1])):
            out.append(frc(out[-1], low))
        return dict(zip(self.in_features, reversed(out)))

    @staticmethod
    def official_key_rules(official_prefix: str = "neck.", prefix: str = "neck.") -> list[tuple[str, str]]:
        """``(regex, replacement)`` rules renaming the official FrcPN keys.

        ``lateral_conv.{i}.0`` / ``.2.norm`` -> ``lateral_convs.{i}.conv`` / ``.norm``;
        ``frcs.{i}.conv1`` -> ``frcs.{i}.project_high``, ``frcs.{i}.conv2`` -> ``frcs.{i}.fuse``
        (each with ``.0`` -> ``.conv`` and ``.2.norm`` -> ``.norm``).
        """
        src, dst = re.escape(official_prefix), prefix.replace("\\", r"\\")
        return [
            (src + r"lateral_conv\.([0-9]+)\.0\.(weight|bias)", dst + r"lateral_convs.\1.conv.\2"),
            (src + r"lateral_conv\.([0-9]+)\.2\.norm\.(weight|bias)", dst + r"lateral_convs.\1.norm.\2"),
            (src + r"frcs\.([0-9]+)\.conv1\.0\.(weight|bias)", dst + r"frcs.\1.project_high.conv.\2"),
            (src + r"frcs\.([0-9]+)\.conv1\.2\.norm\.(weight|bias)", dst + r"frcs.\1.project_high.norm.\2"),
            (src + r"frcs\.([0-9]+)\.conv2\.0\.(weight|bias)", dst + r"frcs.\1.fuse.conv.\2"),
            (src + r"frcs\.([0-9]+)\.conv2\.2\.norm\.(weight|bias)", dst + r"frcs.\1.fuse.norm.\2"),
        ]
