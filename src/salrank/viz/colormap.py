"""The rank colour map: each object filled with its rank's colour on black, as the official demos draw it."""

from __future__ import annotations

import numpy as np

from salrank.structures import RankedInstances
from salrank.viz.palette import DEMO_STEPS, rank_colors


def rank_colormap(result: RankedInstances, steps: int = DEMO_STEPS) -> np.ndarray:
    """``uint8`` ``(H, W, 3)`` RGB colour map of a result, at the result's image size.

    Objects are painted from the last rank to the first, so where masks overlap the more salient
    object is on top (the official order). Pixels of no object are black.
    """
    canvas = np.zeros((result.height, result.width, 3), np.uint8)
    colors = rank_colors(len(result), steps)
    for i in range(len(result) - 1, -1, -1):
        canvas[result.masks[i]] = colors[i]
    return canvas
