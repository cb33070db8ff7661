"""RankedInstances storage (dense or RLE), batched RLE parsing and the plain-data torch loader."""

import os

import numpy as np
import pytest
import torch
from pycocotools import mask as mask_utils

from salrank.errors import InputError
from salrank.structures import RankedInstances
from salrank.utils.io import load_torch_plain_data
from salrank.utils.masks import decode_rles, masks_to_boxes, rle_counts, rle_counts_many, rles_to_boxes, validate_rles


def _masks(seed: int = 0, n: int = 5, h: int = 23, w: int = 31) -> np.ndarray:
    rng = np.random.default_rng(seed)
    m = rng.random((n, h, w)) < rng.random((n, 1, 1))
    m[0] = False  # an empty mask
    return m


def test_rle_backed_result_equals_dense_and_decodes_lazily():
    dense = RankedInstances.from_masks(_masks(), image_name="im", scores=[0.9, 0.8, 0.7, 0.6, 0.5])
    lazy = RankedInstances.from_rles(dense.to_rles(), image_name="im", scores=dense.scores)
    assert not lazy.has_dense_masks
    np.testing.assert_array_equal(lazy.boxes, dense.boxes)  # tight boxes from the RLEs, no decoding
    assert not lazy.has_dense_masks
    np.testing.assert_array_equal(lazy[2].mask, dense.masks[2])  # one instance decodes one mask
    assert not lazy.has_dense_masks
    assert lazy == dense
    assert lazy.has_dense_masks
    sub = lazy.select([3, 1])
    np.testing.assert_array_equal(sub.masks, dense.masks[[3, 1]])
    assert [r["counts"] for r in sub.to_rles()] == [r["counts"] for r in dense.select([3, 1]).to_rles()]


def test_constructor_needs_exactly_one_mask_storage():
    with pytest.raises(ValueError):
        RankedInstances("x", 4, 4)
    with pytest.raises(ValueError):
        RankedInstances("x", 4, 4, masks=np.zeros((0, 4, 4), bool), rles=[])
    with pytest.raises(ValueError, match="size"):
        RankedInstances("x", 4, 5, rles=RankedInstances.from_masks(np.ones((1, 4, 4), bool)).to_rles())


def test_rles_to_boxes_matches_dense_boxes():
    m = _masks(1, n=12, h=40, w=17)
    rles = [mask_utils.encode(np.asfortranarray(x.astype(np.uint8))) for x in m]
    np.testing.assert_array_equal(rles_to_boxes(rles), masks_to_boxes(m))


def test_batched_rle_parsing_matches_single_parsing_and_pycocotools():
    rng = np.random.default_rng(3)
    masks = [(rng.random(tuple(rng.integers(1, 50, 2))) < rng.random()).astype(np.uint8) for _ in range(60)]
    masks += [np.zeros((7, 9), np.uint8), np.ones((7, 9), np.uint8)]
    rles = [mask_utils.encode(np.asfortranarray(m)) for m in masks]
    for got, rle in zip(rle_counts_many(rles), rles):
        np.testing.assert_array_equal(got, rle_counts(rle))
    same = [mask_utils.encode(np.asfortranarray(x)) for x in (rng.random((6, 48, 64)) < 0.4).astype(np.uint8)]
    np.testing.assert_array_equal(decode_rles(same), mask_utils.decode(same).transpose(2, 0, 1))


def test_validate_rles_names_the_bad_one():
    good = mask_utils.encode(np.asfortranarray(np.ones((4, 4), np.uint8)))
    bad = {"size": [4, 5], "counts": good["counts"]}
    validate_rles([good, good])
    with pytest.raises(ValueError, match="RLE 1"):
        validate_rles([good, bad])


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo should-not-run > /dev/null",))


def test_plain_data_loader_refuses_code_and_falls_back_for_tensors(tmp_path):
    evil = tmp_path / "evil.pth"
    torch.save({"img": {"masks": [_Evil()]}}, evil)
    with pytest.raises(InputError, match="refusing"):
        load_torch_plain_data(evil, {})
    plain = tmp_path / "plain.pth"
    data = {"img": {"masks": [{"size": [2, 2], "counts": b"04"}], "scores": [0.5], "num": 1}}
    torch.save(data, plain)
    assert load_torch_plain_data(plain, {}) == data
    tensors = tmp_path / "tensors.pth"
    torch.save({"w": torch.arange(3)}, tensors)
    assert torch.equal(load_torch_plain_data(tensors, {})["w"], torch.arange(3))
