"""PoseSOR's read-out: the fast paths give exactly what the official full-resolution computation gives."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from salrank.modeling.posesor.readout import (
    _axis_tables,
    _certified_argmax,
    _official_argmax,
    boxes_to_pixels,
    heatmap_argmax,
    merge_duplicates,
    partition_maps,
    rank_scores,
    rank_weights,
    upsample_masks,
)


def official_joints(maps: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """The official computation on the whole ``(n, K, h, w)`` tensor: resize, softmax over all pixels,
    max over columns then rows; returns ``(n, K, 2)`` ``(x, y)``."""
    up = F.interpolate(maps, size=(height, width), mode="bilinear")
    prob = torch.softmax(up.flatten(2), dim=-1).unflatten(-1, (height, width))
    row_max, row_idx = torch.max(prob, dim=3)
    _, y = torch.max(row_max, dim=2)
    x = torch.gather(row_idx, 2, y.unsqueeze(2)).squeeze(2)
    return torch.stack([x, y], dim=-1)


def smooth_maps(n: int, h: int, w: int, seed: int, noise: float = 0.3) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    base = torch.randn(n, 17, max(2, h // 8), max(2, w // 8), generator=g)
    return F.interpolate(base, size=(h, w), mode="bilinear") * 5 + noise * torch.randn(n, 17, h, w, generator=g)


SIZES = [
    (64, 64, 480, 640),  # the fixture: S/4 = 64 -> a 640x480 photo
    (48, 48, 300, 200),
    (48, 40, 37, 53),  # downsampling
    (32, 32, 100, 28),  # height + width just above the small-output kernel's limit
    (32, 32, 64, 64),  # height + width <= 128: PyTorch's layout-dependent kernel
    (16, 16, 301, 17),
]


@pytest.mark.parametrize("h,w,height,width", SIZES)
@pytest.mark.parametrize("method", ["certified", "full"])
def test_heatmap_argmax_is_the_official_one(h, w, height, width, method):
    maps = smooth_maps(5, h, w, seed=h + height)
    ours = heatmap_argmax(maps, 5, height, width, method, chunk=2)
    assert torch.equal(ours, official_joints(maps, height, width))


def test_heatmap_argmax_ties_plateaus_and_edges():
    maps = torch.zeros(4, 17, 40, 40)
    maps[0, :, 10:20, 12:22] = 1.0  # plateau: the first pixel of the flat top wins
    maps[1, :, :, 0] = 3.0  # maximum along the left edge (the clamped columns repeat values)
    maps[2, :, -1, :] = 3.0  # maximum along the bottom edge
    maps[3] = 0.0  # flat map: every pixel ties, the first wins
    maps[0, 3, 5, 5] = 1.0 + 1e-7  # a near tie
    for method in ("certified", "full"):
        assert torch.equal(heatmap_argmax(maps, 4, 300, 310, method), official_joints(maps, 300, 310))


def test_certified_search_decides_most_smooth_maps_alone():
    maps = smooth_maps(4, 64, 64, seed=3).reshape(-1, 64, 64)
    index, certified = _certified_argmax(maps, 480, 640)
    assert certified.float().mean() > 0.7
    exact = _official_argmax(maps.unsqueeze(1), 480, 640).flatten()
    assert torch.equal(index[certified], exact[certified])


def test_heatmap_argmax_takes_a_function_of_object_indices():
    maps = smooth_maps(5, 32, 32, seed=1)
    seen = []

    def get(idx):
        seen.append(list(idx))
        return maps[list(idx)]

    ours = heatmap_argmax(get, 5, 200, 150, chunk=2)
    assert seen == [[0, 1], [2, 3], [4]]
    assert torch.equal(ours, official_joints(maps, 200, 150))


def test_axis_tables_are_pytorch_bilinear_weights():
    for n_in, n_out in [(64, 480), (192, 768), (40, 37), (7, 300)]:
        t = _axis_tables(n_in, n_out)
        x = torch.arange(n_in, dtype=torch.float64).view(1, 1, 1, n_in) ** 2 / n_in
        ours = x[0, 0, 0, t["i0"]] * torch.as_tensor(t["w0"]) + x[0, 0, 0, np.minimum(t["i0"] + 1, n_in - 1)] * torch.as_tensor(t["w1"])
        theirs = F.interpolate(x.float(), size=(1, n_out), mode="bilinear")[0, 0, 0].double()
        assert (ours - theirs).abs().max() < 1e-4
        assert t["count"].sum() == n_out


def reference_merge(masks, scores, threshold):
    """The official post-processing written plainly: float32 masks, pairwise products, repeated passes."""
    masks = [m.astype(np.float32) for m in masks]
    scores = list(scores)
    index = list(range(len(masks)))
    while True:
        n = len(masks)
        keep = [True] * n
        for i in range(n):
            if not keep[i]:
                continue
            for j in range(i + 1, n):
                if not keep[j]:
                    continue
                inter = (masks[i] * masks[j]).sum()
                maskness = inter / min(masks[i].sum() + 1e-6, masks[j].sum() + 1e-6)
                if maskness > threshold and scores[i] + scores[j] < 2.0 - (1.0 - maskness):
                    masks[i] = np.maximum(masks[i], masks[j])
                    scores[i] = np.maximum(scores[i], scores[j])
                    keep[j] = False
        masks = [m for m, k in zip(masks, keep) if k]
        scores = [s for s, k in zip(scores, keep) if k]
        index = [i for i, k in zip(index, keep) if k]
        if len(masks) == n:
            return index, np.stack(masks) > 0.5 if masks else np.zeros((0,)), scores


@pytest.mark.parametrize("seed", range(6))
def test_merge_is_the_official_post_process(seed):
    rng = np.random.default_rng(seed)
    n, h, w = 14, 40, 50
    base = rng.random((4, h, w)) > 0.5
    masks = []
    for _ in range(n):  # near-copies of a few shapes, so that merges chain
        m = base[rng.integers(4)].copy()
        flip = rng.random((h, w)) < rng.choice([0.0, 0.01, 0.05, 0.3])
        masks.append(m ^ flip if rng.random() < 0.5 else m & ~flip)
    masks = np.stack(masks)
    scores = [float(np.float32(s)) for s in rng.random(n) * 0.9]
    kept, merged, merged_scores, groups = merge_duplicates(masks, scores, 0.95)
    ref_index, ref_masks, ref_scores = reference_merge(masks, scores, 0.95)
    assert kept == ref_index
    assert np.array_equal(merged, ref_masks)
    assert merged_scores == [float(s) for s in ref_scores]
    assert sorted(i for g in groups for i in g) == list(range(n))
    assert [g[0] for g in groups] == kept


def test_merge_edge_cases():
    empty = np.zeros((0, 5, 5), bool)
    assert merge_duplicates(empty, [], 0.95)[0] == []
    one = np.ones((1, 5, 5), bool)
    kept, merged, scores, groups = merge_duplicates(one, [0.3], 0.95)
    assert kept == [0] and merged.shape == (1, 5, 5) and scores == [0.3] and groups == [[0]]
    # overlap 96 %: merged unless both are confident (objectness sum >= 1 + maskness = 1.96)
    two = np.zeros((2, 12, 12), bool)
    two[0, :10, :10] = True
    two[1] = two[0]
    two[1, 0, :4] = False
    two[1, 11, :4] = True
    assert merge_duplicates(two, [0.99, 0.99], 0.95)[0] == [0, 1]
    kept, merged, scores, groups = merge_duplicates(two, [0.4, 0.5], 0.95)
    assert kept == [0] and scores == [0.5] and groups == [[0, 1]]
    assert np.array_equal(merged[0], two[0] | two[1])
    # empty masks never merge (0 / 1e-6)
    assert merge_duplicates(np.zeros((2, 5, 5), bool), [0.1, 0.1], 0.95)[0] == [0, 1]


@pytest.mark.parametrize("size", [(480, 640), (60, 64), (33, 95)])
def test_upsample_masks_is_the_official_thresholding(size):
    logits = torch.randn(7, 16, 16) * 3
    height, width = size
    ours = upsample_masks(logits, height, width)
    up = F.interpolate(logits.unsqueeze(0), size=size, mode="bilinear")[0]  # official: all objects at once
    theirs = np.stack([(up[i].sigmoid() > 0.5).numpy() for i in range(7)])
    assert np.array_equal(ours, theirs)


def test_rank_scores_and_boxes():
    w = rank_weights(20)
    assert w[0] == 0 and w.dtype == torch.float32
    assert torch.allclose(w[1:], 1.0 / torch.arange(1, 20).float(), rtol=1e-5)
    logits = torch.full((2, 20), -30.0)
    logits[0, 1] = 30.0  # surely "visited first"
    logits[1, 3] = 30.0
    s = rank_scores(logits)
    assert s[0] > s[1] and abs(float(s[0]) - 1.0) < 1e-5 and abs(float(s[1]) - 1 / 3) < 1e-5
    boxes = boxes_to_pixels(torch.logit(torch.tensor([[0.5, 0.5, 0.2, 0.4]])), 100, 200)
    assert torch.allclose(boxes, torch.tensor([[60.0, 40.0, 140.0, 60.0]]), atol=1e-4)  # (cx, cy, h, w)


def test_partition_maps_at_image_size():
    logits = torch.randn(3, 8, 8)
    maps = partition_maps(logits, 30, 40)
    assert maps.shape == (3, 30, 40) and maps.dtype == np.float32
    expected = F.interpolate(logits[1].view(1, 1, 8, 8), size=(30, 40), mode="bilinear")[0, 0].sigmoid().numpy()
    assert np.array_equal(maps[1], expected)
    assert np.array_equal(partition_maps(logits.numpy(), 30, 40), maps)
