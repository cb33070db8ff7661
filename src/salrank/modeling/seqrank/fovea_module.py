"""The Fovea Module (FOM): SeqRank's instance decoder with the "multi-eye" RoI read-out.

Official code: ``seqrank/modules/fom.py`` (``FoveaModule``, ``LookByMultiQ``, ``ROISample``, ``Head``).

``num_queries`` learned object queries (content initialised to zero, positional part ``randn``) are
refined by ``num_blocks`` blocks. Block ``k`` works on one level of the neck, ``key_features[k % 3]``
(``res5, res4, res3``, coarse to fine), to which a learned level embedding is added:

1. every query's box, predicted by the previous head, is read out of that level with RoIAlign on a
   ``grid_sizes[k % 3]`` grid (1x1, 2x2, 3x3) plus a learned grid embedding ("multi-eye");
2. each grid cell becomes a sub-query, ``LinearNorm(q) + LinearNorm(cell)``, carrying its query's PE;
3. the sub-queries cross-attend to the whole level (keys = feature + PE, values = feature);
4. each query's sub-queries are averaged and projected back to one query;
5. self-attention among the queries, then a feed-forward block (post-norm, residual everywhere).

The head (applied to the initial queries and after every block) predicts an objectness logit, a
mask logit map at 1/4 resolution (``mask_embed(q) . res2``) and a box, four logits read after a sigmoid
as ``(cx, cy, h, w)`` in ``[0, 1]`` — height before width, the official order.

Official quirk kept: the official ``Head`` also builds a Mask2Former-style attention mask from every
mask prediction (an interpolation, a sigmoid and a per-head copy of the whole ``nq x H/4 x W/4`` map),
but no attention layer ever receives it (and it is at the resolution of ``res2``, which no attention
attends to). It has no effect on any output, so it is not computed here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from salrank.modeling.layers import MLP, Attention, FeedForward
from salrank.modeling.seqrank.roi_readout import roi_align_boxes
from salrank.ops.boxes import box_cxcyhw_to_xyxy

__all__ = [
    "FoveaBlock",
    "FoveaHead",
    "FoveaModule",
    "FoveaOutput",
    "InstancePrediction",
    "LinearNorm",
    "MultiEyeSampler",
    "init_linear_and_norm_",
]


def init_linear_and_norm_(module: nn.Module) -> None:
    """The official ``init_weights_``: xavier-uniform Linear/Conv weights, zero biases, LayerNorm (1, 0)."""
    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


@dataclass
class InstancePrediction:
    """One head output: logits for every query (``B`` images, ``nq`` queries)."""

    boxes: Tensor
    """``(B, nq, 4)`` box logits; ``sigmoid`` gives ``(cx, cy, h, w)`` in ``[0, 1]`` of the input."""
    objectness: Tensor | None = None
    """``(B, nq, 1)`` objectness logits."""
    masks: Tensor | None = None
    """``(B, nq, H/4, W/4)`` mask logits (``None`` where only boxes were needed)."""


@dataclass
class FoveaOutput:
    """What the Fovea Module returns."""

    queries: Tensor
    """``(B, nq, C)`` refined object queries (the SRM's input)."""
    query_pos: Tensor
    """``(B, nq, C)`` their positional embedding."""
    predictions: list[InstancePrediction]
    """Head outputs for the initial queries and after every block; the last one is the final output."""

    @property
    def final(self) -> InstancePrediction:
        return self.predictions[-1]

    @property
    def aux(self) -> list[InstancePrediction]:
        """The intermediate predictions (official ``aux``: initial queries and all blocks but the last)."""
        return self.predictions[:-1]


class LinearNorm(nn.Module):
    """``Linear`` then ``LayerNorm`` (the official ``nn.Sequential(nn.Linear, nn.LayerNorm)``)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.linear = nn.Linear(dim, dim)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.norm(self.linear(x))


class FoveaHead(nn.Module):
    """The prediction head shared by every FOM stage (official ``Head``).

    ``norm`` (official ``decoder_norm``) -> objectness ``Linear(C, 1)`` (``score_head``), mask embedding
    ``MLP(C, C, C, 3)`` dotted with the mask feature (``mask_embed``), box ``MLP(C, C, 4, 3)``
    (``bbox_head``). Weights of dimension > 1 are xavier-initialised, as in the official code.
    """

    def __init__(self, embed_dim: int = 256) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(embed_dim)
        self.objectness = nn.Linear(embed_dim, 1)
        self.mask_embed = MLP(embed_dim, embed_dim, embed_dim, 3)
        self.box_head = MLP(embed_dim, embed_dim, 4, 3)
        for p in self.parameters():
            if p.dim() > 1:
                nn.init.xavier_uniform_(p)

    def forward(self, queries: Tensor, mask_features: Tensor | None) -> InstancePrediction:
        """Predictions for ``queries`` (B, nq, C); masks only when ``mask_features`` (B, C, H, W) is given."""
        q = self.norm(queries)
        masks = None
        if mask_features is not None:
            masks = torch.einsum("bqc,bchw->bqhw", self.mask_embed(q), mask_features)
        return InstancePrediction(boxes=self.box_head(q), objectness=self.objectness(q), masks=masks)

    def boxes(self, queries: Tensor) -> Tensor:
        """Only the box logits (what the next FOM block needs at inference)."""
        return self.box_head(self.norm(queries))


class MultiEyeSampler(nn.Module):
    """The multi-eye read-out of one level (official ``ROISample``).

    Each query's predicted box (``(cx, cy, h, w)`` in ``[0, 1]``, converted to corners and clamped to
    the image) is scaled to the feature map and read with RoIAlign (torchvision semantics,
    ``aligned=False``, adaptive sampling) on a ``grid`` of cells; a learned ``grid_embed``
    ``(C, rows, cols)`` (official ``grid_embedding``, ``randn`` init) is added.
    """

    def __init__(self, embed_dim: int = 256, grid: Sequence[int] = (1, 1)) -> None:
        super().__init__()
        self.grid = (int(grid[0]), int(grid[1]))
        self.grid_embed = nn.Parameter(torch.randn(embed_dim, *self.grid))

    def forward(self, feature: Tensor, boxes: Tensor, batched: bool = True) -> Tensor:
        """``feature`` (B, C, H, W), ``boxes`` (B, nq, 4) -> cells ``(B, nq, C, rows, cols)``.

        ``batched`` selects the vectorised RoIAlign (one pass for all boxes) instead of the shared
        per-box :func:`salrank.ops.roi_align`; both give torchvision's numbers up to float rounding.
        """
        b, _, h, w = feature.shape
        nq = boxes.shape[1]
        corners = box_cxcyhw_to_xyxy(boxes.detach()).clamp(min=0.0, max=1.0)
        corners = corners * torch.tensor([w, h, w, h], dtype=corners.dtype, device=corners.device)
        cells = roi_align_boxes(feature, corners, self.grid, batched=batched)  # (B*nq, C, rows, cols)
        cells = cells + self.grid_embed[None]
        return cells.unflatten(0, (b, nq))


class FoveaBlock(nn.Module):
    """One FOM block (official ``LookByMultiQ``); see the module docstring, steps 2-5.

    Official names -> salrank: ``linear1`` -> ``query_proj``, ``linear2`` -> ``cell_proj``,
    ``linear3`` -> ``merge_proj``, ``cross_attn``/``norm1`` -> ``cross_attn``/``cross_norm``,
    ``self_attn``/``norm2`` -> ``self_attn``/``self_norm``, ``ffn``/``norm3`` -> ``ffn``/``ffn_norm``.
    """

    def __init__(
        self, embed_dim: int = 256, num_heads: int = 8, hidden_dim: int = 2048, dropout_attn: float = 0.0, dropout_ffn: float = 0.0
    ) -> None:
        super().__init__()
        self.query_proj = LinearNorm(embed_dim)
        self.cell_proj = LinearNorm(embed_dim)
        self.merge_proj = LinearNorm(embed_dim)
        self.cross_attn = Attention(embed_dim, num_heads)
        self.cross_drop = nn.Dropout(dropout_attn)
        self.cross_norm = nn.LayerNorm(embed_dim)
        self.self_attn = Attention(embed_dim, num_heads)
        self.self_drop = nn.Dropout(dropout_attn)
        self.self_norm = nn.LayerNorm(embed_dim)
        self.ffn = FeedForward(embed_dim, hidden_dim)
        self.ffn_drop = nn.Dropout(dropout_ffn)
        self.ffn_norm = nn.LayerNorm(embed_dim)
        init_linear_and_norm_(self)

    def forward(self, q: Tensor, qpe: Tensor, tokens: Tensor, keys: Tensor, cells: Tensor) -> Tensor:
        """Refine queries ``q`` (B, nq, C) with PE ``qpe``.

        ``tokens`` (B, HW, C) is the level's feature (plus level embedding), ``keys`` the same plus its
        PE, ``cells`` (B, nq, C, rows, cols) the multi-eye read-out of each query's box.
        """
        b, nq, c = q.shape
        n_cells = cells.shape[-2] * cells.shape[-1]
        sub = self.query_proj(q).unsqueeze(2) + self.cell_proj(cells.flatten(3).transpose(-1, -2))  # B, nq, cells, C
        sub = sub.flatten(1, 2)
        sub_pos = qpe.repeat_interleave(n_cells, dim=1)
        sub = self.cross_norm(sub + self.cross_drop(self.cross_attn(sub + sub_pos, keys, tokens)))
        q = self.merge_proj(sub.view(b, nq, n_cells, c).mean(dim=2))
        q = self.self_norm(q + self.self_drop(self.self_attn(q + qpe, q + qpe, q)))
        return self.ffn_norm(q + self.ffn_drop(self.ffn(q)))


class FoveaModule(nn.Module):
    """SeqRank's instance decoder (official ``FoveaModule``); see the module docstring.

    Official names -> salrank: ``q`` -> ``query_embed``, ``qpe`` -> ``query_pos``, ``roi_layers`` ->
    ``samplers``, ``lookByMultiQ_layers`` -> ``blocks``; ``level_embed`` and ``head`` keep their names.
    """

    def __init__(
        self,
        num_queries: int = 100,
        embed_dim: int = 256,
        num_heads: int = 8,
        hidden_dim: int = 2048,
        dropout_attn: float = 0.0,
        dropout_ffn: float = 0.0,
        num_blocks: int = 6,
        key_features: Sequence[str] = ("res5", "res4", "res3"),
        mask_key: str = "res2",
        grid_sizes: Sequence[Sequence[int]] = ((1, 1), (2, 2), (3, 3)),
    ) -> None:
        super().__init__()
        if len(key_features) != len(grid_sizes):
            raise ValueError(f"{len(key_features)} key features but {len(grid_sizes)} grid sizes")
        self.key_features = tuple(key_features)
        self.mask_key = mask_key
        self.num_queries = num_queries
        self.query_embed = nn.Parameter(torch.zeros(1, num_queries, embed_dim))
        self.query_pos = nn.Parameter(torch.randn(1, num_queries, embed_dim))
        self.samplers = nn.ModuleList(MultiEyeSampler(embed_dim, g) for g in grid_sizes)
        self.level_embed = nn.Embedding(len(self.key_features), embed_dim)
        self.blocks = nn.ModuleList(
            FoveaBlock(embed_dim, num_heads, hidden_dim, dropout_attn, dropout_ffn) for _ in range(num_blocks)
        )
        self.head = FoveaHead(embed_dim)
        self.batched_roi_align = True
        """Use the vectorised RoIAlign (set by the model's ``fast_inference``)."""

    @property
    def needed_features(self) -> tuple[str, ...]:
        """Neck levels this module reads (with their PE, except the mask feature)."""
        return (*self.key_features, self.mask_key)

    def forward(self, features: Mapping[str, Tensor], pos: Mapping[str, Tensor], all_masks: bool = True) -> FoveaOutput:
        """Decode the queries from the neck ``features`` (B, C, H, W each) and their ``pos`` (B|1, C, H, W).

        With ``all_masks=False`` the intermediate heads predict only what the next block needs (the
        boxes): the final prediction is unchanged, the intermediate ones lack masks and objectness.
        """
        mask_features = features[self.mask_key]
        b = mask_features.shape[0]
        q = self.query_embed.expand(b, -1, -1)
        qpe = self.query_pos.expand(b, -1, -1)
        n_keys = len(self.key_features)
        last = len(self.blocks)
        predictions = [self._predict(q, mask_features, full=all_masks or last == 0)]
        for idx, block in enumerate(self.blocks):
            level = idx % n_keys
            key = self.key_features[level]
            feature = features[key] + self.level_embed.weight[level].view(1, -1, 1, 1)
            feature_pe = pos[key]
            cells = self.samplers[level](feature, predictions[-1].boxes.sigmoid(), batched=self.batched_roi_align)
            tokens = feature.flatten(2).transpose(1, 2)
            keys = (feature + feature_pe).flatten(2).transpose(1, 2)
            q = block(q, qpe, tokens, keys, cells)
            predictions.append(self._predict(q, mask_features, full=all_masks or idx == last - 1))
        return FoveaOutput(queries=q, query_pos=qpe, predictions=predictions)

    def _predict(self, q: Tensor, mask_features: Tensor, full: bool) -> InstancePrediction:
        if full:
            return self.head(q, mask_features)
        return InstancePrediction(boxes=self.head.boxes(q))


def mask_logits_at(masks: Tensor, size: tuple[int, int]) -> Tensor:
    """Bilinear (``align_corners=False``) upsampling of ``(N, h, w)`` mask logits to ``size`` -> ``(N, H, W)``."""
    return F.interpolate(masks.unsqueeze(0), size=size, mode="bilinear", align_corners=False)[0]
