"""Salient instance segmentation (SIS): the transformer decoder that proposes PoseSOR's objects.

``num_queries`` learned queries (content initialised to zeros, positional encoding to ``randn``) run
through ``num_blocks`` :class:`~salrank.modeling.posesor.common.QueryBlock` s. Block ``k`` cross-attends to
the neck feature ``key_features[k % 3]`` (``res5, res4, res3``, coarse to fine) plus a learned level
embedding, with the learnable APE as key positions; then the queries self-attend and pass an FFN. There
is no masked attention, no box head and no ROI read-out (those belong to SeqRank's decoder).

The head (:class:`SISHead`) is applied to the initial queries and after every block: ``LayerNorm`` ->
objectness logit (``Linear(C, 1)``) and a 3-layer mask embedding dotted with the ``res2`` feature (mask
logits at 1/4 resolution). Only the last prediction is used at inference, and only its objectness (the
query selection, :mod:`.query_selection`); the masks PoseSOR outputs come from PAI's refined-mask head.

Official quirk, not reproduced: the official head also computes an attention mask from every prediction
(bilinear resize + sigmoid + threshold) that nothing uses; it has no effect on any output.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from salrank.modeling.layers import MLP
from salrank.modeling.posesor.common import QueryBlock, escape

__all__ = ["SISDecoder", "SISHead", "SISOutput", "SISPrediction"]


@dataclass
class SISPrediction:
    """One application of the SIS head."""

    scores: Tensor
    """``(B, nq, 1)`` objectness logits."""
    masks: Tensor | None
    """``(B, nq, H/4, W/4)`` mask logits (``None`` when not computed)."""


@dataclass
class SISOutput:
    """What the SIS decoder returns: the final queries and the head's predictions per stage."""

    q: Tensor
    """``(B, nq, C)`` decoded queries."""
    qpe: Tensor
    """``(B, nq, C)`` their positional encodings (the learned query PE, unchanged by the decoder)."""
    predictions: list[SISPrediction]
    """Head outputs for the initial queries and after each block (the last one is the final prediction).
    At inference only the last may be computed (then this list has one entry)."""

    @property
    def out(self) -> SISPrediction:
        """The final prediction (official ``out``)."""
        return self.predictions[-1]

    @property
    def aux(self) -> list[SISPrediction]:
        """The earlier predictions (official ``aux``; empty when only the last was computed)."""
        return self.predictions[:-1]


class SISHead(nn.Module):
    """``LayerNorm`` -> objectness logit and mask logits (mask embedding . mask feature)."""

    def __init__(self, embed_dim: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(embed_dim)
        self.objectness = nn.Linear(embed_dim, 1)
        self.mask_embed = MLP(embed_dim, embed_dim, embed_dim, 3)
        for p in self.parameters():  # official Head._reset_parameters
            if p.dim() > 1:
                nn.init.xavier_uniform_(p)

    def forward(self, q: Tensor, mask_feature: Tensor, masks: bool = True) -> SISPrediction:
        """``q``: ``(B, nq, C)``; ``mask_feature``: ``(B, C, H, W)``."""
        q = self.norm(q)
        scores = self.objectness(q)
        mask_logits = None
        if masks:
            emb = self.mask_embed(q)
            b, c, h, w = mask_feature.shape
            mask_logits = torch.bmm(emb, mask_feature.reshape(b, c, h * w)).view(b, -1, h, w)
        return SISPrediction(scores=scores, masks=mask_logits)


class SISDecoder(nn.Module):
    """The SIS transformer decoder (official ``TransformerDecoder``).

    Args:
        num_queries, embed_dim, num_heads, hidden_dim, dropout_attn, dropout_ffn: ``MODEL.COMMON``.
        num_blocks, key_features, mask_key: ``MODEL.SIS_HEAD``.
    """

    def __init__(
        self,
        num_queries: int = 100,
        embed_dim: int = 256,
        num_heads: int = 8,
        hidden_dim: int = 2048,
        num_blocks: int = 6,
        key_features: tuple[str, ...] = ("res5", "res4", "res3"),
        mask_key: str = "res2",
        dropout_attn: float = 0.0,
        dropout_ffn: float = 0.0,
    ) -> None:
        super().__init__()
        self.query = nn.Parameter(torch.zeros(1, num_queries, embed_dim))
        self.query_pe = nn.Parameter(torch.randn(1, num_queries, embed_dim))
        self.level_embed = nn.Embedding(len(key_features), embed_dim)
        self.blocks = nn.ModuleList(
            QueryBlock(embed_dim, num_heads, hidden_dim, dropout_attn, dropout_ffn) for _ in range(num_blocks)
        )
        self.head = SISHead(embed_dim)
        self.key_features = tuple(key_features)
        self.mask_key = mask_key

    def forward(
        self, feats: dict[str, Tensor], feats_pe: dict[str, Tensor], *, all_predictions: bool = True, masks: bool = True
    ) -> SISOutput:
        """Decode the queries over the neck features.

        Args:
            feats, feats_pe: ``{"res2": (B, C, H/4, W/4), ...}`` neck features and their APE.
            all_predictions: apply the head to the initial queries and after every block (training, the
                official ``aux``); ``False`` applies it once, after the last block (inference).
            masks: compute mask logits (inference needs only the objectness).
        """
        mask_feature = feats[self.mask_key]
        batch = mask_feature.shape[0]
        q = self.query.expand(batch, -1, -1)
        qpe = self.query_pe.expand(batch, -1, -1)
        predictions = [self.head(q, mask_feature, masks)] if all_predictions else []
        n_keys = len(self.key_features)
        for k, block in enumerate(self.blocks):
            name = self.key_features[k % n_keys]
            feat = feats[name] + self.level_embed.weight[k % n_keys].view(1, -1, 1, 1)
            tokens = feat.flatten(2).transpose(1, 2)
            tokens_pe = feats_pe[name].flatten(2).transpose(1, 2)
            q = block(q, qpe, tokens, tokens_pe)
            if all_predictions:
                predictions.append(self.head(q, mask_feature, masks))
        if not all_predictions:
            predictions.append(self.head(q, mask_feature, masks))
        return SISOutput(q=q, qpe=qpe, predictions=predictions)

    @staticmethod
    def official_key_rules(official_prefix: str = "instance_seg.", prefix: str = "sis_decoder.") -> list[tuple[str, str]]:
        """KeyMap rules for the official ``instance_seg`` (``TransformerDecoder``) keys."""
        o, p = escape(official_prefix), prefix
        rules = [
            (o + r"q", p + "query"),
            (o + r"qpe", p + "query_pe"),
            (o + r"level_embed\.weight", p + "level_embed.weight"),
            (o + r"head\.decoder_norm\.(weight|bias)", p + r"head.norm.\1"),
            (o + r"head\.score_head\.(weight|bias)", p + r"head.objectness.\1"),
            (o + r"head\.mask_embed\.layers\.([0-9]+)\.(weight|bias)", p + r"head.mask_embed.layers.\1.\2"),
        ]
        rules += QueryBlock.official_key_rules(o + r"lookByMultiQ_layers\.([0-9]+)\.", p + r"blocks.\1.")
        return rules
