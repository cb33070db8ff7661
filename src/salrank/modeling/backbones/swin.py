"""Swin Transformer backbone, the detection variant used by Mask2Former, SeqRank and PoseSOR.

Liu et al., "Swin Transformer: Hierarchical Vision Transformer using Shifted Windows" (ICCV 2021).
This is the ``D2SwinTransformer`` of the official SeqRank/PoseSOR code (byte-identical in both
repositories), reimplemented:

* patch embedding (conv ``patch_size`` x ``patch_size``) with LayerNorm, optional absolute position
  embedding (off in every released model);
* four stages of Swin blocks, alternately with regular and shifted windows; feature maps whose size
  is not a multiple of the window are zero-padded *after* ``norm1`` (padded tokens take part in the
  attention as keys, exactly as in the official code), shifted windows use the official -100 region
  mask, computed on the fly for any input size;
* patch merging between stages;
* one LayerNorm per output (``norm0 .. norm3``), outputs ``res2 .. res5`` at strides 4/8/16/32 as
  ``(B, C_i, H_i, W_i)`` maps.

State-dict keys are the official ones (``patch_embed.proj.weight``,
``layers.2.blocks.5.attn.qkv.weight``, ``norm3.bias``, ...); the constant
``relative_position_index`` buffers are computed, not stored (see :meth:`SwinTransformer.official_key_rules`).

Speed. The arithmetic is the official one, organised to avoid the large temporaries of the
original: window partition, cyclic shift, padding and the inverse steps are one precomputed row
gather each way (cached per input size); the query/key/value projection and the output projection
run only on real tokens (a padded token's projection is exactly the bias); at inference (eval mode,
gradients off) the work is done in cache-sized chunks with the residual additions in place. By default
the window attention follows the official sequence of float operations, so the features are the
official ones bit for bit on the same machine (``tests/test_blocks_swin.py``);
``SwinConfig(fused_attention=True)`` switches to ``scaled_dot_product_attention`` (faster, ~1e-6
rounding differences).
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
import torch.utils.checkpoint
from torch import Tensor, nn

from salrank.config import cfg_get
from salrank.modeling.layers.drop_path import DropPath

FEATURE_NAMES = ("res2", "res3", "res4", "res5")

# Work sizes of the inference path, in float32 elements per temporary (~4 MiB): small enough to stay
# in the CPU caches and out of the allocator's fresh-page path, large enough for efficient GEMMs.
_CHUNK_ELEMENTS = 1 << 20
_MIN_CHUNK_ROWS = 256

# Score added between tokens of different regions in shifted windows (official value, not -inf).
_REGION_MASK_VALUE = -100.0


@dataclass
class SwinConfig:
    """Hyper-parameters of :class:`SwinTransformer` (the official ``MODEL.SWIN`` keys, lower-cased).

    Defaults are those of the official ``add_custom_config`` (a Swin-T); use :meth:`tiny`,
    :meth:`small`, :meth:`base`, :meth:`large` or :meth:`from_official_cfg`.
    """

    embed_dim: int = 96
    depths: tuple[int, ...] = (2, 2, 6, 2)
    num_heads: tuple[int, ...] = (3, 6, 12, 24)
    window_size: int = 7
    patch_size: int = 4
    in_chans: int = 3
    mlp_ratio: float = 4.0
    qkv_bias: bool = True
    qk_scale: float | None = None
    drop_rate: float = 0.0
    attn_drop_rate: float = 0.0
    drop_path_rate: float = 0.3
    ape: bool = False
    patch_norm: bool = True
    pretrain_img_size: int = 224
    """Only used for the absolute position embedding's size (``ape``)."""
    out_features: tuple[str, ...] = FEATURE_NAMES
    use_checkpoint: bool = False
    """Gradient checkpointing of every block during training (saves memory, costs a re-forward)."""
    fused_attention: bool = False
    """Window attention through ``scaled_dot_product_attention`` (faster, no stored attention
    matrices in training) instead of the official sequence of operations. Off by default: the
    official order reproduces the official features bit for bit, while the fused kernel's rounding
    (~1e-6) can flip FrcPN's local-mean comparisons downstream (see :class:`WindowAttention`)."""

    def __post_init__(self) -> None:
        self.depths = tuple(int(d) for d in self.depths)
        self.num_heads = tuple(int(h) for h in self.num_heads)
        self.out_features = tuple(self.out_features)
        if len(self.depths) != len(self.num_heads):
            raise ValueError("depths and num_heads must have one entry per stage")
        for name in self.out_features:
            if name not in FEATURE_NAMES[: len(self.depths)]:
                raise ValueError(f"unknown Swin output {name!r}; choose from {FEATURE_NAMES[: len(self.depths)]}")
        for i, heads in enumerate(self.num_heads):
            if (self.embed_dim * 2**i) % heads:
                raise ValueError(f"stage {i}: {heads} heads do not divide {self.embed_dim * 2**i} channels")

    @property
    def num_features(self) -> tuple[int, ...]:
        """Channels of each stage (``res2 .. res5``)."""
        return tuple(self.embed_dim * 2**i for i in range(len(self.depths)))

    @classmethod
    def tiny(cls, **overrides: Any) -> SwinConfig:
        """Swin-T (ImageNet-1k, 224, window 7), Mask2Former's settings."""
        return cls(**{**dict(embed_dim=96, depths=(2, 2, 6, 2), num_heads=(3, 6, 12, 24), window_size=7), **overrides})

    @classmethod
    def small(cls, **overrides: Any) -> SwinConfig:
        """Swin-S (ImageNet-1k, 224, window 7)."""
        return cls(**{**dict(embed_dim=96, depths=(2, 2, 18, 2), num_heads=(3, 6, 12, 24), window_size=7), **overrides})

    @classmethod
    def base(cls, **overrides: Any) -> SwinConfig:
        """Swin-B (ImageNet-22k, 384, window 12)."""
        base = dict(embed_dim=128, depths=(2, 2, 18, 2), num_heads=(4, 8, 16, 32), window_size=12, pretrain_img_size=384)
        return cls(**{**base, **overrides})

    @classmethod
    def large(cls, **overrides: Any) -> SwinConfig:
        """Swin-L (ImageNet-22k, 384, window 12) exactly as SeqRank's/PoseSOR's ``configs/swinL.yaml``."""
        large = dict(
            embed_dim=192,
            depths=(2, 2, 18, 2),
            num_heads=(6, 12, 24, 48),
            window_size=12,
            pretrain_img_size=384,
            drop_path_rate=0.2,
        )
        return cls(**{**large, **overrides})

    @classmethod
    def from_official_cfg(cls, cfg: Mapping[str, Any]) -> SwinConfig:
        """Read ``MODEL.SWIN`` of an official SeqRank/PoseSOR config (nested dicts, see
        :func:`salrank.config.load_official_yaml`); absent keys take the official defaults."""
        d = cls()

        def get(key: str, default: Any) -> Any:
            return cfg_get(dict(cfg), f"MODEL.SWIN.{key}", default)

        qk_scale = get("QK_SCALE", None)
        return cls(
            embed_dim=int(get("EMBED_DIM", d.embed_dim)),
            depths=tuple(get("DEPTHS", d.depths)),
            num_heads=tuple(get("NUM_HEADS", d.num_heads)),
            window_size=int(get("WINDOW_SIZE", d.window_size)),
            patch_size=int(get("PATCH_SIZE", d.patch_size)),
            mlp_ratio=float(get("MLP_RATIO", d.mlp_ratio)),
            qkv_bias=bool(get("QKV_BIAS", d.qkv_bias)),
            qk_scale=None if qk_scale is None else float(qk_scale),
            drop_rate=float(get("DROP_RATE", d.drop_rate)),
            attn_drop_rate=float(get("ATTN_DROP_RATE", d.attn_drop_rate)),
            drop_path_rate=float(get("DROP_PATH_RATE", d.drop_path_rate)),
            ape=bool(get("APE", d.ape)),
            patch_norm=bool(get("PATCH_NORM", d.patch_norm)),
            pretrain_img_size=int(get("PRETRAIN_IMG_SIZE", d.pretrain_img_size)),
            out_features=tuple(get("OUT_FEATURES", d.out_features)),
            use_checkpoint=bool(get("USE_CHECKPOINT", d.use_checkpoint)),
        )


