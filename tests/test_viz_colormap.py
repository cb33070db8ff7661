"""Rank colour maps at the image's own size, painted last rank first."""

from __future__ import annotations

import numpy as np
import pytest

from salrank.structures import RankedInstances
from salrank.viz import rank_colormap
from salrank.viz.palette import rank_color


def _result(h: int, w: int) -> RankedInstances:
    a = np.zeros((h, w), bool)
    a[h // 4 : h // 2, w // 4 : w // 2] = True
    b = np.zeros((h, w), bool)
    b[h // 3 : 3 * h // 4, w // 3 : 3 * w // 4] = True  # overlaps a
    return RankedInstances.from_masks(np.stack([a, b]), image_name="x")


@pytest.mark.parametrize("size", [(480, 640), (37, 91), (300, 200), (1, 1)])
def test_size_and_dtype(size: tuple[int, int]) -> None:
    h, w = size
    res = RankedInstances.from_masks(np.ones((1, h, w), bool)) if h * w == 1 else _result(h, w)
    cm = rank_colormap(res)
    assert cm.shape == (h, w, 3) and cm.dtype == np.uint8


def test_rank_one_on_top_and_background_black() -> None:
    res = _result(120, 160)
    cm = rank_colormap(res)
    overlap = res.masks[0] & res.masks[1]
    only_b = res.masks[1] & ~res.masks[0]
    assert overlap.any() and only_b.any()
    assert (cm[overlap] == rank_color(1)).all()
    assert (cm[only_b] == rank_color(2)).all()
    assert (cm[~(res.masks[0] | res.masks[1])] == 0).all()


def test_many_ranks_and_empty() -> None:
    h, w = 10, 200
    masks = np.zeros((120, h, w), bool)
    for i in range(120):
        masks[i, :, i] = True
    cm = rank_colormap(RankedInstances.from_masks(masks))
    assert tuple(cm[0, 0]) == rank_color(1) and tuple(cm[0, 119]) == rank_color(104)
    empty = rank_colormap(RankedInstances.empty("e", 5, 7))
    assert empty.shape == (5, 7, 3) and not empty.any()
