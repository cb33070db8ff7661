"""The photo with its ranked objects: translucent rank colours, outlines and rank numbers."""

from __future__ import annotations

import cv2
import numpy as np

from salrank.structures import RankedInstances
from salrank.viz.palette import DEMO_STEPS, rank_colors


def label_position(mask: np.ndarray) -> tuple[int, int]:
    """A point well inside a mask (the maximum of its distance transform), as ``(x, y)`` pixels.

    Unlike the centroid it is always inside the object, also for rings and C shapes. An empty mask
    gives the image centre.
    """
    if not mask.any():
        return mask.shape[1] // 2, mask.shape[0] // 2
    padded = np.pad(mask.astype(np.uint8), 1)  # the image border counts as outside
    dist = cv2.distanceTransform(padded, cv2.DIST_L2, 3)[1:-1, 1:-1]
    y, x = np.unravel_index(int(np.argmax(dist)), dist.shape)
    return int(x), int(y)


def draw_outlined_text(
    image: np.ndarray,
    text: str,
    center: tuple[int, int],
    scale: float,
    color: tuple[int, int, int] = (255, 255, 255),
    outline: tuple[int, int, int] = (0, 0, 0),
) -> None:
    """Draw ``text`` centred at ``center`` in place, with a dark outline so it reads on any background."""
    font = cv2.FONT_HERSHEY_DUPLEX
    thickness = max(1, int(round(scale * 1.6)))
    (tw, th), base = cv2.getTextSize(text, font, scale, thickness)
    h, w = image.shape[:2]
    x = int(np.clip(center[0] - tw / 2, 0, max(0, w - tw)))
    y = int(np.clip(center[1] + th / 2, th, max(th, h - base)))
    cv2.putText(image, text, (x, y), font, scale, outline, thickness + max(2, thickness), cv2.LINE_AA)
    cv2.putText(image, text, (x, y), font, scale, color, thickness, cv2.LINE_AA)


def overlay(
    image: np.ndarray,
    result: RankedInstances,
    alpha: float = 0.5,
    contours: bool = True,
    numbers: bool = True,
    show_scores: bool = False,
    steps: int = DEMO_STEPS,
) -> np.ndarray:
    """The photo with each ranked object tinted in its rank colour, outlined, and numbered.

    Args:
        image: RGB ``uint8`` ``(H, W, 3)``, the image the result belongs to (same size).
        result: the ranked objects.
        alpha: opacity of the colour fill (0 = photo only, 1 = solid colours).
        contours: draw each object's outline in its colour.
        numbers: draw the rank number inside each object (white with a black outline).
        show_scores: add the rank score under the number (``0.87``).
        steps: navy steps of the palette (see :func:`salrank.viz.palette.rank_palette`).

    Returns:
        A new RGB ``uint8`` ``(H, W, 3)`` array; ``image`` is not modified.
    """
    img = np.asarray(image)
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"overlay expects an RGB (H, W, 3) image, got shape {img.shape}")
    if img.shape[:2] != (result.height, result.width):
        raise ValueError(f"image is {img.shape[1]}x{img.shape[0]} but the result is for {result.width}x{result.height}")
    out = img.astype(np.float32).copy()
    colors = rank_colors(len(result), steps)
    for i in range(len(result) - 1, -1, -1):  # rank 1 ends on top
        m = result.masks[i]
        out[m] = (1.0 - alpha) * out[m] + alpha * colors[i].astype(np.float32)
    canvas = np.clip(out.round(), 0, 255).astype(np.uint8)
    size = max(result.height, result.width)
    if contours:
        thickness = max(1, int(round(size / 320)))
        for i in range(len(result) - 1, -1, -1):
            cs, _ = cv2.findContours(result.masks[i].astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
            cv2.drawContours(canvas, cs, -1, tuple(int(c) for c in colors[i]), thickness, cv2.LINE_AA)
    if numbers:
        scale = max(0.4, size / 900.0)
        for i in range(len(result)):
            x, y = label_position(result.masks[i])
            draw_outlined_text(canvas, str(i + 1), (x, y), scale)
            if show_scores:
                (_, th), _ = cv2.getTextSize("0", cv2.FONT_HERSHEY_DUPLEX, scale, 1)
                draw_outlined_text(canvas, f"{float(result.saliency[i]):.2f}", (x, y + int(th * 1.6)), scale * 0.6)
    return canvas
