"""Overlap counting (both back ends), RLE decoding and the exact correlation helpers of salrank.evaluation."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.stats
from pycocotools import mask as mask_utils

from salrank.evaluation.correlation import average_ranks, min_ranks, numpy_pearson, scipy_spearman
from salrank.evaluation.overlaps import (
    MaskSet,
    decode_rle_fast,
    overlap_counts,
    rle_counts,
    rle_foreground_indices,
)

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


def random_masks(rng: np.random.Generator, n: int, h: int, w: int) -> np.ndarray:
    masks = np.zeros((n, h, w), bool)
    for i in range(n):
        kind = rng.integers(4)
        if kind == 0:
            masks[i] = rng.random((h, w)) < rng.random()
        elif kind == 1:
            y0, x0 = rng.integers(0, h), rng.integers(0, w)
            masks[i, y0 : y0 + rng.integers(1, h + 1), x0 : x0 + rng.integers(1, w + 1)] = True
        elif kind == 2:
            masks[i] = masks[rng.integers(i)] if i else True  # duplicates / full masks
        # kind 3: empty
    return masks


def encode(masks: np.ndarray) -> list[dict]:
    return [mask_utils.encode(np.asfortranarray(m.astype(np.uint8))) for m in masks]


def brute(gt: np.ndarray, pred: np.ndarray) -> dict:
    ug, up = gt.any(0), pred.any(0)
    return {
        "inter": np.array([[np.logical_and(g, p).sum() for p in pred] for g in gt], np.int64).reshape(len(gt), len(pred)),
        "gt_areas": gt.reshape(len(gt), -1).sum(1),
        "pred_areas": pred.reshape(len(pred), -1).sum(1),
        "gt_union": ug.sum(),
        "pred_union": up.sum(),
        "union_inter": np.logical_and(ug, up).sum(),
    }


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("backend", ["dense", "rle", "mixed"])
def test_overlap_counts_match_brute_force(seed: int, backend: str) -> None:
    rng = np.random.default_rng(seed)
    h, w = (int(v) for v in rng.integers(1, 90, 2))  # odd sizes, not multiples of 64 pixels
    n, m = int(rng.integers(1, 6)), int(rng.integers(0, 7))
    gt, pred = random_masks(rng, n, h, w), random_masks(rng, m, h, w)
    if backend == "dense":
        g, p = MaskSet.from_dense(gt), MaskSet.from_any(pred, h, w)
    elif backend == "rle":
        g, p = MaskSet.from_rles(encode(gt)), MaskSet.from_any(encode(pred), h, w)
    else:
        g, p = MaskSet.from_rles(encode(gt)), MaskSet.from_any(pred, h, w)
    c = overlap_counts(g, p)
    ref = brute(gt, pred)
    np.testing.assert_array_equal(c.inter, ref["inter"])
    np.testing.assert_array_equal(c.gt_areas, ref["gt_areas"])
    np.testing.assert_array_equal(c.pred_areas, ref["pred_areas"])
    assert (c.gt_union_area, c.pred_union_area, c.union_inter) == (ref["gt_union"], ref["pred_union"], ref["union_inter"])
    np.testing.assert_array_equal(c.union, ref["gt_areas"][:, None] + ref["pred_areas"][None, :] - ref["inter"])


def test_large_rle_intersections_are_exact() -> None:
    """The integer intersection recovered from pycocotools' IoU is exact at full resolution."""
    rng = np.random.default_rng(7)
    gt, pred = random_masks(rng, 5, 480, 640), random_masks(rng, 8, 480, 640)
    c = overlap_counts(MaskSet.from_rles(encode(gt)), MaskSet.from_rles(encode(pred)))
    np.testing.assert_array_equal(c.inter, brute(gt, pred)["inter"])


def test_mask_inputs_are_binarised_like_the_official_code() -> None:
    soft = np.array([[[0.2, 0.5, 0.51, 1.0]]])
    assert MaskSet.from_any(soft).areas.tolist() == [2]  # > 0.5
    assert MaskSet.from_any(np.array([[[0, 255, 1, 0]]], np.uint8)).areas.tolist() == [2]
    assert MaskSet.from_any([np.eye(3), np.ones((3, 3))]).areas.tolist() == [3, 9]
    empty = MaskSet.from_any([], 4, 5)
    assert len(empty) == 0 and (empty.height, empty.width) == (4, 5)
    with pytest.raises(ValueError, match="height and width"):
        MaskSet.from_any([])
    with pytest.raises(ValueError, match="differ"):
        overlap_counts(MaskSet.from_any(np.ones((1, 3, 3))), MaskSet.from_any(np.ones((1, 3, 4))))


@pytest.mark.parametrize("seed", range(6))
def test_rle_decoders_match_pycocotools(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    h, w = (int(v) for v in rng.integers(1, 120, 2))
    for m in random_masks(rng, 6, h, w):
        rle = mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))
        ref = mask_utils.decode(rle).astype(bool)
        for variant in (rle, {"size": rle["size"], "counts": rle["counts"].decode()}):
            np.testing.assert_array_equal(decode_rle_fast(variant), ref)
            np.testing.assert_array_equal(rle_foreground_indices(variant), np.flatnonzero(ref.T.reshape(-1)))
        counts = rle_counts(rle)
        assert counts.sum() == h * w
        uncompressed = {"size": [h, w], "counts": counts.tolist()}
        np.testing.assert_array_equal(decode_rle_fast(uncompressed), ref)
        assert MaskSet.from_rles([uncompressed]).areas.tolist() == [int(ref.sum())]


def test_rle_counts_with_large_and_negative_deltas() -> None:
    m = np.zeros((480, 640), np.uint8)
    m[0:480:2, 5] = 1  # many short runs
    m[:, 600:] = 1  # one long run after short ones (large positive delta)
    m[100:101, 300] = 1  # then short again (negative delta)
    rle = mask_utils.encode(np.asfortranarray(m))
    np.testing.assert_array_equal(decode_rle_fast(rle), m.astype(bool))


# ---------------------------------------------------------------------------------------------- correlation
@pytest.mark.parametrize("seed", range(20))
def test_ranks_match_scipy_and_the_irsr_formula(seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 5, int(rng.integers(1, 12))).astype(float)
    np.testing.assert_array_equal(average_ranks(x), scipy.stats.rankdata(x))
    assert min_ranks(x).tolist() == [sorted(x.tolist()).index(a) + 1 for a in x.tolist()]


@pytest.mark.parametrize("seed", range(200))
def test_spearman_and_pearson_are_bit_identical_to_scipy_and_numpy(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 11))
    x = rng.integers(0, n + 1, n).tolist()
    y = rng.integers(0, 4 if seed % 3 == 0 else n + 1, n).tolist()
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref_s = scipy.stats.spearmanr(x, y).statistic
        ref_p = np.corrcoef(x, y)[0, 1]
    got_s, got_p = scipy_spearman(x, y), numpy_pearson(x, y)
    if np.isnan(ref_s):
        assert np.isnan(got_s)
    else:
        assert got_s == ref_s  # bit-identical
    if np.isnan(ref_p):
        assert np.isnan(got_p)
    else:
        assert got_p == ref_p


def test_correlation_edge_cases() -> None:
    assert np.isnan(numpy_pearson([3], [1]))
    assert np.isnan(scipy_spearman([1], [2]))
    assert np.isnan(scipy_spearman([1, 1, 1], [1, 2, 3]))  # constant input
    assert scipy_spearman([1, 2, 3], [3, 2, 1]) == -1.0