# ----------------------------------------------------------------------------------------------
# Window geometry (pure functions of the input size, cached)


@dataclass(frozen=True)
class WindowLayout:
    """How one stage's ``(B, H, W)`` token grid is cut into (possibly shifted) attention windows.

    Window rows are ordered: first every window that needs no region mask (all images), then the
    windows that do. ``gather`` picks, for every window row, the token row of the flattened
    ``(B*H*W, C)`` tokens it holds, or ``B*H*W`` (one extra row) for a padding position; ``scatter``
    is the inverse for real tokens.
    """

    num_windows: int
    """Windows over the whole batch."""
    num_plain: int
    """Leading windows that need no region mask."""
    gather: Tensor
    scatter: Tensor
    region_mask: Tensor | None
    """``(num_windows - num_plain, N, N)`` of 0 / -100 for the masked windows, else ``None``."""


@functools.lru_cache(maxsize=64)
@torch.inference_mode(False)  # cached tensors are reused under autograd: never make them inference tensors
def window_layout(
    height: int, width: int, window_size: int, shift: int, batch: int, device: torch.device
) -> WindowLayout:
    """The :class:`WindowLayout` for a ``height x width`` grid (cached per size and device).

    Computed outside ``torch.inference_mode`` even when first asked for inside it (``Predictor``):
    a layout cached there would be an inference tensor that a later training forward cannot use.

    Follows the official block: zero-pad bottom/right to multiples of ``window_size``, roll by
    ``-shift`` in both directions, partition into windows; with ``shift > 0`` the 3x3 regions of the
    rolled grid (``[0, -ws)``, ``[-ws, -shift)``, ``[-shift, end)`` per axis) may not attend to each other.
    """
    ws = window_size
    hp = math.ceil(height / ws) * ws
    wp = math.ceil(width / ws) * ws
    n_tok = height * width
    cpu = torch.device("cpu")  # computed on the CPU whatever the default device, then moved
    rows = (torch.arange(hp, device=cpu) + shift) % hp  # rolled-grid row -> padded-grid row
    cols = (torch.arange(wp, device=cpu) + shift) % wp
    real = (rows[:, None] < height) & (cols[None, :] < width)
    src = torch.where(real, rows[:, None] * width + cols[None, :], -1)

    def partition(grid: Tensor) -> Tensor:  # (hp, wp) -> (nW, ws*ws), window-major as the official
        return grid.view(hp // ws, ws, wp // ws, ws).permute(0, 2, 1, 3).reshape(-1, ws * ws)

    win_src = partition(src)
    n_win = win_src.shape[0]
    if shift > 0:
        def regions(n: int) -> Tensor:
            lab = torch.zeros(n, dtype=torch.long, device=cpu)
            lab[n - ws : n - shift] = 1
            lab[n - shift :] = 2
            return lab

        labels = partition(regions(hp)[:, None] * 3 + regions(wp)[None, :])
        masked = (labels != labels[:, :1]).any(dim=1)
    else:
        labels = None
        masked = torch.zeros(n_win, dtype=torch.bool, device=cpu)
    order = torch.cat([torch.nonzero(~masked).flatten(), torch.nonzero(masked).flatten()])
    n_plain = int((~masked).sum())

    # Batch: plain windows of every image, then masked windows of every image.
    offsets = torch.arange(batch, device=cpu)[:, None, None] * n_tok
    win_src_b = torch.where(win_src >= 0, win_src + offsets, batch * n_tok)  # (B, nW, N)
    plain = win_src_b[:, order[:n_plain]].reshape(-1)
    rest = win_src_b[:, order[n_plain:]].reshape(-1)
    gather = torch.cat([plain, rest])
    scatter = torch.empty(batch * n_tok, dtype=torch.long, device=cpu)
    is_real = gather < batch * n_tok
    scatter[gather[is_real]] = torch.arange(gather.numel(), device=cpu)[is_real]

    region_mask = None
    if labels is not None and n_plain < n_win:
        lab = labels[order[n_plain:]]
        one = torch.where(lab[:, :, None] != lab[:, None, :], _REGION_MASK_VALUE, 0.0)
        region_mask = one.repeat(batch, 1, 1).to(device=device, dtype=torch.float32)
    return WindowLayout(
        num_windows=n_win * batch,
        num_plain=n_plain * batch,
        gather=gather.to(device),
        scatter=scatter.to(device),
        region_mask=region_mask,
    )


def relative_position_index(window_size: int) -> Tensor:
    """``(N, N)`` index into the ``(2ws-1)^2`` bias table for every pair of tokens in a window."""
    ws = window_size
    coords = torch.stack(torch.meshgrid(torch.arange(ws), torch.arange(ws), indexing="ij")).flatten(1)  # 2, N
    rel = coords[:, :, None] - coords[:, None, :]  # 2, N, N
    return (rel[0] + ws - 1) * (2 * ws - 1) + (rel[1] + ws - 1)


def _row_chunks(n_rows: int, row_width: int) -> Iterator[slice]:
    step = max(_MIN_CHUNK_ROWS, _CHUNK_ELEMENTS // max(1, row_width))
    for start in range(0, n_rows, step):
        yield slice(start, min(n_rows, start + step))


# ----------------------------------------------------------------------------------------------
# Modules


class PatchEmbed(nn.Module):
    """Non-overlapping ``patch_size`` patches -> tokens (conv + optional LayerNorm)."""

    def __init__(self, patch_size: int = 4, in_chans: int = 3, embed_dim: int = 96, norm: bool = True) -> None:
        super().__init__()
        self.patch_size = patch_size
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size)
        self.norm = nn.LayerNorm(embed_dim) if norm else None

    def forward(self, x: Tensor) -> tuple[Tensor, int, int]:
        """``(B, 3, H, W)`` image -> ``(B, Hp*Wp, C)`` tokens and the grid size; pads bottom/right."""
        h, w = x.shape[-2:]
        p = self.patch_size
        if h % p or w % p:
            x = F.pad(x, (0, (p - w % p) % p, 0, (p - h % p) % p))
        x = self.proj(x)
        gh, gw = x.shape[-2:]
        x = x.flatten(2).transpose(1, 2)
        if self.norm is not None:
            x = self.norm(x)
        return x, gh, gw


class SwinMLP(nn.Module):
    """The Swin block MLP: ``fc1 -> GELU -> dropout -> fc2 -> dropout`` (official names)."""

    def __init__(self, dim: int, hidden: int, drop: float = 0.0) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)
        self.drop = nn.Dropout(drop)

    def forward(self, x: Tensor) -> Tensor:
        return self.drop(self.fc2(self.drop(self.act(self.fc1(x)))))


