"""Back to the original image: detectron2's ``detector_postprocess`` and ``paste_masks_in_image``.

``detector_postprocess`` scales the boxes from the network input to the requested output size, clips
them to it, drops boxes that became empty (width or height <= 0) and pastes every 28x28 mask
probability into its (scaled, clipped) box: each output pixel centre is mapped into the box's
normalised coordinates and the mask is sampled there bilinearly (``grid_sample``, zero padding,
``align_corners=False``), then thresholded with ``>= 0.5``. Pasting into the *clipped* box squeezes the
mask of a box that extends past the image border, exactly as the official pipeline does.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from salrank.ops.boxes import clip_boxes, nonempty_boxes, scale_boxes

__all__ = ["paste_mask", "paste_masks_in_image", "postprocess_boxes"]


def postprocess_boxes(boxes: Tensor, input_hw: tuple[int, int], output_hw: tuple[int, int]) -> tuple[Tensor, Tensor]:
    """Scale boxes from ``input_hw`` to ``output_hw`` and clip them there.

    Returns the boxes and the boolean mask of the non-empty ones (the detections detectron2 keeps).
    """
    scale_x = output_hw[1] / input_hw[1]
    scale_y = output_hw[0] / input_hw[0]
    out = clip_boxes(scale_boxes(boxes, scale_x, scale_y), output_hw[0], output_hw[1])
    return out, nonempty_boxes(out)


def paste_mask(mask: Tensor, box: Tensor, image_hw: tuple[int, int], threshold: float = 0.5) -> tuple[Tensor, tuple[slice, slice]]:
    """Paste one ``(M, M)`` probability map into ``box``; returns the binary crop and where it goes.

    Only the window ``[floor(x1) - 1, ceil(x2) + 1) x [floor(y1) - 1, ceil(y2) + 1)`` (inside the
    image) can be non-zero; it is computed and returned with its slices, as detectron2 does on CPU.
    """
    img_h, img_w = image_hw
    x0_int = int(torch.clamp(box[0].floor() - 1, min=0))
    y0_int = int(torch.clamp(box[1].floor() - 1, min=0))
    x1_int = int(torch.clamp(box[2].ceil() + 1, max=img_w))
    y1_int = int(torch.clamp(box[3].ceil() + 1, max=img_h))
    x0, y0, x1, y1 = box[0], box[1], box[2], box[3]
    ys = torch.arange(y0_int, y1_int, device=mask.device, dtype=torch.float32) + 0.5
    xs = torch.arange(x0_int, x1_int, device=mask.device, dtype=torch.float32) + 0.5
    ys = (ys - y0) / (y1 - y0) * 2 - 1
    xs = (xs - x0) / (x1 - x0) * 2 - 1
    grid = torch.stack((xs[None, :].expand(len(ys), len(xs)), ys[:, None].expand(len(ys), len(xs))), dim=2)
    probs = F.grid_sample(mask[None, None].float(), grid[None].to(torch.float32), align_corners=False)[0, 0]
    return probs >= threshold, (slice(y0_int, y1_int), slice(x0_int, x1_int))


def paste_masks_in_image(masks: Tensor, boxes: Tensor, image_hw: tuple[int, int], threshold: float = 0.5) -> Tensor:
    """``bool`` ``(N, H, W)`` masks from ``(N, M, M)`` probabilities and ``(N, 4)`` boxes in image pixels."""
    out = torch.zeros((masks.shape[0], *image_hw), dtype=torch.bool, device=masks.device)
    for i in range(masks.shape[0]):
        crop, (sy, sx) = paste_mask(masks[i], boxes[i], image_hw, threshold)
        out[i, sy, sx] = crop
    return out
