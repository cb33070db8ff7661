"""The memory format of a weight, so that a rewritten weight (BatchNorm folded, towers fused) keeps it."""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["memory_format_of"]


def memory_format_of(t: Tensor) -> torch.memory_format:
    """``torch.channels_last`` for a 4-D tensor stored NHWC (and not also plain contiguous), else ``contiguous_format``."""
    if t.dim() == 4 and t.is_contiguous(memory_format=torch.channels_last) and not t.is_contiguous():
        return torch.channels_last
    return torch.contiguous_format