class WindowAttention(nn.Module):
    """Multi-head self-attention inside windows, with a learned relative position bias.

    Parameters (official names): ``relative_position_bias_table`` ``((2ws-1)^2, heads)``, ``qkv``,
    ``proj``. ``relative_position_index`` is a non-persistent buffer.

    ``fused=False`` (default) evaluates the scores with the official sequence of float operations
    (``(q * scale) @ k^T + bias (+ mask)``, softmax, ``@ v``), which reproduces the official outputs bit
    for bit on the same machine. ``fused=True`` uses ``scaled_dot_product_attention`` with the bias
    (plus region mask) as additive mask: about 1.3-1.6x faster attention on CPU and no stored
    attention matrices in training, but float rounding differs (~1e-6 on the features).
    """

    def __init__(
        self,
        dim: int,
        window_size: int,
        num_heads: int,
        qkv_bias: bool = True,
        qk_scale: float | None = None,
        attn_drop: float = 0.0,
        proj_drop: float = 0.0,
        fused: bool = False,
    ) -> None:
        super().__init__()
        self.dim = dim
        self.fused = fused
        self.window_size = window_size
        self.num_heads = num_heads
        self.scale = qk_scale or (dim // num_heads) ** -0.5
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * window_size - 1) ** 2, num_heads))
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)
        self.register_buffer("relative_position_index", relative_position_index(window_size), persistent=False)
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.attn_drop = attn_drop
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)

    def relative_position_bias(self) -> Tensor:
        """``(heads, N, N)`` bias added to the attention scores of every window."""
        n = self.window_size**2
        bias = self.relative_position_bias_table[self.relative_position_index.view(-1)]
        return bias.view(n, n, self.num_heads).permute(2, 0, 1).contiguous()

    def _padding_row(self, like: Tensor) -> Tensor:
        # The official code zero-pads *before* qkv, so a padding token's q/k/v is exactly the bias.
        if self.qkv.bias is not None:
            return self.qkv.bias.to(like.dtype).unsqueeze(0)
        return like.new_zeros(1, 3 * self.dim)

    def _attend(self, rows: Tensor, bias: Tensor, region: Tensor | None) -> Tensor:
        """Attention of ``n`` whole windows given their qkv rows ``(n*N, 3C)``; returns ``(n*N, C)``.

        ``bias`` is the ``(heads, N, N)`` relative position bias, ``region`` the ``(n, N, N)`` 0/-100
        shifted-window mask of these windows or ``None``.
        """
        n_tok = self.window_size**2
        heads = self.num_heads
        qkv = rows.view(-1, n_tok, 3, heads, self.dim // heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        drop = self.attn_drop if self.training else 0.0
        if self.fused:
            mask = bias.unsqueeze(0) if region is None else bias.unsqueeze(0) + region.to(bias.dtype).unsqueeze(1)
            mask = mask.to(q.dtype)  # e.g. half-precision activations under autocast
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=drop, scale=self.scale)
        else:  # the official sequence of float operations
            attn = (q * self.scale) @ k.transpose(-2, -1)
            attn = attn + bias.unsqueeze(0)
            if region is not None:
                attn = attn + region.to(attn.dtype).unsqueeze(1)
            attn = torch.softmax(attn, dim=-1)
            if drop:
                attn = F.dropout(attn, drop)
            out = attn @ v
        return out.transpose(1, 2).reshape(-1, self.dim)

    @staticmethod
    def _region(layout: WindowLayout, start: int, stop: int) -> Tensor | None:
        """The region masks of windows ``[start, stop)`` (all on the same side of ``num_plain``)."""
        if start < layout.num_plain:
            return None
        assert layout.region_mask is not None
        return layout.region_mask[start - layout.num_plain : stop - layout.num_plain]

    def forward(self, x: Tensor, layout: WindowLayout) -> Tensor:
        """Window attention of normalised tokens ``x`` ``(B, L, C)``; returns ``(B, L, C)`` (after ``proj``)."""
        b, n, c = x.shape
        qkv = torch.cat([self.qkv(x).reshape(b * n, 3 * c), self._padding_row(x)])
        rows = qkv.index_select(0, layout.gather)
        bias = self.relative_position_bias()
        n_tok = self.window_size**2
        split = layout.num_plain * n_tok
        parts = []
        if layout.num_plain:
            parts.append(self._attend(rows[:split], bias, None))
        if layout.num_plain < layout.num_windows:
            parts.append(self._attend(rows[split:], bias, self._region(layout, layout.num_plain, layout.num_windows)))
        out = parts[0] if len(parts) == 1 else torch.cat(parts)
        out = out.index_select(0, layout.scatter)
        return self.proj_drop(self.proj(out)).view(b, n, c)

    @torch.no_grad()
    def residual_inference(self, x: Tensor, normed: Tensor, layout: WindowLayout) -> Tensor:
        """Inference form of ``x + forward(normed)``: the same arithmetic, done in cache-sized chunks.

        ``x`` and ``normed`` are contiguous ``(B*L, C)``; returns a new ``(B*L, C)`` tensor.
        """
        total, c = normed.shape
        n_tok = self.window_size**2
        weight, qkv_bias = self.qkv.weight, self.qkv.bias
        qkv = normed.new_empty(total + 1, 3 * c)
        for rs in _row_chunks(total, 3 * c):
            if qkv_bias is None:
                torch.mm(normed[rs], weight.t(), out=qkv[rs])
            else:
                torch.addmm(qkv_bias, normed[rs], weight.t(), out=qkv[rs])
        qkv[total] = self._padding_row(qkv)[0]

        bias = self.relative_position_bias()
        windows = normed.new_empty(layout.num_windows * n_tok, c)
        per_chunk = max(1, _CHUNK_ELEMENTS // (n_tok * 3 * c))
        for group_start, group_stop in ((0, layout.num_plain), (layout.num_plain, layout.num_windows)):
            for w0 in range(group_start, group_stop, per_chunk):
                w1 = min(group_stop, w0 + per_chunk)
                rows = qkv.index_select(0, layout.gather[w0 * n_tok : w1 * n_tok])
                windows[w0 * n_tok : w1 * n_tok] = self._attend(rows, bias, self._region(layout, w0, w1))
        del qkv
        out = torch.empty_like(x)
        for rs in _row_chunks(total, 4 * c):
            torch.add(x[rs], self.proj(windows.index_select(0, layout.scatter[rs])), out=out[rs])
        return out


class SwinBlock(nn.Module):
    """One Swin Transformer block: (shifted-)window attention and MLP, each pre-norm and residual."""

    def __init__(
        self,
        dim: int,
        num_heads: int,
        window_size: int = 7,
        shift_size: int = 0,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        qk_scale: float | None = None,
        drop: float = 0.0,
        attn_drop: float = 0.0,
        drop_path: float = 0.0,
        fused_attention: bool = False,
    ) -> None:
        super().__init__()
        if not 0 <= shift_size < window_size:
            raise ValueError("shift_size must be in [0, window_size)")
        self.window_size = window_size
        self.shift_size = shift_size
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, window_size, num_heads, qkv_bias, qk_scale, attn_drop, drop, fused_attention)
        self.drop_path = DropPath(drop_path)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = SwinMLP(dim, int(dim * mlp_ratio), drop)

    def forward(self, x: Tensor, layout: WindowLayout) -> Tensor:
        """Tokens ``(B, H*W, C)`` -> tokens; ``layout`` must match this block's window/shift."""
        if not self.training and not torch.is_grad_enabled() and not torch.is_autocast_enabled(x.device.type):
            return self._forward_inference(x, layout)
        x = x + self.drop_path(self.attn(self.norm1(x), layout))
        return x + self.drop_path(self.mlp(self.norm2(x)))

    @torch.no_grad()
    def _forward_inference(self, x: Tensor, layout: WindowLayout) -> Tensor:
        b, n, c = x.shape
        x = x.reshape(b * n, c)
        tokens = self.attn.residual_inference(x, self.norm1(x), layout)  # a new tensor, updated in place below
        hidden = self.mlp.fc1.out_features
        for rs in _row_chunks(b * n, hidden):
            tokens[rs] += self.mlp(self.norm2(tokens[rs]))
        return tokens.view(b, n, c)


