"""The official "Tian" rank palette, checked value by value and against an official SeqRank demo output."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import shared_dir

from salrank.viz.palette import NAVY, RANK_COLORS_TOP4, rank_color, rank_colors, rank_palette


def test_top_four_colours() -> None:
    assert rank_color(1) == (234, 87, 61)
    assert rank_color(2) == (251, 192, 99)
    assert rank_color(3) == (100, 176, 188)
    assert rank_color(4) == (68, 102, 153)


def test_navy_tail_is_truncated_scaling() -> None:
    table = rank_palette(100)
    assert table.shape == (104, 3) and table.dtype == np.uint8
    assert tuple(table[4]) == NAVY  # x = 1.0
    xs = np.linspace(1.0, 0.2, 100)
    assert tuple(table[5]) == tuple(int(c * xs[1]) for c in NAVY)  # truncation, not rounding
    assert tuple(table[-1]) == tuple(int(c * 0.2) for c in NAVY)
    # darker and darker
    assert (np.diff(table[4:].astype(int).sum(1)) <= 0).all()


def test_ranks_past_the_table_reuse_the_last_colour() -> None:
    assert rank_color(500, steps=20) == rank_color(24, steps=20)
    colors = rank_colors(30, steps=20)
    assert (colors[24:] == colors[23]).all()


def test_bad_rank() -> None:
    with pytest.raises(ValueError):
        rank_color(0)


def test_official_colormap_uses_exactly_these_colours() -> None:
    path = shared_dir() / "reference" / "official-outputs" / "seqrank_colormap_COCO_val2014_000000502220.png"
    if not path.is_file():
        pytest.skip(f"official SeqRank demo output not found at {path}")
    from PIL import Image

    ref = np.asarray(Image.open(path).convert("RGB"))
    colours = {tuple(int(v) for v in c) for c in np.unique(ref.reshape(-1, 3), axis=0)}
    assert colours == {(0, 0, 0), *RANK_COLORS_TOP4}
