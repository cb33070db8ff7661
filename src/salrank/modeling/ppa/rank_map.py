"""PPA's grey-level rank map, as the official ``SORVisualizer`` paints it for the ASSR evaluation.

:func:`salrank.io.rank_maps.render_rank_map` (``style="assr"``) gives the i-th ranked object the i-th
ASSR grey (255, 229, 204, 178, 153) and paints by descending mask area. PPA's visualiser paints the same
way but takes the grey from the object's *rank class* ``r`` (``(r + 6) / 10``), so when the greedy
read-out skips a class (e.g. classes 4, 3, 1 are given and 2 is not) the official map keeps the gap
(255, 229, 178) where the generic renderer would close it (255, 229, 204). :func:`render_ppa_rank_map`
keeps the gap; otherwise it is the generic renderer. The ``assr`` protocol's SOR (Spearman on grey
values) is the same either way; its graded MAE is not.

Not reproduced (see :mod:`salrank.io.rank_maps`): matplotlib's rounding of the fill greys (230 and 179
instead of 229 and 178), the dark anti-aliased polygon outlines and the anti-aliased edges.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from salrank.errors import InputError
from salrank.io.rank_maps import ASSR_GREY_LEVELS, encode_png
from salrank.structures import RankedInstances
from salrank.utils.io import write_bytes

__all__ = ["render_ppa_rank_map", "save_ppa_rank_map"]


def render_ppa_rank_map(result: RankedInstances) -> np.ndarray:
    """``uint8`` ``(H, W)`` rank map of a PPA result: grey by official rank class, largest object first.

    Uses ``result.extras["rank_class"]`` (4 = most salient); results without it (e.g. read back from a
    file) are painted by position, like ``render_rank_map(result, "assr")``. Objects of equal area are
    painted in detection order (``extras["detection_index"]``), as the official visualiser's stable
    sort of the detections does.
    """
    n = min(len(result), len(ASSR_GREY_LEVELS))
    rank_class = np.asarray(result.extras.get("rank_class", np.arange(len(ASSR_GREY_LEVELS) - 1, -1, -1)[:n]))[:n]
    if rank_class.size and (rank_class.min() < 0 or rank_class.max() >= len(ASSR_GREY_LEVELS)):
        raise ValueError(f"rank classes must be in 0..{len(ASSR_GREY_LEVELS) - 1}, got {rank_class.tolist()}")
    out = np.zeros((result.height, result.width), np.uint8)
    masks = result.masks[:n]
    areas = masks.reshape(n, -1).sum(axis=1)
    detection_order = np.asarray(result.extras.get("detection_index", np.arange(n)))[:n]
    for i in np.lexsort((detection_order, -areas)):
        out[masks[i]] = ASSR_GREY_LEVELS[len(ASSR_GREY_LEVELS) - 1 - int(rank_class[i])]
    return out


def save_ppa_rank_map(result: RankedInstances, path: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
    """Write :func:`render_ppa_rank_map` as a grey PNG (atomically), for ``salrank eval --protocol assr``."""
    p = Path(path)
    if p.exists() and not overwrite:
        raise InputError("refusing to overwrite an existing rank map; pass overwrite=True", p, result.image_name)
    write_bytes(p, encode_png(render_ppa_rank_map(result)))
    return p
