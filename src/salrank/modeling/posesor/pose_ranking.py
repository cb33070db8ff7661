"""Pose-Driven Ranking (PDR): where does attention go after each object, and which rank does it take?

From PAI's joint tokens of every object (``pose``, ``(B, n, 17, C)``) and object tokens ``q``:

1. **Direction tokens.** An MLP across the joint axis (17 -> 68 -> 8) turns each pose into 8 direction
   tokens, refined by a channel MLP: ``(B, n, 8, C)``.
2. **Coordinate cues.** A channel MLP of every joint token gives its coordinate cue ``(B, n, 17, C)``; a
   learned background cue ``(17, C)`` is appended as an extra "object": ``(B, n + 1, 17, C)``.
3. **Background token.** ``Linear(GAP(res3) - mean_n(q))``: the image minus its objects.
4. **Direction -> target attention.** Each direction token attends (softmax of dot products) over all
   ``(n + 1) x 17`` joint cues; the values are ``[q; background] + cue``. Result: ``(B, n, 8, C)``.
5. **Next-object representation.** An MLP-Mixer (directions 8 -> 32 -> 1, then channels C -> hidden -> C)
   folds the 8 directed targets into one token ``nxt``.
6. **Shared/pairwise term.** ``sha = Linear([nxt, q])``; a pairwise MLP of ``[sha_i, sha_j]`` averaged
   over ``j``.
7. **Updates.** ``q' = Linear([q, nxt, sha])``; ``nxt' = Linear([q', nxt, sha])``.
8. **Head** (:class:`PDRHead`). Rank logits ``Linear(q') -> 20`` (class ``k`` = "visited k-th",
   class 0 unused by the read-out) and the partition map ``Linear(nxt') . conv1x1(res3)``: "where attention
   goes next" at 1/8 resolution.

Official quirks (``network/modules/pdr.py``): ``q_mask`` is accepted and ignored, so padded slots take
part in the background mean, the direction attention and the pairwise mean (this only matters for padded
batches, see :mod:`.query_selection`); ``pose_pe``, ``qpe`` and the PE of the features are ignored.

Speed (``pairwise="factorized"``, the default): the pairwise MLP's first layer on ``[sha_i, sha_j]`` is
``W_a sha_i + W_b sha_j + b``, computed per object and broadcast; its last layer is linear, so it commutes
with the mean over ``j``. This removes the ``n^2 x 2C x hidden`` and ``n^2 x hidden x C`` products (15 G
multiply-adds for 100 objects) and is equal in exact arithmetic (float32 rounding only).
``pairwise="explicit"`` builds the ``(n, n, 2C)`` pairs as the official code.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from salrank.modeling.posesor.common import (
    NormedMLP,
    escape,
    normed_mlp_key_rules,
    xavier_init_,
)
from salrank.modeling.posesor.config import PDRConfig

__all__ = ["DirectionMixer", "PDRHead", "PDROutput", "PoseDrivenRanking"]

_CHUNK_ELEMENTS = 1 << 22


@dataclass
class PDROutput:
    """PDR's results (official ``partition_out``)."""

    ranks: Tensor
    """``(B, n, max_rank_level)`` rank logits."""
    partitions: Tensor
    """``(B, n, h, w)`` "where attention goes next" logits at the resolution of ``mask_key`` (1/8)."""
    q: Tensor
    """``(B, n, C)`` updated object tokens."""
    nxt: Tensor
    """``(B, n, C)`` next-object tokens."""


