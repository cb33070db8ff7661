"""One entry point for every picture of a result: ``render(result, image, kind)``.

The kinds are the pictures ``salrank predict`` writes and ``RankedInstances.plot()`` returns:

========== =====================================================================================
kind       picture
========== =====================================================================================
colormap   the official rank colour map at the image's size (:func:`salrank.viz.rank_colormap`)
overlay    the photo with rank colours, outlines and rank numbers (:func:`salrank.viz.overlay`),
           with a caption band naming the model underneath (``caption=False`` for none)
skeleton   the colour map with the predicted skeletons on top (PoseSOR's ``_composition.png``);
           needs keypoints
rank_map   the ASSR grey rank map (:func:`salrank.io.rank_maps.render_rank_map`), as RGB
panel      overlay and colour map side by side (and the skeleton composite when there are keypoints)
========== =====================================================================================

Everything is RGB ``uint8``; nothing is shown or written here.
"""

from __future__ import annotations

import cv2
import numpy as np

from salrank.structures import RankedInstances
from salrank.viz.colormap import rank_colormap
from salrank.viz.overlay import overlay

KINDS = ("overlay", "colormap", "skeleton", "rank_map", "panel")


def model_caption(result: RankedInstances) -> str:
    """``"salrank-default - 6 objects"``: which model produced a result, for captions and titles."""
    n = len(result)
    return f"{result.model or 'unknown model'} - {n} object{'s' if n != 1 else ''}"


def add_caption(image: np.ndarray, text: str) -> np.ndarray:
    """The image with a dark band underneath holding ``text`` (a new array; the image is not covered)."""
    h, w = image.shape[:2]
    band = max(16, int(round(h / 22)))
    scale = band / 36.0
    font = cv2.FONT_HERSHEY_SIMPLEX
    thickness = max(1, int(round(scale * 1.5)))
    # shorten the text until it fits the width
    full = text
    for n in range(len(full), -1, -1):
        text = full if n == len(full) else (full[:n].rstrip() + "..." if n else "")
        (tw, th), _ = cv2.getTextSize(text or "x", font, scale, thickness)
        if tw <= w - 8:
            break
    out = np.zeros((h + band, w, 3), np.uint8)
    out[:h] = image
    out[h:] = (32, 32, 32)
    cv2.putText(out, text, (4, h + (band + th) // 2), font, scale, (235, 235, 235), thickness, cv2.LINE_AA)
    return out


def skeleton_available() -> bool:
    """Whether the skeleton drawing of :mod:`salrank.viz.skeleton` is installed in this version."""
    try:
        from salrank.viz import skeleton  # noqa: F401
    except ImportError:
        return False
    return True


def skeleton_composite(result: RankedInstances, image: np.ndarray | None = None) -> np.ndarray | None:
    """PoseSOR's composite (colour map + skeletons), or ``None`` without keypoints or skeleton drawing."""
    if result.keypoints is None or not skeleton_available():
        return None
    from salrank.viz import skeleton

    return skeleton.skeleton_composition(result)


def render(
    result: RankedInstances,
    image: np.ndarray | None = None,
    kind: str = "overlay",
    *,
    caption: bool | str = True,
    show_scores: bool = False,
    rank_map_style: str = "assr",
) -> np.ndarray:
    """A picture of ``result`` as an RGB ``uint8`` array (see the module docstring for the kinds).

    Args:
        result: the ranked objects.
        image: the RGB photo the result belongs to (needed for ``overlay`` and ``panel``).
        kind: one of :data:`KINDS`.
        caption: ``True`` adds the model name and object count under overlays and panels, a string
            adds that text, ``False`` nothing.
        show_scores: write each object's rank score under its number (overlays).
        rank_map_style: ``"assr"`` or ``"seqrank"`` grey levels for ``rank_map``.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown picture kind {kind!r}; choose one of {', '.join(KINDS)}")
    text = model_caption(result) if caption is True else (caption or "")
    if kind == "colormap":
        return rank_colormap(result)
    if kind == "rank_map":
        from salrank.io.rank_maps import render_rank_map

        grey = render_rank_map(result, rank_map_style)
        return np.repeat(grey[:, :, None], 3, axis=2)
    if kind == "skeleton":
        composite = skeleton_composite(result, image)
        if composite is None:
            why = "the result has no keypoints" if result.keypoints is None else "salrank.viz.skeleton is not available"
            raise ValueError(f"cannot draw skeletons: {why}")
        return composite
    if image is None:
        raise ValueError(f"the {kind!r} picture needs the photo: pass image=")
    photo = _as_rgb(image)
    picture = overlay(photo, result, show_scores=show_scores)
    if kind == "panel":
        parts = [picture, rank_colormap(result)]
        composite = skeleton_composite(result, photo)
        if composite is not None:
            parts.append(composite)
        gap = np.full((result.height, max(2, result.width // 100), 3), 255, np.uint8)
        row: list[np.ndarray] = []
        for part in parts:
            row.extend([part, gap])
        picture = np.concatenate(row[:-1], axis=1)
    return add_caption(picture, text) if text else picture


def _as_rgb(image: object) -> np.ndarray:
    """An RGB ``uint8`` array from an array, a PIL image or a path (EXIF orientation honoured)."""
    if isinstance(image, np.ndarray) and image.ndim == 3 and image.shape[2] == 3 and image.dtype == np.uint8:
        return image
    from salrank.utils.io import read_image

    return read_image(image)


def fit_within(image: np.ndarray, max_side: int) -> np.ndarray:
    """``image`` scaled down (area interpolation) so that its longer side is at most ``max_side``."""
    h, w = image.shape[:2]
    if max(h, w) <= max_side:
        return image
    scale = max_side / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)
