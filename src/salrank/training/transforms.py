"""Training-time geometry: square and shortest-edge resizing, horizontal flips (keypoints included).

All functions work on numpy arrays in the stored pixel layout of the image (no EXIF rotation) and keep
keypoints and boxes **normalised** (``x / W``, ``y / H``), as the PoseSOR mapper stores them, so a resize
never changes them.

* :func:`resize_square`: SeqRank/PoseSOR's ``albumentations.Resize(S, S)``: bilinear for the image,
  nearest for masks, aspect ratio not kept.
* :func:`resize_shortest_edge`: detectron2's ``ResizeShortestEdge`` (PPA): the short side becomes
  ``size`` unless the long side would exceed ``max_size``.
* :func:`hflip`: mirror image, masks, boxes and keypoints. **Joint swap**: a mirrored person's left wrist
  is where a right wrist would be, so COCO's left/right joints must swap indices
  (:data:`FLIP_PERMUTATION`). The official PoseSOR mapper mirrors x and *forgets the swap*, so half of
  its training samples teach "left" for right limbs; ``swap_joints=False`` reproduces that.
"""

from __future__ import annotations

import numpy as np

from salrank.structures import COCO_KEYPOINT_NAMES

__all__ = ["FLIP_PERMUTATION", "hflip", "resize_masks", "resize_shortest_edge", "resize_square", "shortest_edge_size"]


def _flip_permutation() -> tuple[int, ...]:
    index = {name: i for i, name in enumerate(COCO_KEYPOINT_NAMES)}
    perm = []
    for name in COCO_KEYPOINT_NAMES:
        if name.startswith("left_"):
            perm.append(index["right_" + name[5:]])
        elif name.startswith("right_"):
            perm.append(index["left_" + name[6:]])
        else:
            perm.append(index[name])
    return tuple(perm)


FLIP_PERMUTATION: tuple[int, ...] = _flip_permutation()
"""``flipped[j] = original[FLIP_PERMUTATION[j]]``: left and right COCO joints exchanged (nose stays)."""


def resize_image(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bilinear resize of an ``(H, W, 3)`` image (OpenCV ``INTER_LINEAR``, as albumentations)."""
    import cv2

    if image.shape[:2] == (height, width):
        return image
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR)


def resize_masks(masks: np.ndarray, height: int, width: int) -> np.ndarray:
    """Nearest-neighbour resize of ``(N, H, W)`` binary masks (albumentations' mask interpolation)."""
    import cv2

    if masks.shape[1:] == (height, width):
        return masks
    if len(masks) == 0:
        return np.zeros((0, height, width), masks.dtype)
    out = np.empty((len(masks), height, width), masks.dtype)
    for k, m in enumerate(masks):
        out[k] = cv2.resize(m, (width, height), interpolation=cv2.INTER_NEAREST)
    return out


def resize_square(image: np.ndarray, masks: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Image and masks resized to ``size x size`` (aspect ratio not kept)."""
    return resize_image(image, size, size), resize_masks(masks, size, size)


def shortest_edge_size(height: int, width: int, size: int, max_size: int) -> tuple[int, int]:
    """detectron2's ``ResizeShortestEdge.get_output_shape``: ``(new_h, new_w)``."""
    scale = size / min(height, width)
    new_h, new_w = (size, scale * width) if height < width else (scale * height, size)
    if max(new_h, new_w) > max_size:
        rescale = max_size / max(new_h, new_w)
        new_h, new_w = new_h * rescale, new_w * rescale
    return int(new_h + 0.5), int(new_w + 0.5)


def resize_shortest_edge(image: np.ndarray, masks: np.ndarray, size: int, max_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Image and masks resized so that the short side is ``size`` (long side at most ``max_size``)."""
    h, w = shortest_edge_size(image.shape[0], image.shape[1], size, max_size)
    return resize_image(image, h, w), resize_masks(masks, h, w)


def hflip(
    image: np.ndarray,
    masks: np.ndarray,
    boxes: np.ndarray | None = None,
    keypoints: np.ndarray | None = None,
    extra_masks: np.ndarray | None = None,
    swap_joints: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None, np.ndarray | None]:
    """Mirror a sample left-right.

    Args:
        image: ``(H, W, 3)``.
        masks: ``(N, H, W)``.
        boxes: ``(N, 4)`` normalised ``x1, y1, x2, y2``.
        keypoints: ``(N, 17, 3)`` normalised ``x, y`` and visibility.
        extra_masks: more ``(M, H, W)`` maps to mirror (PoseSOR's next-object targets).
        swap_joints: exchange left/right joint indices (see the module docstring).

    Returns:
        ``(image, masks, boxes, keypoints, extra_masks)`` mirrored (new arrays).
    """
    image = np.ascontiguousarray(image[:, ::-1])
    masks = np.ascontiguousarray(masks[:, :, ::-1])
    if extra_masks is not None:
        extra_masks = np.ascontiguousarray(extra_masks[:, :, ::-1])
    if boxes is not None:
        boxes = boxes.copy()
        boxes[:, [0, 2]] = 1.0 - boxes[:, [2, 0]]
    if keypoints is not None:
        keypoints = keypoints.copy()
        keypoints[..., 0] = 1.0 - keypoints[..., 0]
        if swap_joints:
            keypoints = keypoints[:, list(FLIP_PERMUTATION)]
    return image, masks, boxes, keypoints, extra_masks
