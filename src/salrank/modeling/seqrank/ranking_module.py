"""The Sequential Ranking Module (SRM): which object does attention shift to next?

Official code: ``seqrank/modules/srm.py`` (``SequentialRankingModule``, ``CenterShiftBlock``).

Input: the FOM's object queries ``q`` with their PE ``qpe``, the tokens ``z`` of one neck level
(``res5``) with their PE ``zpe``, and the *visiting history*: for every query, ``0`` if it has not been
ranked yet, ``k`` if it was ranked at step ``k``. From the history come two indicators:

* ``gaze`` — the query fixated now (the one visited last, i.e. with the largest step number);
* ``prev`` — every visited query (the fixated one included).

Each of the ``num_blocks`` blocks (6 in the original models, 2 in the corrected ones):

1. keeps ``q0 = input_proj(q)`` aside;
2. marks the queries: ``q + prev * prev_embed + gaze * gaze_embed``;
3. self-attention among the queries, then a feed-forward block;
4. the image tokens cross-attend to the queries (``z`` is updated);
5. **the peripheral step**: the fixated object's embedding (the gazed query plus ``gaze_embed``) is
   concatenated to every image token and an MLP (``2C -> hidden -> C``) updates the tokens: what is seen
   around the fixation depends on what is fixated;
6. the queries cross-attend to the updated tokens, then self-attention and a feed-forward block;
7. the gate (see below), then ``q = output_proj(q0 + q)``.

Every attention/FFN step is residual and followed by a LayerNorm (post-norm). A saliency head
(``Linear-ReLU-Linear``) on the last block's queries gives one logit per query: how likely it is the
object attention shifts to next.

Official quirks, all kept (they define what the released weights compute):

* **the no-op softmax gate**: ``q * softmax(gate(q), dim=-1)`` takes the softmax over an axis of size
  one, so the factor is exactly 1 and the ``gate`` weights have no effect. ``RankingConfig.gate``
  offers ``"softmax"`` (over the queries) and ``"sigmoid"`` for new models; with the default the fast
  path skips the (exactly) no-op multiplication, the reference path computes it.
* **blocks do not pass the image tokens on**: each block starts from the neck's ``z``; the tokens
  updated in steps 4-5 only serve that block's step 6.
* ``gaze_embed`` is added to the fixation embedding even before anything is fixated (step 0).
* the official ``forward`` also takes the predicted boxes and the feature size, and never uses them;
  it predicts a saliency logit after every block and keeps only the last (only the last is computed here).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from salrank.modeling.layers import MLP, Attention, FeedForward
from salrank.modeling.seqrank.fovea_module import init_linear_and_norm_

__all__ = ["PeripheralWeights", "RankingBlock", "RankingContext", "SequentialRankingModule", "visit_indicators"]


def visit_indicators(visits: Tensor) -> tuple[Tensor, Tensor]:
    """``(gaze, prev)`` indicators ``(B, nq, 1)`` of a visiting history ``(B, nq)`` or ``(B, nq, 1)``.

    ``gaze`` marks the query visited last (largest step number), ``prev`` every visited query; both
    are zero before the first step. Computed as the official code does (``> 0.5`` and comparisons with
    the largest step number), so fractional or re-used step numbers behave identically.
    """
    v = visits if visits.dim() == 3 else visits.unsqueeze(-1)
    latest = v[:, :, 0].max(dim=1).values.view(-1, 1, 1)
    visited = v.gt(0.5)
    prev = (visited & v.le(latest)).to(v.dtype if v.is_floating_point() else torch.float32)
    gaze = (visited & v.eq(latest)).to(prev.dtype)
    return gaze, prev


def attend_projected(attn: Attention, q_proj: Tensor, k: Tensor, v: Tensor) -> Tensor:
    """``attn(q, k, v)`` when ``attn.q_proj(q)`` (``q_proj``) was already computed.

    The rest is :class:`~salrank.modeling.layers.Attention`'s arithmetic (fused or explicit).
    """
    def heads(x: Tensor) -> Tensor:
        b, n, c = x.shape
        return x.reshape(b, n, attn.num_heads, c // attn.num_heads).transpose(1, 2)

    qh, kh, vh = heads(q_proj), heads(attn.k_proj(k)), heads(attn.v_proj(v))
    if attn.fused:
        out = F.scaled_dot_product_attention(qh, kh, vh)
    else:
        scores = qh @ kh.transpose(-2, -1) / math.sqrt(qh.shape[-1])
        out = torch.softmax(scores, dim=-1) @ vh
    b, _, n, d = out.shape
    return attn.out_proj(out.transpose(1, 2).reshape(b, n, attn.num_heads * d))


@dataclass
class PeripheralWeights:
    """One block's peripheral MLP, split for inference: the fixation and token halves of the first layer."""

    fixation: Tensor
    """``(hidden, C)``: first-layer weight columns that multiply the fixation embedding."""
    tokens_t: Tensor
    """``(C, hidden)``: transposed first-layer weight columns that multiply the image tokens."""
    bias: Tensor
    out_t: Tensor
    """``(hidden, C)``: transposed second-layer weight."""
    out_bias: Tensor


