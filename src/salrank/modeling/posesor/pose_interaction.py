"""Pose-Aware Interaction (PAI): every selected object grows a 17-joint pose and meets the scene.

Each object slot ``q`` (from :mod:`.query_selection`) gets **17 joint tokens** (COCO order): a learned
joint embedding (zeros at init) plus the object query, with positional encodings = a learned joint PE
(``randn`` at init) plus the query's PE. ``num_blocks`` :class:`InteractionBlock` s then refine joints and
objects, each in four steps:

1. **Object-gated features.** A gate ``m = sigmoid(Linear(q) . z)`` over the ``res3`` tokens ``z``
   selects the object's region: the object sees ``z * m``.
2. **Intra-object step.** The object's 17 joint tokens and the object token (18 tokens) cross-attend to its
   gated features (keys ``z * m + PE``, values ``z * m``), self-attend among themselves, and pass an FFN
   (post-norm residuals, :class:`~salrank.modeling.posesor.common.QueryBlock`).
3. **Scene tokens.** ``res3`` average-pooled to a ``4 x 4`` grid and layer-normed: 16 tokens (and the
   PE pooled the same way).
4. **Sub-pose tokens and actor-scene interaction.** Each object's pose is summarised by an MLP across the
   joint axis (17 -> 68 -> 1) added to the object query (``LayerNorm``): one sub-pose token per object.
   Sub-pose tokens and scene tokens self-attend (padded objects masked out), pass an FFN, and the
   updated sub-pose token is added to the object query.

The :class:`PAIHead` reads, from a ``1x1``-conv projection of ``res2`` (stride 4): **joint heatmaps**
(``Linear(joint) . F``), **refined masks** (``Linear(q) . F``), a **box** (``Linear(q) -> 4`` logits:
sigmoid gives ``cx, cy, h, w`` in ``[0, 1]``) and **explicit keypoints** (``Linear(joint) -> 3`` logits:
sigmoid gives ``x, y`` in ``[0, 1]`` and the visibility probability). It is applied to the initial tokens
and after every block; only the last application feeds the outputs and PDR.

Official behaviour and quirks (``network/modules/pai.py``):

* The intra-object self-attention is masked with ``q_mask q_mask^T`` of the object's own validity, which
  is all ones for a real object and all zeros (turned into all ones by the attention) for a padded one:
  the mask never changes anything and is not applied here.
* The joint PE and the query PE are not updated by the blocks; the returned ``pose_pe`` / ``qpe`` are the
  inputs.
* The PE of the sub-pose tokens is the query PE plus the *same* sub-pose MLP applied to the joint PE.
* ``NUM_LAYERS`` is read but unused.
* Ablations (:data:`~salrank.modeling.posesor.config.PAI_VARIANTS`) keep some modules they do not use:
  ID3 keeps the gate's linear layer, ID4/ID6 keep the sub-pose MLP, ID6 keeps the scene LayerNorm; so
  their state dicts load unchanged.

Speed (``gated_attention="factorized"``, the default): the official code materialises, for every object,
the gated keys and values ``(HW, C)`` and projects them (``2 n HW C^2`` multiply-adds: 242 G for 100
objects at 768 px). The projection is linear, so for object ``o``, head ``h`` and token ``t``
``score = m_o[p] (Q_t . K_h(z)[p]) + Q_t . (K_h(PE)[p] + b_k)`` and
``out = sum_p softmax(score)_p m_o[p] V_h(z)[p] + b_v``: the projections of ``z`` and of the PE are
computed once per image and the per-object work is three ``(18 x d) x (d x HW)`` products per head. This is
the same function (equal in exact arithmetic; float32 results differ by rounding only, ~1e-6) and is
differentiable for training. ``gated_attention="explicit"`` evaluates the official formulation (in
chunks of objects).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from salrank.modeling.layers import Attention, FeedForward
from salrank.modeling.posesor.common import (
    NormedMLP,
    QueryBlock,
    attention_bias,
    escape,
    normed_mlp_key_rules,
    xavier_init_,
)
from salrank.modeling.posesor.config import PAIConfig

__all__ = ["InteractionBlock", "PAIHead", "PAIOutput", "PAIPrediction", "PoseAwareInteraction", "gated_cross_attention"]

# Work-size budget (float32 elements per temporary, 64 MiB) of the chunked attention loops: large
# enough for efficient batched matrix products, small next to the model's other buffers.
_CHUNK_ELEMENTS = 1 << 24


@dataclass
class PAIPrediction:
    """One application of the PAI head (all logits)."""

    keypoints: Tensor
    """``(B, n, 17, 3)`` explicit keypoints: sigmoid gives ``x / W``, ``y / H`` and the visibility."""
    masks: Tensor
    """``(B, n, H/4, W/4)`` refined mask logits."""
    boxes: Tensor
    """``(B, n, 4)`` box logits: sigmoid gives ``cx, cy, h, w`` relative to the image."""
    heatmaps: Tensor | None = None
    """``(B, n, 17, H/4, W/4)`` joint heatmap logits (``None`` when not computed)."""


@dataclass
class PAIOutput:
    """PAI's results: the refined pose and object tokens, and the head's predictions."""

    pose: Tensor
    """``(B, n, 17, C)`` joint tokens after the last block (PDR's input)."""
    pose_pe: Tensor | None
    """``(B, n, 17, C)`` joint PE (learned joint PE + query PE; ``None`` for the ID9 ablation)."""
    q: Tensor
    """``(B, n, C)`` object tokens after the last block."""
    qpe: Tensor
    """``(B, n, C)`` their PE (the input PE)."""
    predictions: list[PAIPrediction]
    """Head outputs for the initial tokens and after every block; the last is the final one. At
    inference only the last may be computed."""
    head_feature: Tensor
    """``(B, C, H/4, W/4)`` the head's projected ``res2`` feature (to compute heatmaps later)."""

    @property
    def out(self) -> PAIPrediction:
        return self.predictions[-1]

    @property
    def aux(self) -> list[PAIPrediction]:
        return self.predictions[:-1]


def gated_cross_attention(
    attn: Attention, tokens: Tensor, feat: Tensor, feat_pe: Tensor, gate: Tensor, mode: str = "factorized"
) -> Tensor:
    """Every object's tokens attend to its own gated copy of a shared feature map.

    Computes, for each object ``o``, ``attn(tokens[:, o], feat * gate[:, o, :, None] + feat_pe,
    feat * gate[:, o, :, None])`` (official PAI step 2).

    Args:
        attn: the :class:`~salrank.modeling.layers.Attention` whose projections are used.
        tokens: ``(B, n, T, C)`` queries (content + PE already added).
        feat, feat_pe: ``(B, HW, C)`` feature tokens and their PE.
        gate: ``(B, n, HW)`` per-object gate in ``[0, 1]``.
        mode: ``"factorized"`` (projections of the shared map computed once, see the module docstring) or
            ``"explicit"`` (per-object keys and values, the official arithmetic).

    Returns:
        ``(B, n, T, C)``.
    """
    b, n, t, c = tokens.shape
    hw = feat.shape[1]
    if n == 0:
        return tokens.new_zeros(tokens.shape)
    if mode == "explicit":
        out = []
        step = max(1, _CHUNK_ELEMENTS // max(1, hw * c))
        for s in range(0, n, step):
            g = gate[:, s : s + step, :, None]  # B, k, HW, 1
            keys = feat.unsqueeze(1) * g  # B, k, HW, C
            k_tok = (keys + feat_pe.unsqueeze(1)).flatten(0, 1)
            res = attn(tokens[:, s : s + step].flatten(0, 1), k_tok, keys.flatten(0, 1))
            out.append(res.view(b, -1, t, c))
        return torch.cat(out, dim=1)
    if mode != "factorized":
        raise ValueError(f"mode must be 'factorized' or 'explicit', not {mode!r}")

    heads = attn.num_heads
    d = attn.internal_dim // heads
    scale = 1.0 / math.sqrt(d)
    # Projections of the shared map: keys split into the gated part (no bias) and the PE part (with bias).
    fk = F.linear(feat, attn.k_proj.weight)  # B, HW, D
    pk = F.linear(feat_pe, attn.k_proj.weight, attn.k_proj.bias)
    fv = F.linear(feat, attn.v_proj.weight)
    q = attn.q_proj(tokens)  # B, n, T, D

    def split(x: Tensor) -> Tensor:  # (HW, D) -> (heads, d, HW): keys as the right operand of Q @ K^T
        return x.view(hw, heads, d).permute(1, 2, 0)

    inplace = not (torch.is_grad_enabled() and any(x.requires_grad for x in (tokens, feat, feat_pe, gate, attn.k_proj.weight)))
    outs = []
    step = max(1, _CHUNK_ELEMENTS // max(1, heads * t * hw))
    for i in range(b):
        fk_t, pk_t = split(fk[i]), split(pk[i])
        fv_h = fv[i].view(hw, heads, d).transpose(0, 1)  # heads, HW, d
        per_image = []
        for s in range(0, n, step):
            k = min(step, n - s)
            qh = (q[i, s : s + k] * scale).reshape(k * t, heads, d).transpose(0, 1)  # heads, kT, d (scaled)
            g = gate[i, s : s + k].unsqueeze(1)  # k, 1, HW: one gate per object, shared by its T tokens
            if inplace:  # inference: reuse the buffers
                scores = torch.bmm(qh, fk_t)  # heads, kT, HW
                scores.view(heads, k, t, hw).mul_(g)
                scores.baddbmm_(qh, pk_t)
                weights = torch.softmax(scores, dim=-1)
                del scores
                weights.view(heads, k, t, hw).mul_(g)
            else:
                scores = torch.baddbmm((torch.bmm(qh, fk_t).view(heads, k, t, hw) * g).view(heads, k * t, hw), qh, pk_t)
                weights = (torch.softmax(scores, dim=-1).view(heads, k, t, hw) * g).view(heads, k * t, hw)
            o = torch.bmm(weights, fv_h)  # heads, kT, d
            per_image.append(o.transpose(0, 1).reshape(k, t, heads * d))
        outs.append(torch.cat(per_image, dim=0))
    out = torch.stack(outs, dim=0) + attn.v_proj.bias  # softmax weights sum to 1, so the value bias passes through
    return attn.out_proj(out)


class PAIHead(nn.Module):
    """Heatmaps, refined masks, boxes and explicit keypoints from the joint and object tokens."""

    def __init__(self, embed_dim: int) -> None:
        super().__init__()
        self.mask_proj = nn.Conv2d(embed_dim, embed_dim, 1)
        self.mask_embed = nn.Linear(embed_dim, embed_dim)
        self.heatmap_embed = nn.Linear(embed_dim, embed_dim)
        self.box_head = nn.Linear(embed_dim, 4)
        self.keypoint_head = nn.Linear(embed_dim, 3)
        xavier_init_(self)

    def project(self, mask_feature: Tensor) -> Tensor:
        """``(B, C, H/4, W/4)`` -> the projected feature the maps are read from (official ``upx4``)."""
        return self.mask_proj(mask_feature)

    def heatmap_logits(self, joints: Tensor, feature: Tensor) -> Tensor:
        """``(..., K, C)`` joint tokens of one image x its projected feature ``(C, h, w)`` -> ``(..., K, h, w)``."""
        c, h, w = feature.shape
        emb = self.heatmap_embed(joints)
        return (emb.reshape(-1, c) @ feature.reshape(c, h * w)).view(*joints.shape[:-1], h, w)

    def forward(self, q: Tensor, joints: Tensor, feature: Tensor, heatmaps: bool = True) -> PAIPrediction:
        """``q``: ``(B, n, C)``; ``joints``: ``(B, n, K, C)``; ``feature``: projected ``(B, C, h, w)``."""
        b, c, h, w = feature.shape
        flat = feature.reshape(b, c, h * w)
        masks = torch.bmm(self.mask_embed(q), flat).view(b, -1, h, w)
        maps = None
        if heatmaps:
            n, k = joints.shape[1], joints.shape[2]
            maps = torch.bmm(self.heatmap_embed(joints).reshape(b, n * k, c), flat).view(b, n, k, h, w)
        return PAIPrediction(keypoints=self.keypoint_head(joints), masks=masks, boxes=self.box_head(q), heatmaps=maps)


class InteractionBlock(nn.Module):
    """One PAI block (official ``AInteraction``): gated intra-object step, scene and sub-pose tokens,
    actor-scene interaction. See the module docstring; ``cfg`` switches select the ablations."""

    def __init__(
        self, cfg: PAIConfig, num_joints: int, embed_dim: int, num_heads: int, hidden_dim: int, dropout_attn: float, dropout_ffn: float,
        gated_attention: str = "factorized",
    ) -> None:
        super().__init__()
        self.cfg = cfg
        self.gated_attention = gated_attention
        if cfg.joint_interaction:
            self.intra_object = QueryBlock(embed_dim, num_heads, hidden_dim, dropout_attn, dropout_ffn)
            self.object_gate = nn.Linear(embed_dim, embed_dim)
            xavier_init_(self.object_gate)
            self.sub_pose = NormedMLP(num_joints, 4 * num_joints, 1)  # official: PyTorch default init
            self.sub_pose_norm = nn.LayerNorm(embed_dim)
        if cfg.keeps_scene_norm:
            self.scene_norm = nn.LayerNorm(embed_dim)
        self.actor_scene_attn = Attention(embed_dim, num_heads)
        self.actor_scene_drop = nn.Dropout(dropout_attn)
        self.actor_scene_norm = nn.LayerNorm(embed_dim)
        self.actor_scene_ffn = FeedForward(embed_dim, hidden_dim)
        self.actor_scene_ffn_drop = nn.Dropout(dropout_ffn)
        self.actor_scene_ffn_norm = nn.LayerNorm(embed_dim)
        xavier_init_(self.actor_scene_attn)
        xavier_init_(self.actor_scene_ffn)

    def object_gates(self, q: Tensor, z_tokens: Tensor) -> Tensor:
        """``(B, n, HW)`` gate of every object over the key feature tokens ``(B, HW, C)``."""
        if not self.cfg.object_gating:  # ID3: the official ``sigmoid() * 0.0 + 1.0``
            return q.new_ones(q.shape[0], q.shape[1], z_tokens.shape[1])
        return torch.bmm(self.object_gate(q), z_tokens.transpose(1, 2)).sigmoid()

    def forward(
        self, joints: Tensor, joints_pe: Tensor, q: Tensor, qpe: Tensor, z: Tensor, zpe: Tensor, q_mask: Tensor | None
    ) -> tuple[Tensor, Tensor]:
        """Refine ``joints`` ``(B, n, K, C)`` and ``q`` ``(B, n, C)`` over the key feature ``z`` ``(B, C, H, W)``.

        ``q_mask`` ``(B, n, 1)`` marks real objects (``None``: all real). Returns ``(q, joints)``.
        """
        b, n, k, c = joints.shape
        if self.cfg.joint_interaction:
            z_tokens = z.flatten(2).transpose(1, 2)  # B, HW, C
            zpe_tokens = zpe.flatten(2).transpose(1, 2)
            gate = self.object_gates(q, z_tokens)
            tokens = torch.cat([joints, q.unsqueeze(2)], dim=2)  # B, n, K+1, C
            tokens_pe = torch.cat([joints_pe, qpe.unsqueeze(2)], dim=2)
            block = self.intra_object
            read = gated_cross_attention(block.cross_attn, tokens + tokens_pe, z_tokens, zpe_tokens, gate, self.gated_attention)
            x = block.norm1(tokens + block.dropout1(read))
            x = block.self_and_ffn(x.flatten(0, 1), tokens_pe.flatten(0, 1)).view(b, n, k + 1, c)
            joints, q = x[:, :, :k], x[:, :, k]

        actors, actors_pe = q, qpe
        if self.cfg.joint_interaction and self.cfg.sub_pose_tokens:
            actors = self.sub_pose_norm(q + self.sub_pose(joints.transpose(-1, -2)).squeeze(-1))
            actors_pe = qpe + self.sub_pose(joints_pe.transpose(-1, -2)).squeeze(-1)
        valid = q_mask if q_mask is not None else q.new_ones(b, n, 1)
        if self.cfg.scene_tokens:
            bins = self.cfg.scene_bins
            scene = self.scene_norm(F.adaptive_avg_pool2d(z, bins).flatten(2).transpose(1, 2))
            scene_pe = F.adaptive_avg_pool2d(zpe, bins).flatten(2).transpose(1, 2)
            actors = torch.cat([actors, scene], dim=1)
            actors_pe = torch.cat([actors_pe, scene_pe], dim=1)
            valid = torch.cat([valid, valid.new_ones(b, scene.shape[1], 1)], dim=1)
        x = actors + actors_pe
        x = self.actor_scene_norm(actors + self.actor_scene_drop(self.actor_scene_attn(x, x, actors, attn_mask=attention_bias(valid))))
        x = self.actor_scene_ffn_norm(x + self.actor_scene_ffn_drop(self.actor_scene_ffn(x)))
        return q + x[:, :n], joints


class PoseAwareInteraction(nn.Module):
    """The PAI module (official ``PAI`` and its ablations ``PAIID*``)."""

    def __init__(
        self,
        cfg: PAIConfig | None = None,
        num_joints: int = 17,
        embed_dim: int = 256,
        num_heads: int = 8,
        hidden_dim: int = 2048,
        dropout_attn: float = 0.0,
        dropout_ffn: float = 0.0,
        gated_attention: str = "factorized",
    ) -> None:
        super().__init__()
        cfg = cfg or PAIConfig()
        self.cfg = cfg
        self.num_joints = num_joints
        self.joint_embed = nn.Parameter(torch.zeros(1, num_joints, embed_dim))
        if cfg.interaction_blocks:
            self.joint_pe = nn.Parameter(torch.randn(1, num_joints, embed_dim))
            self.blocks = nn.ModuleList(
                InteractionBlock(cfg, num_joints, embed_dim, num_heads, hidden_dim, dropout_attn, dropout_ffn, gated_attention)
                for _ in range(cfg.num_blocks)
            )
        else:
            self.blocks = nn.ModuleList()
        self.head = PAIHead(embed_dim)

    def set_gated_attention(self, mode: str) -> None:
        """Switch every block between ``"factorized"`` and ``"explicit"`` gated cross-attention."""
        if mode not in ("factorized", "explicit"):
            raise ValueError(f"gated attention mode must be 'factorized' or 'explicit', not {mode!r}")
        for block in self.blocks:
            block.gated_attention = mode  # type: ignore[union-attr]

    def forward(
        self,
        q: Tensor,
        qpe: Tensor,
        feats: dict[str, Tensor],
        feats_pe: dict[str, Tensor],
        q_mask: Tensor | None = None,
        *,
        all_predictions: bool = True,
        heatmaps: str = "all",
    ) -> PAIOutput:
        """Run PAI on object slots.

        Args:
            q, qpe: ``(B, n, C)`` slot queries and PE (:class:`~.query_selection.QuerySlots`).
            feats, feats_pe: neck features and their APE.
            q_mask: ``(B, n, 1)``, 1 for real slots (``None``: all real).
            all_predictions: apply the head to the initial tokens and after every block (the official
                ``aux``); ``False``: only after the last block.
            heatmaps: which head applications compute heatmaps: ``"all"``, ``"last"`` or ``"none"``.
        """
        cfg = self.cfg
        joints = self.joint_embed.unsqueeze(1) + q.unsqueeze(2)  # B, n, K, C
        joints_pe = self.joint_pe.unsqueeze(1) + qpe.unsqueeze(2) if cfg.interaction_blocks else None
        feature = self.head.project(feats[cfg.mask_key])
        last = len(self.blocks)
        predictions = []

        def apply_head(step: int) -> None:
            with_maps = heatmaps == "all" or (heatmaps == "last" and step == last)
            predictions.append(self.head(q, joints, feature, heatmaps=with_maps))

        if all_predictions:
            apply_head(0)
        z, zpe = feats[cfg.key_feature], feats_pe[cfg.key_feature]
        for i, block in enumerate(self.blocks):
            q, joints = block(joints, joints_pe, q, qpe, z, zpe, q_mask)
            if all_predictions:
                apply_head(i + 1)
        if not all_predictions:
            apply_head(last)
        return PAIOutput(pose=joints, pose_pe=joints_pe, q=q, qpe=qpe, predictions=predictions, head_feature=feature)

    @staticmethod
    def official_key_rules(official_prefix: str = "actor_interaction.", prefix: str = "pose_interaction.") -> list[tuple[str, str]]:
        """KeyMap rules for the official ``actor_interaction`` (``PAI``/``PAIID*``) keys."""
        o, p = escape(official_prefix), prefix
        blk = o + r"blocks\.([0-9]+)\."
        rules = [
            (o + r"j", p + "joint_embed"),
            (o + r"jpe", p + "joint_pe"),
            (blk + r"q_linear\.(weight|bias)", p + r"blocks.\1.object_gate.\2"),
            (blk + r"(sub_pose_norm|scene_norm)\.(weight|bias)", p + r"blocks.\1.\2.\3"),
            (blk + r"xi_sa\.((?:q|k|v|out)_proj\.(?:weight|bias))", p + r"blocks.\1.actor_scene_attn.\2"),
            (blk + r"xi_sa_norm\.(weight|bias)", p + r"blocks.\1.actor_scene_norm.\2"),
            (blk + r"xi_ffn\.(lin[12]\.(?:weight|bias))", p + r"blocks.\1.actor_scene_ffn.\2"),
            (blk + r"xi_ffn_norm\.(weight|bias)", p + r"blocks.\1.actor_scene_ffn_norm.\2"),
            (o + r"head\.upx4\.0\.(weight|bias)", p + r"head.mask_proj.\1"),
            (o + r"head\.query_emb\.(weight|bias)", p + r"head.mask_embed.\1"),
            (o + r"head\.heat_emb\.(weight|bias)", p + r"head.heatmap_embed.\1"),
            (o + r"head\.bbox_head\.(weight|bias)", p + r"head.box_head.\1"),
            (o + r"head\.classification_head\.(weight|bias)", p + r"head.keypoint_head.\1"),
        ]
        rules += QueryBlock.official_key_rules(blk + r"inner_joints_ia\.", p + r"blocks.\1.intra_object.")
        rules += normed_mlp_key_rules(blk + r"sub_pose\.", p + r"blocks.\1.sub_pose.")
        return rules
