"""Overlay of ranks on the photo: shape, purity, colours and readable numbers inside objects."""

from __future__ import annotations

import numpy as np
import pytest

from salrank.structures import RankedInstances
from salrank.viz import label_position, overlay
from salrank.viz.palette import rank_color


def _scene() -> tuple[np.ndarray, RankedInstances]:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (90, 130, 3), dtype=np.uint8)
    ring = np.zeros((90, 130), bool)
    yy, xx = np.mgrid[:90, :130]
    r = np.hypot(yy - 45, xx - 40)
    ring[(r > 15) & (r < 30)] = True  # centroid is outside the ring
    box = np.zeros((90, 130), bool)
    box[20:70, 85:125] = True
    return image, RankedInstances.from_masks(np.stack([ring, box]), image_name="s")


def test_shape_dtype_and_input_untouched() -> None:
    image, res = _scene()
    before = image.copy()
    out = overlay(image, res, show_scores=True)
    assert out.shape == image.shape and out.dtype == np.uint8
    assert (image == before).all()
    assert not (out == image).all()


def test_fill_colour_and_alpha() -> None:
    image = np.full((40, 40, 3), 100, np.uint8)
    mask = np.zeros((1, 40, 40), bool)
    mask[0, 5:35, 5:35] = True
    res = RankedInstances.from_masks(mask)
    out = overlay(image, res, alpha=1.0, contours=False, numbers=False)
    assert (out[mask[0]] == rank_color(1)).all() and (out[~mask[0]] == 100).all()
    half = overlay(image, res, alpha=0.5, contours=False, numbers=False)
    expected = np.round(0.5 * 100 + 0.5 * np.array(rank_color(1))).astype(np.uint8)
    assert (half[20, 20] == expected).all()


def test_label_inside_object_even_for_a_ring() -> None:
    _, res = _scene()
    for m in res.masks:
        x, y = label_position(m)
        assert m[y, x]


def test_numbers_are_drawn_with_outline() -> None:
    image = np.full((120, 120, 3), 128, np.uint8)
    mask = np.zeros((1, 120, 120), bool)
    mask[10:110, 10:110] = True
    res = RankedInstances.from_masks(mask)
    plain = overlay(image, res, numbers=False, contours=False)
    numbered = overlay(image, res, numbers=True, contours=False)
    diff = np.any(plain != numbered, axis=2)
    assert diff[40:80, 40:80].any()  # the digit is near the middle
    lum = numbered[diff].astype(int).sum(1) / 3
    assert lum.max() >= 240 and lum.min() <= 80  # a white digit with a dark outline


def test_size_mismatch_is_an_error() -> None:
    image, res = _scene()
    with pytest.raises(ValueError, match="130x90"):
        overlay(image[:50], res)
