"""RoIAlign of one box per query, for the Fovea Module's multi-eye read-out.

The FOM reads every query's box from a feature level with torchvision's ``roi_align`` (``aligned=False``,
adaptive sampling): 100 boxes per image and block, 600 per image in all. :func:`salrank.ops.roi_align`
reproduces torchvision box by box; :func:`roi_align_batched` computes the same numbers for all boxes
of an image at once, which is what the FOM uses by default.

The batched form uses the same factorisation as :mod:`salrank.ops.roi_align`: bilinear sampling and
torchvision's out-of-range rule are separable, so the average over a bin's sample grid is
``A_y . F . A_x^T / count`` with one ``(pooled, H)`` and one ``(pooled, W)`` weight matrix per box.
Here the weight matrices of all boxes are built with tensor operations (sample coordinates computed in
the feature's float type with the kernel's operation order) and the contraction is two batched
matrix products over the whole map. It is differentiable with respect to the features (the boxes are
treated as constants, as torchvision's backward does).
"""

from __future__ import annotations

import torch
from torch import Tensor

from salrank.ops import roi_align

__all__ = ["roi_align_batched", "roi_align_boxes"]


def _axis_weights(start: Tensor, bin_size: Tensor, grid: Tensor, pooled: int, size: int) -> Tensor:
    """``(K, pooled, size)`` summed bilinear weights of each bin's samples along one axis.

    ``start``, ``bin_size`` (float) and ``grid`` (int, samples per bin) are ``(K,)``.
    """
    k = start.shape[0]
    dtype = start.dtype
    max_grid = max(int(grid.max()), 1) if k else 1
    p = torch.arange(pooled, device=start.device, dtype=dtype).view(1, pooled, 1)
    s = torch.arange(max_grid, device=start.device, dtype=dtype).view(1, 1, max_grid)
    grid_f = grid.to(dtype).view(k, 1, 1)
    # torchvision: start + p * bin + (s + .5) * bin / grid, left to right in the kernel's precision
    coord = (start.view(k, 1, 1) + p * bin_size.view(k, 1, 1)) + (s + 0.5) * bin_size.view(k, 1, 1) / grid_f
    used = torch.arange(max_grid, device=start.device).view(1, 1, max_grid) < grid.view(k, 1, 1)
    valid = used & (coord >= -1.0) & (coord <= size)
    coord = coord.clamp(min=0.0)
    low = coord.floor().to(torch.long)
    at_end = low >= size - 1
    low = torch.where(at_end, torch.full_like(low, size - 1), low)
    coord = torch.where(at_end, low.to(dtype), coord)
    high = torch.where(at_end, low, low + 1)
    frac = coord - low.to(dtype)
    w_low = (1.0 - frac) * valid
    w_high = frac * valid
    weights = torch.zeros(k, pooled, size, dtype=dtype, device=start.device)
    weights.scatter_add_(2, low.clamp(0, size - 1).view(k, pooled, max_grid), w_low)
    weights.scatter_add_(2, high.clamp(0, size - 1).view(k, pooled, max_grid), w_high)
    return weights


def roi_align_batched(
    feature: Tensor,
    boxes: Tensor,
    output_size: tuple[int, int],
    spatial_scale: float = 1.0,
    sampling_ratio: int = -1,
    aligned: bool = False,
) -> Tensor:
    """RoIAlign (torchvision semantics) of ``boxes`` ``(K, 4)`` xyxy on one feature map ``(C, H, W)``.

    Returns ``(K, C, pooled_h, pooled_w)``. Equal to :func:`salrank.ops.roi_align` up to float
    summation order.
    """
    ph, pw = output_size
    c, h, w = feature.shape
    k = boxes.shape[0]
    if k == 0:
        return feature.new_zeros(0, c, ph, pw)
    # box arithmetic in float32 (float64 for float64 features), as the kernel
    ctype = torch.float64 if feature.dtype == torch.float64 else torch.float32
    b = boxes.detach().to(ctype)
    offset = 0.5 if aligned else 0.0
    x1, y1, x2, y2 = (b[:, i] * spatial_scale - offset for i in range(4))
    roi_w, roi_h = x2 - x1, y2 - y1
    if not aligned:
        roi_w, roi_h = roi_w.clamp(min=1.0), roi_h.clamp(min=1.0)
    bin_h, bin_w = roi_h / ph, roi_w / pw
    if sampling_ratio > 0:
        grid_h = torch.full((k,), sampling_ratio, dtype=torch.long, device=b.device)
        grid_w = grid_h
    else:
        grid_h = torch.ceil(roi_h / ph).to(torch.long)
        grid_w = torch.ceil(roi_w / pw).to(torch.long)
    count = (grid_h * grid_w).clamp(min=1).to(ctype)
    wy = _axis_weights(y1, bin_h, grid_h, ph, h)  # K, ph, H
    wx = _axis_weights(x1, bin_w, grid_w, pw, w)  # K, pw, W
    wy = (wy / count.view(k, 1, 1)).to(feature.dtype)
    wx = wx.to(feature.dtype)
    # contract H: (K*ph, H) @ (H, C*W) -> (K, ph*C, W); then W: bmm with (K, W, pw)
    rows = wy.reshape(k * ph, h) @ feature.permute(1, 0, 2).reshape(h, c * w)
    out = torch.bmm(rows.view(k, ph * c, w), wx.transpose(1, 2))  # K, ph*C, pw
    return out.view(k, ph, c, pw).permute(0, 2, 1, 3)


def roi_align_boxes(features: Tensor, boxes: Tensor, output_size: tuple[int, int], batched: bool = True) -> Tensor:
    """RoIAlign with ``spatial_scale=1``, adaptive sampling, ``aligned=False`` (the FOM's settings).

    ``features`` ``(B, C, H, W)``, ``boxes`` ``(B, n, 4)`` xyxy in feature pixels; returns
    ``(B*n, C, rows, cols)``. ``batched=False`` uses the shared per-box :func:`salrank.ops.roi_align`.
    """
    bsz, n = boxes.shape[:2]
    if batched:
        return torch.cat([roi_align_batched(features[i], boxes[i], output_size) for i in range(bsz)])
    index = torch.arange(bsz, device=boxes.device, dtype=boxes.dtype).view(bsz, 1, 1).expand(bsz, n, 1)
    rois = torch.cat([index, boxes], dim=-1).flatten(0, 1)
    return roi_align(features, rois, output_size, spatial_scale=1.0, sampling_ratio=-1, aligned=False)
