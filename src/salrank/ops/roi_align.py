"""RoIAlign in plain PyTorch with the exact semantics of ``torchvision.ops.roi_align``.

torchvision averages, for every output bin, a ``gh x gw`` grid of bilinear samples (``gh =
ceil(roi_height / pooled_height)`` when ``sampling_ratio <= 0``). A sample outside ``[-1, H] x [-1, W]``
counts as zero, one in ``[-1, 0]`` is clamped to the border, and the sum is divided by ``gh * gw``.

Bilinear sampling is separable and so is the out-of-range rule (a sample is dropped when its ``y``
*or* its ``x`` is out of range, i.e. the product of two indicators), so the average over a bin's sample
grid factorises into two small matrices per RoI::

    out[c, ph, pw] = sum_{i, j} Ay[ph, i] * feature[c, i, j] * Ax[pw, j] / (gh * gw)

where ``Ay[ph, i]`` sums the y-interpolation weights that the bin's sample rows put on feature row ``i``.
This is what :func:`roi_align` computes, restricted to the rows/columns a RoI touches, so it gives
torchvision's numbers (up to float summation order) without a compiled op and is differentiable.
The ``grid_sample``-free formulation also avoids ``grid_sample``'s different border rule.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor


def _axis_weights(
    start: float, bin_size: float, pooled: int, grid: int, size: int, dtype: torch.dtype, device: torch.device
) -> tuple[Tensor, int]:
    """Interpolation weights ``(pooled, window)`` of one axis and the first feature index of the window."""
    if grid <= 0:
        return torch.zeros(pooled, 1, dtype=dtype, device=device), 0
    # sample coordinates, computed in the op's dtype as the torchvision kernel does
    p = torch.arange(pooled, dtype=dtype, device=device)[:, None]
    s = torch.arange(grid, dtype=dtype, device=device)[None, :]
    start_t = torch.tensor(start, dtype=dtype, device=device)
    bin_t = torch.tensor(bin_size, dtype=dtype, device=device)
    coord = start_t + p * bin_t + (s + 0.5) * bin_t / grid  # (pooled, grid)
    valid = (coord >= -1.0) & (coord <= size)
    coord = coord.clamp(min=0.0)
    low = coord.floor().long()
    at_end = low >= size - 1
    low = torch.where(at_end, torch.full_like(low, size - 1), low)
    coord = torch.where(at_end, low.to(dtype), coord)
    high = torch.where(at_end, low, low + 1)
    frac = coord - low.to(dtype)
    w_low = (1.0 - frac) * valid
    w_high = frac * valid
    lo = int(low[valid].min()) if bool(valid.any()) else 0
    hi = int(high[valid].max()) if bool(valid.any()) else 0
    window = hi - lo + 1
    weights = torch.zeros(pooled, window, dtype=dtype, device=device)
    rows = p.long().expand_as(low)
    weights.index_put_((rows.reshape(-1), (low - lo).clamp(0, window - 1).reshape(-1)), w_low.reshape(-1), accumulate=True)
    weights.index_put_((rows.reshape(-1), (high - lo).clamp(0, window - 1).reshape(-1)), w_high.reshape(-1), accumulate=True)
    return weights, lo


def roi_align(
    features: Tensor,
    rois: Tensor | list[Tensor],
    output_size: int | tuple[int, int],
    spatial_scale: float = 1.0,
    sampling_ratio: int = -1,
    aligned: bool = False,
) -> Tensor:
    """RoIAlign with torchvision semantics.

    Args:
        features: ``(B, C, H, W)`` feature map.
        rois: ``(K, 5)`` rows ``[batch_index, x1, y1, x2, y2]``, or a list of ``(K_b, 4)`` boxes per image,
            in input-image coordinates (scaled by ``spatial_scale``).
        output_size: ``(pooled_h, pooled_w)`` or one int.
        spatial_scale: factor from box coordinates to feature coordinates (``1 / stride``).
        sampling_ratio: samples per bin side; ``<= 0`` picks ``ceil(roi_size / output_size)`` per RoI.
        aligned: shift boxes by -0.5 pixel (the "aligned" RoIAlign of Detectron2); when ``False`` RoIs are
            at least one feature pixel wide, as in the original RoIAlign.

    Returns:
        ``(K, C, pooled_h, pooled_w)``.
    """
    if isinstance(rois, (list, tuple)):
        rois = _boxes_list_to_rois(rois, features)
    ph, pw = (output_size, output_size) if isinstance(output_size, int) else output_size
    k = rois.shape[0]
    _, c, h, w = features.shape
    if k == 0:
        return features.new_zeros(0, c, ph, pw)
    offset = 0.5 if aligned else 0.0
    # Scalar arithmetic in the kernel's precision (float32 for float32/half features, as torchvision).
    ftype = np.float64 if features.dtype == torch.float64 else np.float32
    wdtype = torch.float64 if features.dtype == torch.float64 else torch.float32
    boxes = rois.detach().to(torch.float64).cpu().numpy()
    results = []
    for roi in boxes:
        b = int(roi[0])
        scale = ftype(spatial_scale)
        x1, y1, x2, y2 = (ftype(v) * scale - ftype(offset) for v in roi[1:5].astype(ftype))
        roi_w, roi_h = x2 - x1, y2 - y1
        if not aligned:
            roi_w, roi_h = max(roi_w, ftype(1.0)), max(roi_h, ftype(1.0))
        bin_h, bin_w = roi_h / ftype(ph), roi_w / ftype(pw)
        gh = sampling_ratio if sampling_ratio > 0 else math.ceil(roi_h / ftype(ph))
        gw = sampling_ratio if sampling_ratio > 0 else math.ceil(roi_w / ftype(pw))
        count = max(gh * gw, 1)
        y1, x1, bin_h, bin_w = float(y1), float(x1), float(bin_h), float(bin_w)
        wy, y0 = _axis_weights(y1, bin_h, ph, gh, h, wdtype, features.device)
        wx, x0 = _axis_weights(x1, bin_w, pw, gw, w, wdtype, features.device)
        wy, wx = wy.to(features.dtype), wx.to(features.dtype)
        window = features[b, :, y0 : y0 + wy.shape[1], x0 : x0 + wx.shape[1]]
        if window.shape[1] != wy.shape[1] or window.shape[2] != wx.shape[1]:  # no valid sample at all
            results.append(features.new_zeros(c, ph, pw))
            continue
        # (ph, h) @ (c, h, w) @ (w, pw); two matmuls are much faster than the equivalent einsum on CPU
        pooled = torch.matmul(torch.matmul(wy, window), wx.t()) / count
        results.append(pooled)
    return torch.stack(results)


def _boxes_list_to_rois(boxes: list[Tensor] | tuple[Tensor, ...], like: Tensor) -> Tensor:
    rows = []
    for i, b in enumerate(boxes):
        idx = torch.full((b.shape[0], 1), float(i), dtype=b.dtype, device=b.device)
        rows.append(torch.cat([idx, b], dim=1))
    if not rows:
        return like.new_zeros(0, 5)
    return torch.cat(rows, dim=0)
