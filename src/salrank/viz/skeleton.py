"""Human skeletons of pose-aware results, drawn as the official PoseSOR demo draws them.

PoseSOR's terminal demo (``demo/demo.py``) writes ``{name}_composition.png``: the rank colour map (the
"Tian" palette with 20 navy steps) with every object's predicted skeleton on top. A limb (one of the 19
COCO skeleton pairs) is drawn as a 2-pixel line when **both** its joints have visibility ``>= 0.5``, in
the colour of its index in ``jet`` with 19 steps. Skeletons are drawn from the last rank to the first, so
the most salient object's skeleton ends on top.

* :func:`draw_skeletons` draws keypoints onto any RGB image;
* :func:`skeleton_composition` (alias ``skeleton_composite``) is the official ``_composition.png``
  (colour map + skeletons); ``salrank predict`` writes it as ``skeletons/<name>.png``;
* :func:`skeleton_overlay` draws the skeletons on the photo overlay of :func:`salrank.viz.overlay`.

Differences from the official code: no crash past 24 ranks (later ranks reuse the darkest navy), and an
image with no object gives a black canvas instead of an error.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from salrank.structures import RankedInstances
from salrank.viz.colormap import rank_colormap
from salrank.viz.overlay import overlay

__all__ = [
    "COCO_SKELETON",
    "COMPOSITION_STEPS",
    "LIMB_COLORS",
    "draw_skeletons",
    "jet_colors",
    "skeleton_composite",
    "skeleton_composition",
    "skeleton_overlay",
]

COCO_SKELETON: tuple[tuple[int, int], ...] = (
    (15, 13), (13, 11), (16, 14), (14, 12), (11, 12), (5, 11), (6, 12), (5, 6), (5, 7), (6, 8),
    (7, 9), (8, 10), (1, 2), (0, 1), (0, 2), (1, 3), (2, 4), (3, 5), (4, 6),
)  # fmt: skip
"""The 19 limbs of the COCO person skeleton as 0-based joint index pairs, in the official drawing order
(COCO's ``skeleton`` field, 1-based there)."""

COMPOSITION_STEPS = 20
"""Navy steps of the palette in the official composition image (``visualize_mask`` uses 20)."""

_JET = {  # matplotlib's ``jet`` segment data: (x, y_left, y_right) per channel
    "red": ((0.0, 0.0, 0.0), (0.35, 0.0, 0.0), (0.66, 1.0, 1.0), (0.89, 1.0, 1.0), (1.0, 0.5, 0.5)),
    "green": ((0.0, 0.0, 0.0), (0.125, 0.0, 0.0), (0.375, 1.0, 1.0), (0.64, 1.0, 1.0), (0.91, 0.0, 0.0), (1.0, 0.0, 0.0)),
    "blue": ((0.0, 0.5, 0.5), (0.11, 1.0, 1.0), (0.34, 1.0, 1.0), (0.65, 0.0, 0.0), (1.0, 0.0, 0.0)),
}


def jet_colors(n: int) -> np.ndarray:
    """``uint8`` ``(n, 3)`` RGB: ``(plt.get_cmap("jet", n)(np.linspace(0, 1, n)) * 255).astype(uint8)``.

    The lookup table is built as matplotlib builds a resampled segmented colormap (linear interpolation of
    the segment data at ``linspace(0, 1, n)``), so the official demo's colours come out without matplotlib.
    """
    if n < 2:
        raise ValueError("jet_colors needs n >= 2")
    xs = np.linspace(0.0, 1.0, n)
    channels = []
    for name in ("red", "green", "blue"):
        data = np.asarray(_JET[name], dtype=np.float64)
        x, y0, y1 = data[:, 0], data[:, 1], data[:, 2]
        ind = np.searchsorted(x, xs)[1:-1]
        distance = (xs[1:-1] - x[ind - 1]) / (x[ind] - x[ind - 1])
        lut = np.concatenate([[y1[0]], distance * (y0[ind] - y1[ind - 1]) + y1[ind - 1], [y0[-1]]])
        channels.append(np.clip(lut, 0.0, 1.0))
    return (np.stack(channels, axis=1) * 255).astype(np.uint8)


LIMB_COLORS: np.ndarray = jet_colors(len(COCO_SKELETON))
"""RGB colour of each limb of :data:`COCO_SKELETON`."""


def draw_skeletons(
    image: np.ndarray, keypoints: np.ndarray, threshold: float = 0.5, width: int = 2, order: str = "last-first"
) -> np.ndarray:
    """Draw skeletons onto an RGB image.

    Args:
        image: RGB ``uint8`` ``(H, W, 3)`` (not modified).
        keypoints: ``(N, 17, 3)`` joints in rank order: ``x, y`` in pixels and a visibility probability.
        threshold: a limb is drawn when both its joints have visibility ``>= threshold``.
        width: line width in pixels.
        order: ``"last-first"`` (official: the rank-1 skeleton is drawn last, on top) or ``"first-last"``.

    Returns:
        A new RGB ``uint8`` array.
    """
    img = np.asarray(image)
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"draw_skeletons expects an RGB (H, W, 3) image, got shape {img.shape}")
    kp = np.asarray(keypoints, dtype=np.float64).reshape(-1, 17, 3)
    canvas = Image.fromarray(np.ascontiguousarray(img.astype(np.uint8)))
    draw = ImageDraw.Draw(canvas)
    people = range(len(kp) - 1, -1, -1) if order == "last-first" else range(len(kp))
    for p in people:
        joints = kp[p]
        for limb, (a, b) in enumerate(COCO_SKELETON):
            if joints[a, 2] < threshold or joints[b, 2] < threshold:
                continue
            color = tuple(int(c) for c in LIMB_COLORS[limb])
            draw.line((float(joints[a, 0]), float(joints[a, 1]), float(joints[b, 0]), float(joints[b, 1])), fill=color, width=width)
    return np.array(canvas)


def _keypoints(result: RankedInstances) -> np.ndarray:
    if result.keypoints is None:
        raise ValueError(f"result {result.image_name!r} has no keypoints (the model {result.model!r} does not predict poses)")
    return result.keypoints


def skeleton_composition(result: RankedInstances, threshold: float = 0.5, width: int = 2, steps: int = COMPOSITION_STEPS) -> np.ndarray:
    """The official ``{name}_composition.png``: the rank colour map with the predicted skeletons on top.

    Returns RGB ``uint8`` ``(H, W, 3)`` at the result's image size. Joint coordinates go through the
    official float32 round trip (``x / W`` as stored, times ``W`` when drawn) so lines land on the same
    pixels as in the official image.
    """
    kp = np.array(_keypoints(result), dtype=np.float32, copy=True)
    w, h = np.float32(result.width), np.float32(result.height)
    kp[..., 0] = (kp[..., 0] / w) * w
    kp[..., 1] = (kp[..., 1] / h) * h
    return draw_skeletons(rank_colormap(result, steps=steps), kp, threshold, width)


skeleton_composite = skeleton_composition
"""Alias of :func:`skeleton_composition` (the name :mod:`salrank.viz.render` and ``salrank predict`` use)."""


def skeleton_overlay(image: np.ndarray, result: RankedInstances, threshold: float = 0.5, width: int | None = None, **overlay_kwargs) -> np.ndarray:
    """The photo overlay of :func:`salrank.viz.overlay` (rank colours, outlines, numbers) with skeletons.

    ``width`` defaults to 2 px per 640 px of the longer image side (at least 2).
    """
    if width is None:
        width = max(2, round(max(result.height, result.width) / 320))
    return draw_skeletons(overlay(image, result, **overlay_kwargs), _keypoints(result), threshold, width)