class DirectionMixer(nn.Module):
    """MLP-Mixer folding ``D`` direction tokens into one: a node MLP across tokens, then a channel MLP."""

    def __init__(self, num_nodes: int, embed_dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.node_mlp = NormedMLP(num_nodes, 4 * num_nodes, 1)
        self.channel_mlp = NormedMLP(embed_dim, hidden_dim, embed_dim)

    def forward(self, x: Tensor) -> Tensor:
        """``(..., D, C)`` -> ``(..., C)``."""
        return self.channel_mlp(self.node_mlp(x.transpose(-1, -2)).transpose(-1, -2)).squeeze(-2)


class PDRHead(nn.Module):
    """Rank logits from the object tokens, partition maps from the next-object tokens."""

    def __init__(self, embed_dim: int, max_rank_level: int) -> None:
        super().__init__()
        self.feature_proj = nn.Conv2d(embed_dim, embed_dim, 1)
        self.next_embed = nn.Linear(embed_dim, embed_dim)
        self.rank_head = nn.Linear(embed_dim, max_rank_level)

    def forward(self, q: Tensor, nxt: Tensor, feature: Tensor) -> tuple[Tensor, Tensor]:
        """``q``, ``nxt``: ``(B, n, C)``; ``feature``: ``(B, C, h, w)`` -> ``(ranks, partitions)``."""
        proj = self.feature_proj(feature)
        b, c, h, w = proj.shape
        partitions = torch.bmm(self.next_embed(nxt), proj.reshape(b, c, h * w)).view(b, -1, h, w)
        return self.rank_head(q), partitions


class PoseDrivenRanking(nn.Module):
    """The PDR module (official ``PDR`` and its ablations ``PDRDCL``, ``PDRRI``, ``PDRID8``)."""

    def __init__(
        self,
        cfg: PDRConfig | None = None,
        num_joints: int = 17,
        embed_dim: int = 256,
        hidden_dim: int = 2048,
        max_rank_level: int = 20,
        pairwise: str = "factorized",
    ) -> None:
        super().__init__()
        cfg = cfg or PDRConfig()
        self.cfg = cfg
        self.pairwise = pairwise
        c, d = embed_dim, cfg.num_directions
        if cfg.ranking_module:  # PDRDCL/PDRRI keep every module even where they do not use it
            self.to_directions = NormedMLP(num_joints, 4 * num_joints, d)
            self.direction_cues = NormedMLP(c, c, c)
            self.coordinate_cues = NormedMLP(c, c, c)
            self.background_cues = nn.Parameter(torch.rand(1, num_joints, c))
            self.background_proj = nn.Linear(c, c)
            self.direction_mixer = DirectionMixer(d, c, hidden_dim)
            self.pair_mlp = NormedMLP(2 * c, hidden_dim, c)
            self.shared_proj = nn.Linear(2 * c, c)
            self.query_update = nn.Linear(3 * c, c)
            self.next_update = nn.Linear(3 * c, c)
        self.head = PDRHead(c, max_rank_level)
        xavier_init_(self)  # the official module re-initialises everything at the end of __init__

    def forward(
        self, q: Tensor, pose: Tensor, feats: dict[str, Tensor], q_mask: Tensor | None = None
    ) -> PDROutput:
        """Rank the object slots.

        Args:
            q: ``(B, n, C)`` PAI object tokens.
            pose: ``(B, n, K, C)`` PAI joint tokens.
            feats: neck features (``mask_key`` is read).
            q_mask: accepted for symmetry with PAI and ignored, as in the official code.
        """
        del q_mask  # official: unused
        cfg = self.cfg
        z = feats[cfg.mask_key]
        if not cfg.ranking_module:  # PDRID8: the head on the PAI queries
            ranks, partitions = self.head(q, q, z)
            return PDROutput(ranks=ranks, partitions=partitions, q=q, nxt=q)
        if cfg.direction_tokens:
            nxt = self.next_object(q, pose, z)
            shared = self.shared_proj(torch.cat([nxt, q], dim=-1))
            if cfg.pairwise_relation:
                shared = self.pairwise_mean(shared)
            q = self.query_update(torch.cat([q, nxt, shared], dim=-1))
            nxt = self.next_update(torch.cat([q, nxt, shared], dim=-1))
        else:  # PDRRI: the pairwise relation of the queries themselves, no direction reasoning
            shared = self.pairwise_mean(q)
            q = self.query_update(torch.cat([q, q, shared], dim=-1))
            nxt = self.next_update(torch.cat([q, q, shared], dim=-1))
        ranks, partitions = self.head(q, nxt, z)
        return PDROutput(ranks=ranks, partitions=partitions, q=q, nxt=nxt)

    def next_object(self, q: Tensor, pose: Tensor, z: Tensor) -> Tensor:
        """Steps 1-5: the next-object representation ``(B, n, C)``."""
        b = pose.shape[0]
        directions = self.direction_cues(self.to_directions(pose.transpose(-1, -2)).transpose(-1, -2))  # B, n, D, C
        cues = self.coordinate_cues(pose)
        cues = torch.cat([cues, self.background_cues.unsqueeze(0).expand(b, -1, -1, -1)], dim=1)  # B, n+1, K, C
        background = self.background_proj(F.adaptive_avg_pool2d(z, 1).flatten(1).unsqueeze(1) - q.mean(dim=1, keepdim=True))
        targets = (torch.cat([q, background], dim=1).unsqueeze(2) + cues).flatten(1, 2)  # B, (n+1)K, C
        scores = torch.matmul(directions, cues.flatten(1, 2).unsqueeze(1).transpose(-1, -2))  # B, n, D, (n+1)K
        directed = torch.softmax(scores, dim=-1) @ targets.unsqueeze(1)  # B, n, D, C
        return self.direction_mixer(directed)

    def pairwise_mean(self, x: Tensor) -> Tensor:
        """``mean_j pair_mlp([x_i, x_j])`` for every ``i``: ``(B, n, C)`` -> ``(B, n, C)``."""
        b, n, c = x.shape
        mlp = self.pair_mlp
        if self.pairwise == "explicit":
            pairs = torch.cat([x.unsqueeze(2).expand(b, n, n, c), x.unsqueeze(1).expand(b, n, n, c)], dim=-1)
            return mlp(pairs).mean(dim=2)
        if self.pairwise != "factorized":
            raise ValueError(f"pairwise must be 'factorized' or 'explicit', not {self.pairwise!r}")
        w_i, w_j = mlp.fc1.weight[:, :c], mlp.fc1.weight[:, c:]
        own = F.linear(x, w_i, mlp.fc1.bias)  # B, n, H
        other = F.linear(x, w_j)  # B, n, H
        hidden = own.shape[-1]
        step = max(1, _CHUNK_ELEMENTS // max(1, n * hidden))
        means = []
        for s in range(0, n, step):
            h = F.relu(own[:, s : s + step].unsqueeze(2) + other.unsqueeze(1))  # B, k, n, H
            means.append(mlp.norm(h).mean(dim=2))
        return mlp.fc2(torch.cat(means, dim=1))

    @staticmethod
    def official_key_rules(official_prefix: str = "pose_shift.", prefix: str = "pose_ranking.") -> list[tuple[str, str]]:
        """KeyMap rules for the official ``pose_shift`` (``PDR``/``PDR*``) keys."""
        o, p = escape(official_prefix), prefix
        rules = [
            (o + r"bg_coord_rep", p + "background_cues"),
            (o + r"bg_linear\.(weight|bias)", p + r"background_proj.\1"),
            (o + r"share_linear\.(weight|bias)", p + r"shared_proj.\1"),
            (o + r"agg_head\.(weight|bias)", p + r"query_update.\1"),
            (o + r"nxt_head\.(weight|bias)", p + r"next_update.\1"),
            (o + r"head\.upx4\.0\.(weight|bias)", p + r"head.feature_proj.\1"),
            (o + r"head\.nxt_emb\.(weight|bias)", p + r"head.next_embed.\1"),
            (o + r"head\.rank_head\.(weight|bias)", p + r"head.rank_head.\1"),
        ]
        for official, ours in (
            ("to_directions.", "to_directions."),
            ("directional_cues.", "direction_cues."),
            ("coordinate_cues.", "coordinate_cues."),
            ("d_mmixer.mlp1.", "direction_mixer.node_mlp."),
            ("d_mmixer.mlp2.", "direction_mixer.channel_mlp."),
            ("share_mlp.", "pair_mlp."),
        ):
            rules += normed_mlp_key_rules(o + escape(official), p + ours)
        return rules
