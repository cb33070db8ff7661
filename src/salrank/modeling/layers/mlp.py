"""Multi-layer perceptrons shared by the transformer heads."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn


class MLP(nn.Module):
    """``num_layers`` linear layers with ReLU between them (none after the last).

    The DETR / Mask2Former prediction head used for SeqRank's and PoseSOR's mask embeddings and
    boxes (``MLP(256, 256, 256, 3)``, ``MLP(256, 256, 4, 3)``). Layers are ``layers.0 ..
    layers.{num_layers-1}``, the official names.
    """

    def __init__(self, in_dim: int, hidden_dim: int, out_dim: int, num_layers: int) -> None:
        super().__init__()
        if num_layers < 1:
            raise ValueError("an MLP needs at least one layer")
        self.num_layers = num_layers
        dims_in = [in_dim] + [hidden_dim] * (num_layers - 1)
        dims_out = [hidden_dim] * (num_layers - 1) + [out_dim]
        self.layers = nn.ModuleList(nn.Linear(i, o) for i, o in zip(dims_in, dims_out))

    def forward(self, x: Tensor) -> Tensor:
        last = self.num_layers - 1
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < last:
                x = F.relu(x)
        return x


class FeedForward(nn.Module):
    """The transformer feed-forward block: ``lin2(act(lin1(x)))`` (SAM's ``MLPBlock``).

    Used as the FFN of every attention block in SeqRank and PoseSOR (GELU, hidden size
    ``COMMON.HIDDEN_DIM``). Parameter names ``lin1`` / ``lin2`` are the official ones. There is no
    dropout inside (the official blocks apply their own dropout after it).
    """

    def __init__(self, embedding_dim: int, mlp_dim: int, act: type[nn.Module] = nn.GELU) -> None:
        super().__init__()
        self.lin1 = nn.Linear(embedding_dim, mlp_dim)
        self.lin2 = nn.Linear(mlp_dim, embedding_dim)
        self.act = act()

    def forward(self, x: Tensor) -> Tensor:
        return self.lin2(self.act(self.lin1(x)))