@dataclass
class RankingContext:
    """Step-invariant inputs of the SRM for one batch, computed once (see :meth:`SequentialRankingModule.prepare`)."""

    q: Tensor
    qpe: Tensor
    z: Tensor
    zpe: Tensor
    z_keys: Tensor
    """``z + zpe``."""
    image_queries: list[Tensor]
    """Per block: ``image_cross_attn.q_proj(z + zpe)`` (the image tokens' attention queries)."""
    q0_first: Tensor
    """``input_proj(q)`` of the first block (its input ``q`` is the same at every step)."""
    peripheral: list[PeripheralWeights]
    """Per block: the split peripheral MLP weights."""

    def select(self, index: Tensor) -> RankingContext:
        """The context of the images at ``index`` (batch rows)."""
        return RankingContext(
            q=self.q[index],
            qpe=self.qpe[index],
            z=self.z[index],
            zpe=self.zpe[index],
            z_keys=self.z_keys[index],
            image_queries=[t[index] for t in self.image_queries],
            q0_first=self.q0_first[index],
            peripheral=self.peripheral,
        )


class RankingBlock(nn.Module):
    """One SRM block (official ``CenterShiftBlock``); see the module docstring, steps 1-7.

    Official names -> salrank: ``before`` -> ``input_proj``, ``self_attn1``/``norm1`` ->
    ``query_attn``/``query_attn_norm``, ``ffn1``/``norm2`` -> ``query_ffn``/``query_ffn_norm``,
    ``cross_attn1``/``norm3`` -> ``image_cross_attn``/``image_cross_norm``, ``mlp``/``norm_mlp`` ->
    ``peripheral``/``peripheral_norm``, ``cross_attn2``/``norm4`` -> ``query_cross_attn``/
    ``query_cross_norm``, ``self_attn2``/``norm5`` -> ``query_attn2``/``query_attn2_norm``,
    ``ffn2``/``norm6`` -> ``query_ffn2``/``query_ffn2_norm``, ``softmax_head`` -> ``gate``,
    ``after`` -> ``output_proj``.
    """

    def __init__(
        self,
        embed_dim: int = 256,
        num_heads: int = 8,
        hidden_dim: int = 2048,
        dropout_attn: float = 0.0,
        dropout_ffn: float = 0.0,
        gate: str = "official",
    ) -> None:
        super().__init__()
        self.gate_mode = gate
        self.input_proj = nn.Linear(embed_dim, embed_dim)
        self.query_attn = Attention(embed_dim, num_heads)
        self.query_attn_drop = nn.Dropout(dropout_attn)
        self.query_attn_norm = nn.LayerNorm(embed_dim)
        self.query_ffn = FeedForward(embed_dim, hidden_dim)
        self.query_ffn_drop = nn.Dropout(dropout_attn)
        self.query_ffn_norm = nn.LayerNorm(embed_dim)
        self.image_cross_attn = Attention(embed_dim, num_heads)
        self.image_cross_drop = nn.Dropout(dropout_attn)
        self.image_cross_norm = nn.LayerNorm(embed_dim)
        self.peripheral = MLP(2 * embed_dim, hidden_dim, embed_dim, 2)
        self.peripheral_drop = nn.Dropout(dropout_ffn)
        self.peripheral_norm = nn.LayerNorm(embed_dim)
        self.query_cross_attn = Attention(embed_dim, num_heads)
        self.query_cross_drop = nn.Dropout(dropout_attn)
        self.query_cross_norm = nn.LayerNorm(embed_dim)
        self.query_attn2 = Attention(embed_dim, num_heads)
        self.query_attn2_drop = nn.Dropout(dropout_attn)
        self.query_attn2_norm = nn.LayerNorm(embed_dim)
        self.query_ffn2 = FeedForward(embed_dim, hidden_dim)
        self.query_ffn2_drop = nn.Dropout(dropout_attn)
        self.query_ffn2_norm = nn.LayerNorm(embed_dim)
        self.gate = nn.Linear(embed_dim, 1)
        self.output_proj = nn.Linear(embed_dim, embed_dim)
        init_linear_and_norm_(self)
        self.fast = True
        """Use the fast arithmetic (split peripheral MLP, skipped no-op gate); set by the model."""

    def peripheral_update(self, z: Tensor, fixation: Tensor, split: PeripheralWeights | None = None) -> Tensor:
        """Step 5's MLP on ``cat([fixation broadcast to every token, z])`` (B, HW, 2C) -> (B, HW, C).

        The fast path splits the first layer's weight into its fixation and token halves, so the
        fixation's share is computed once instead of once per token (same function, float rounding),
        and works in place on the ``(B*HW, hidden)`` activation.
        """
        fc1, fc2 = self.peripheral.layers
        b, n, c = z.shape
        if not self.fast:
            hidden = fc1(torch.cat([fixation.expand(-1, n, -1), z], dim=-1))
            return fc2(F.relu(hidden))
        if split is None:
            split = self.split_peripheral()
        shared = F.linear(fixation, split.fixation, split.bias)  # B, 1, hidden
        if torch.is_grad_enabled():
            hidden = torch.matmul(z, split.tokens_t) + shared
            return fc2(F.relu(hidden))
        hidden = torch.mm(z.reshape(b * n, c), split.tokens_t)
        hidden.view(b, n, -1).add_(shared).relu_()
        return torch.addmm(split.out_bias, hidden, split.out_t).view(b, n, -1)

    def split_peripheral(self) -> PeripheralWeights:
        """The peripheral MLP's weights arranged for :meth:`peripheral_update`'s fast path."""
        fc1, fc2 = self.peripheral.layers
        c = fc1.in_features // 2
        return PeripheralWeights(
            fixation=fc1.weight[:, :c],
            tokens_t=fc1.weight[:, c:].t().contiguous(),
            bias=fc1.bias,
            out_t=fc2.weight.t(),
            out_bias=fc2.bias,
        )

    def apply_gate(self, q: Tensor) -> Tensor:
        """Step 7's gate (the official one multiplies by exactly 1.0; see the module docstring)."""
        if self.gate_mode == "official":
            if self.fast:
                return q
            return q * torch.softmax(self.gate(q), dim=-1)
        if self.gate_mode == "softmax":
            return q * torch.softmax(self.gate(q), dim=1)
        return q * torch.sigmoid(self.gate(q))

    def forward(
        self,
        q: Tensor,
        qpe: Tensor,
        z: Tensor,
        zpe: Tensor,
        gaze: Tensor,
        prev: Tensor,
        gaze_embed: Tensor,
        prev_embed: Tensor,
        *,
        z_keys: Tensor | None = None,
        image_queries: Tensor | None = None,
        q0: Tensor | None = None,
        peripheral: PeripheralWeights | None = None,
    ) -> Tensor:
        """One block. ``q``/``qpe`` (B, nq, C), ``z``/``zpe`` (B, HW, C), ``gaze``/``prev`` (B, nq, 1).

        ``z_keys`` (``z + zpe``), ``image_queries`` (``image_cross_attn.q_proj(z + zpe)``) and ``q0``
        (``input_proj(q)``) and the split ``peripheral`` weights may be passed precomputed (see
        :class:`RankingContext`).
        """
        q0 = self.input_proj(q) if q0 is None else q0
        q = q + prev * prev_embed + gaze * gaze_embed
        q = self.query_attn_norm(q + self.query_attn_drop(self.query_attn(q + qpe, q + qpe, q)))
        q = self.query_ffn_norm(q + self.query_ffn_drop(self.query_ffn(q)))
        qk = q + qpe
        if image_queries is None:
            z_in = z + zpe if z_keys is None else z_keys
            attended = self.image_cross_attn(z_in, qk, q)
        else:
            attended = attend_projected(self.image_cross_attn, image_queries, qk, q)
        z = self.image_cross_norm(z + self.image_cross_drop(attended))
        fixation = (gaze * q).sum(dim=1, keepdim=True) + gaze_embed  # B, 1, C
        z = self.peripheral_norm(z + self.peripheral_drop(self.peripheral_update(z, fixation, peripheral)))
        q = self.query_cross_norm(q + self.query_cross_drop(self.query_cross_attn(qk, z + zpe, z)))
        q = self.query_attn2_norm(q + self.query_attn2_drop(self.query_attn2(q + qpe, q + qpe, q)))
        q = self.query_ffn2_norm(q + self.query_ffn2_drop(self.query_ffn2(q)))
        return self.output_proj(q0 + self.apply_gate(q))