class PatchMerging(nn.Module):
    """2x2 neighbouring tokens -> one token of twice the channels (LayerNorm(4C) + Linear(4C, 2C))."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)
        self.norm = nn.LayerNorm(4 * dim)

    def forward(self, x: Tensor, height: int, width: int) -> Tensor:
        b, _, c = x.shape
        x = x.view(b, height, width, c)
        if height % 2 or width % 2:
            x = F.pad(x, (0, 0, 0, width % 2, 0, height % 2))
        x = torch.cat([x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]], dim=-1)
        return self.reduction(self.norm(x.view(b, -1, 4 * c)))


class SwinStage(nn.Module):
    """``depth`` Swin blocks (odd ones with shifted windows) and an optional patch merging."""

    def __init__(
        self,
        dim: int,
        depth: int,
        num_heads: int,
        window_size: int,
        mlp_ratio: float,
        qkv_bias: bool,
        qk_scale: float | None,
        drop: float,
        attn_drop: float,
        drop_path: Sequence[float],
        downsample: bool,
        use_checkpoint: bool = False,
        fused_attention: bool = False,
    ) -> None:
        super().__init__()
        self.window_size = window_size
        self.shift_size = window_size // 2
        self.use_checkpoint = use_checkpoint
        self.blocks = nn.ModuleList(
            SwinBlock(
                dim,
                num_heads,
                window_size,
                0 if i % 2 == 0 else window_size // 2,
                mlp_ratio,
                qkv_bias,
                qk_scale,
                drop,
                attn_drop,
                drop_path[i],
                fused_attention,
            )
            for i in range(depth)
        )
        self.downsample = PatchMerging(dim) if downsample else None

    def forward(self, x: Tensor, height: int, width: int) -> Tensor:
        """Run the blocks on ``(B, H*W, C)`` tokens (not the patch merging)."""
        layouts = {}
        for block in self.blocks:
            shift = block.shift_size
            if shift not in layouts:
                layouts[shift] = window_layout(height, width, self.window_size, shift, x.shape[0], x.device)
            if self.use_checkpoint and self.training and torch.is_grad_enabled():
                x = torch.utils.checkpoint.checkpoint(block, x, layouts[shift], use_reentrant=False)
            else:
                x = block(x, layouts[shift])
        return x


class SwinTransformer(nn.Module):
    """The Swin backbone; ``forward(images)`` returns ``{"res2": ..., "res5": ...}`` (those in ``out_features``).

    ``images`` are normalised ``(B, 3, H, W)`` float tensors of any size (padded internally to the
    patch size; stage maps are ``ceil`` of the strides, as in the official code).
    """

    def __init__(self, config: SwinConfig | None = None) -> None:
        super().__init__()
        cfg = config or SwinConfig()
        self.config = cfg
        self.num_features = list(cfg.num_features)
        self.out_features = tuple(cfg.out_features)
        self.patch_embed = PatchEmbed(cfg.patch_size, cfg.in_chans, cfg.embed_dim, cfg.patch_norm)
        if cfg.ape:
            res = cfg.pretrain_img_size // cfg.patch_size
            self.absolute_pos_embed = nn.Parameter(torch.zeros(1, cfg.embed_dim, res, res))
            nn.init.trunc_normal_(self.absolute_pos_embed, std=0.02)
        self.pos_drop = nn.Dropout(cfg.drop_rate)
        rates = torch.linspace(0, cfg.drop_path_rate, sum(cfg.depths), device="cpu").tolist()
        self.layers = nn.ModuleList()
        for i, depth in enumerate(cfg.depths):
            start = sum(cfg.depths[:i])
            self.layers.append(
                SwinStage(
                    dim=self.num_features[i],
                    depth=depth,
                    num_heads=cfg.num_heads[i],
                    window_size=cfg.window_size,
                    mlp_ratio=cfg.mlp_ratio,
                    qkv_bias=cfg.qkv_bias,
                    qk_scale=cfg.qk_scale,
                    drop=cfg.drop_rate,
                    attn_drop=cfg.attn_drop_rate,
                    drop_path=rates[start : start + depth],
                    downsample=i < len(cfg.depths) - 1,
                    use_checkpoint=cfg.use_checkpoint,
                    fused_attention=cfg.fused_attention,
                )
            )
        for i, channels in enumerate(self.num_features):
            self.add_module(f"norm{i}", nn.LayerNorm(channels))

    @property
    def out_channels(self) -> dict[str, int]:
        """Channels of each output feature."""
        return {FEATURE_NAMES[i]: c for i, c in enumerate(self.num_features) if FEATURE_NAMES[i] in self.out_features}

    @property
    def out_strides(self) -> dict[str, int]:
        """Stride (in input pixels) of each output feature."""
        p = self.config.patch_size
        return {FEATURE_NAMES[i]: p * 2**i for i in range(len(self.num_features)) if FEATURE_NAMES[i] in self.out_features}

    @property
    def size_divisibility(self) -> int:
        return 32

    def forward(self, images: Tensor) -> dict[str, Tensor]:
        if images.dim() != 4:
            raise ValueError(f"SwinTransformer takes a (B, C, H, W) tensor, got shape {tuple(images.shape)}")
        x, height, width = self.patch_embed(images)
        if self.config.ape:
            pe = F.interpolate(self.absolute_pos_embed, size=(height, width), mode="bicubic")
            x = x + pe.flatten(2).transpose(1, 2)
        x = self.pos_drop(x)
        wanted = [i for i, name in enumerate(FEATURE_NAMES[: len(self.layers)]) if name in self.out_features]
        last = max(wanted) if wanted else -1
        outs: dict[str, Tensor] = {}
        for i, stage in enumerate(self.layers):
            if i > last:
                break
            x = stage(x, height, width)
            if i in wanted:
                y = getattr(self, f"norm{i}")(x)
                outs[FEATURE_NAMES[i]] = y.view(-1, height, width, self.num_features[i]).permute(0, 3, 1, 2).contiguous()
            if stage.downsample is not None and i < last:
                x = stage.downsample(x, height, width)
                height, width = (height + 1) // 2, (width + 1) // 2
        return outs

    # -- official checkpoints ------------------------------------------------------------------

    @staticmethod
    def official_key_rules(official_prefix: str = "backbone.", prefix: str = "backbone.") -> list[tuple[str, str]]:
        """``(regex, replacement)`` rules for a :class:`~salrank.checkpoint.KeyMap`: official names are kept."""
        keep = r"((?:patch_embed|layers|norm[0-9]+)\..+|absolute_pos_embed)"
        return [(re.escape(official_prefix) + keep, prefix.replace("\\", r"\\") + r"\1")]

    @staticmethod
    def official_dropped_keys(official_prefix: str = "backbone.") -> list[str]:
        """Patterns of official keys salrank recomputes instead of loading.

        ``relative_position_index`` (a constant of the window size) and ``attn_mask`` (a precomputed
        shifted-window mask present in Microsoft's classification checkpoints) are both computed here.
        """
        p = re.escape(official_prefix)
        return [
            p + r"layers\.[0-9]+\.blocks\.[0-9]+\.attn\.relative_position_index",
            p + r"layers\.[0-9]+\.blocks\.[0-9]+\.attn_mask",
        ]
