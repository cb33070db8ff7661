"""Operators that detection code usually takes from torchvision, written in plain PyTorch."""

from salrank.ops.nms import batched_nms, nms
from salrank.ops.roi_align import roi_align

__all__ = ["batched_nms", "nms", "roi_align"]