class SequentialRankingModule(nn.Module):
    """The SRM (official ``SequentialRankingModule``): saliency logits for a visiting history.

    Official names -> salrank: ``prev_emb`` -> ``prev_embed``, ``gaze_emb`` -> ``gaze_embed``
    (``randn`` init), ``blocks`` -> ``blocks``, ``head`` -> ``saliency_head``.

    * :meth:`forward` runs it from scratch (training: the teacher-forced loss calls it once per step);
    * :meth:`prepare` + :meth:`step` run it in the inference loop, computing what does not depend on
      the history once per image.
    """

    def __init__(
        self,
        embed_dim: int = 256,
        num_heads: int = 8,
        hidden_dim: int = 2048,
        dropout_attn: float = 0.0,
        dropout_ffn: float = 0.0,
        num_blocks: int = 2,
        gate: str = "official",
    ) -> None:
        super().__init__()
        self.prev_embed = nn.Parameter(torch.randn(embed_dim))
        self.gaze_embed = nn.Parameter(torch.randn(embed_dim))
        self.blocks = nn.ModuleList(
            RankingBlock(embed_dim, num_heads, hidden_dim, dropout_attn, dropout_ffn, gate) for _ in range(num_blocks)
        )
        self.saliency_head = MLP(embed_dim, embed_dim, 1, 2)

    def forward(self, q: Tensor, qpe: Tensor, z: Tensor, zpe: Tensor, visits: Tensor) -> Tensor:
        """Saliency logits ``(B, nq)`` for queries ``q``/``qpe`` (B, nq, C), tokens ``z``/``zpe`` (B, HW, C)
        and the visiting history ``visits`` (B, nq) or (B, nq, 1) (0 = not visited, k = visited at step k)."""
        gaze, prev = visit_indicators(visits)
        gaze, prev = gaze.to(q.dtype), prev.to(q.dtype)
        gaze_embed = self.gaze_embed.view(1, 1, -1)
        prev_embed = self.prev_embed.view(1, 1, -1)
        x = q
        for block in self.blocks:  # every block starts from the neck's z (official)
            x = block(x, qpe, z, zpe, gaze, prev, gaze_embed, prev_embed)
        return self.saliency_head(x)[..., 0]

    def prepare(self, q: Tensor, qpe: Tensor, z: Tensor, zpe: Tensor) -> RankingContext:
        """The step-invariant tensors of a batch (see :class:`RankingContext`)."""
        z_keys = z + zpe
        return RankingContext(
            q=q,
            qpe=qpe,
            z=z,
            zpe=zpe,
            z_keys=z_keys,
            image_queries=[block.image_cross_attn.q_proj(z_keys) for block in self.blocks],
            q0_first=self.blocks[0].input_proj(q),
            peripheral=[block.split_peripheral() for block in self.blocks],
        )

    def step(self, ctx: RankingContext, visits: Tensor) -> Tensor:
        """:meth:`forward` for the batch of ``ctx`` (same result up to float rounding)."""
        gaze, prev = visit_indicators(visits)
        gaze, prev = gaze.to(ctx.q.dtype), prev.to(ctx.q.dtype)
        gaze_embed = self.gaze_embed.view(1, 1, -1)
        prev_embed = self.prev_embed.view(1, 1, -1)
        x = ctx.q
        for i, block in enumerate(self.blocks):
            x = block(
                x,
                ctx.qpe,
                ctx.z,
                ctx.zpe,
                gaze,
                prev,
                gaze_embed,
                prev_embed,
                z_keys=ctx.z_keys,
                image_queries=ctx.image_queries[i],
                q0=ctx.q0_first if i == 0 else None,
                peripheral=ctx.peripheral[i],
            )
        return self.saliency_head(x)[..., 0]
