"""PPA's test-time input pipeline (the official ``assr_dataset_mapper`` + ``GeneralizedRCNN.preprocess_image``).

1. The photo in the model's channel order (BGR for the released model).
2. detectron2's ``ResizeShortestEdge(480, max_size=1333)``: the short side becomes 480 unless the long
   side would then exceed 1333; sizes are rounded with ``int(x + 0.5)``; the resampling is PIL's
   bilinear filter on the ``uint8`` image (identity when the size does not change, e.g. 640x480).
3. ``(image - PIXEL_MEAN) / PIXEL_STD`` in float32, then zero padding (after normalisation) at the
   bottom/right to a multiple of the backbone's size divisibility (32).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

__all__ = ["normalize_and_pad", "resize_shortest_edge", "shortest_edge_size", "to_model_input"]


def shortest_edge_size(height: int, width: int, short_edge: int, max_size: int) -> tuple[int, int]:
    """``(new_h, new_w)`` of detectron2's ``ResizeShortestEdge.get_output_shape``."""
    scale = short_edge * 1.0 / min(height, width)
    if height < width:
        newh, neww = short_edge * 1.0, scale * width
    else:
        newh, neww = scale * height, short_edge * 1.0
    if max(newh, neww) > max_size:
        scale = max_size * 1.0 / max(newh, neww)
        newh, neww = newh * scale, neww * scale
    return int(newh + 0.5), int(neww + 0.5)


def resize_shortest_edge(image: np.ndarray, short_edge: int, max_size: int) -> np.ndarray:
    """Resize an ``(H, W, 3)`` ``uint8`` image as the official test mapper does (PIL bilinear)."""
    h, w = image.shape[:2]
    newh, neww = shortest_edge_size(h, w, short_edge, max_size)
    if (newh, neww) == (h, w):
        return image
    return np.asarray(Image.fromarray(image).resize((neww, newh), Image.BILINEAR))


def to_model_input(image_rgb: np.ndarray, fmt: str, short_edge: int, max_size: int) -> Tensor:
    """``(3, H', W')`` ``uint8`` tensor in the model's channel order from an RGB ``uint8`` photo."""
    if image_rgb.dtype != np.uint8 or image_rgb.ndim != 3 or image_rgb.shape[2] != 3:
        raise ValueError(f"expected an RGB uint8 image (H, W, 3), got {image_rgb.dtype} {image_rgb.shape}")
    image = image_rgb[:, :, ::-1] if fmt == "BGR" else image_rgb
    image = resize_shortest_edge(np.ascontiguousarray(image), short_edge, max_size)
    return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))


def normalize_and_pad(images: Sequence[Tensor], pixel_mean: Tensor, pixel_std: Tensor, size_divisibility: int) -> Tensor:
    """Stack ``(3, H_i, W_i)`` images (uint8 or float) into a normalised, zero-padded ``(B, 3, H, W)`` batch."""
    normed = [(img.to(pixel_mean.device) - pixel_mean) / pixel_std for img in images]
    max_h = max(int(t.shape[-2]) for t in normed)
    max_w = max(int(t.shape[-1]) for t in normed)
    if size_divisibility > 1:
        max_h = (max_h + size_divisibility - 1) // size_divisibility * size_divisibility
        max_w = (max_w + size_divisibility - 1) // size_divisibility * size_divisibility
    return torch.stack([F.pad(t, (0, max_w - t.shape[-1], 0, max_h - t.shape[-2]), value=0.0) for t in normed])
