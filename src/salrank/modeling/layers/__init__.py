"""Small layers shared by the models.

* :class:`Attention` - SAM-style multi-head attention (separate q/k/v/out projections), with
  :func:`validity_mask_to_bias` for PoseSOR's masked self-attention.
* :class:`MLP` - the 3-layer prediction head; :class:`FeedForward` - the transformer FFN.
* :class:`LayerNorm2d` - LayerNorm over the channels of a ``(B, C, H, W)`` map.
* :class:`LearnablePE` - the learned 25x25 positional map resized to each feature size.
* :class:`DropPath` / :func:`drop_path` - stochastic depth.
* ``frozen_bn`` (PPA's detectron2-style frozen BatchNorm) and ``memory_format`` (:func:`memory_format_of`, which
  keeps a rewritten weight's layout) are imported from their own modules.
"""

from salrank.modeling.layers.attention import Attention, validity_mask_to_bias
from salrank.modeling.layers.drop_path import DropPath, drop_path
from salrank.modeling.layers.mlp import MLP, FeedForward
from salrank.modeling.layers.norm import LayerNorm2d
from salrank.modeling.layers.position_encoding import LearnablePE

__all__ = [
    "MLP",
    "Attention",
    "DropPath",
    "FeedForward",
    "LayerNorm2d",
    "LearnablePE",
    "drop_path",
    "validity_mask_to_bias",
]
