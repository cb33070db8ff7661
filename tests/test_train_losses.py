"""Training losses against hand-written references on tiny tensors (the official formulas, re-derived)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from salrank.training.losses import (
    bce_dice_loss,
    box_cxcyhw_to_xyxy,
    box_l1_giou_loss,
    box_xyxy_to_cxcyhw,
    generalized_box_iou_loss,
    masks_to_boxes_normalised,
    objectness_loss,
    pairwise_mask_cost,
    point_sampled_mask_loss,
    sample_logits_at,
    sample_points,
    take_points,
)
from salrank.training.losses.seqrank_criterion import (
    SeqRankCriterion,
    SeqRankLossConfig,
    sequential_saliency_loss,
)
from salrank.training.matcher import HungarianMatcher


def ref_bce_dice(logit: list[float], target: list[float], wc: float, wd: float) -> float:
    """Element-by-element: mean BCE-with-logits + (1 - (2 sum(p t) + 1) / (sum(p + t) + 1))."""
    bce, inter, total = 0.0, 0.0, 0.0
    for x, t in zip(logit, target):
        p = 1.0 / (1.0 + math.exp(-x))
        bce += -(t * math.log(p) + (1 - t) * math.log(1 - p))
        inter += p * t
        total += p + t
    return wc * bce / len(logit) + wd * (1.0 - (2 * inter + 1.0) / (total + 1.0))


def test_bce_dice_matches_reference() -> None:
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 5, 4, generator=g, dtype=torch.float64)
    targets = (torch.rand(3, 5, 4, generator=g) > 0.5).double()
    got = bce_dice_loss(logits, targets, 5.0, 2.0)
    for i in range(3):
        want = ref_bce_dice(logits[i].flatten().tolist(), targets[i].flatten().tolist(), 5.0, 2.0)
        assert got[i].item() == pytest.approx(want, rel=1e-12)


def test_pairwise_cost_equals_every_pair() -> None:
    g = torch.Generator().manual_seed(1)
    pred = torch.randn(6, 40, generator=g, dtype=torch.float64)
    tgt = (torch.rand(3, 40, generator=g) > 0.6).double()
    cost = pairwise_mask_cost(pred, tgt, 5.0, 5.0)
    for q, t in itertools.product(range(6), range(3)):
        assert cost[q, t].item() == pytest.approx(ref_bce_dice(pred[q].tolist(), tgt[t].tolist(), 5.0, 5.0), rel=1e-5)


def test_point_sampling_reads_the_upsampled_logits() -> None:
    g = torch.Generator().manual_seed(2)
    low = torch.randn(4, 7, 9, generator=g)
    points = sample_points(28, 36, 200, generator=g)
    assert len(points) == 200 and int(points.ys.max()) < 28 and int(points.xs.max()) < 36
    up = F.interpolate(low[None], size=(28, 36), mode="bilinear", align_corners=False)[0]
    torch.testing.assert_close(sample_logits_at(low, points), take_points(up, points), rtol=1e-5, atol=1e-5)
    # small maps: every pixel is used, as the official `H*W <= K` branch
    small = sample_points(4, 4, 100)
    assert small.all_pixels and len(small) == 16


def test_point_sampled_loss_equals_full_loss_on_the_same_pixels() -> None:
    g = torch.Generator().manual_seed(3)
    low = torch.randn(2, 5, 5, generator=g)
    targets = (torch.rand(2, 20, 20, generator=g) > 0.5).to(torch.uint8)
    torch.manual_seed(7)
    got = point_sampled_mask_loss(low, targets, 50, 5.0, 5.0)
    torch.manual_seed(7)  # the official draw: rows then columns from the global generator
    ys = torch.randint(0, 20, (50,))
    xs = torch.randint(0, 20, (50,))
    up = F.interpolate(low[None], size=(20, 20), mode="bilinear", align_corners=False)[0]
    for i in range(2):
        want = ref_bce_dice(up[i, ys, xs].tolist(), targets[i, ys, xs].double().tolist(), 5.0, 5.0)
        assert got[i].item() == pytest.approx(want, rel=1e-5)


def ref_giou_loss(a: list[float], b: list[float]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    hull = (max(a[2], b[2]) - min(a[0], b[0])) * (max(a[3], b[3]) - min(a[1], b[1]))
    return 1.0 - (inter / (union + 1e-7) - (hull - union) / (hull + 1e-7))


def test_box_losses() -> None:
    a = torch.tensor([[0.1, 0.2, 0.5, 0.6], [0.0, 0.0, 0.2, 0.2], [0.3, 0.3, 0.4, 0.9]], dtype=torch.float64)
    b = torch.tensor([[0.2, 0.1, 0.6, 0.5], [0.5, 0.5, 0.9, 0.9], [0.3, 0.3, 0.4, 0.9]], dtype=torch.float64)
    giou = generalized_box_iou_loss(a, b)
    for i in range(3):
        assert giou[i].item() == pytest.approx(ref_giou_loss(a[i].tolist(), b[i].tolist()), rel=1e-9)
    assert giou[2].item() == pytest.approx(0.0, abs=1e-5)  # identical boxes (eps keeps it just above 0)
    # (cx, cy, h, w): height before width, as the official xyxy2xyhw
    assert box_xyxy_to_cxcyhw(a[:1])[0].tolist() == pytest.approx([0.3, 0.4, 0.4, 0.4])
    torch.testing.assert_close(box_cxcyhw_to_xyxy(box_xyxy_to_cxcyhw(a)), a)
    loss = box_l1_giou_loss(a, b, 5.0, 2.0)
    for i in range(3):
        l1 = (box_xyxy_to_cxcyhw(a[i : i + 1]) - box_xyxy_to_cxcyhw(b[i : i + 1])).abs().mean().item()
        assert loss[i].item() == pytest.approx(5 * l1 + 2 * ref_giou_loss(a[i].tolist(), b[i].tolist()), rel=1e-9)


def test_masks_to_boxes_uses_last_index_like_torchvision() -> None:
    m = torch.zeros(3, 10, 20, dtype=torch.uint8)
    m[0, 2:5, 4:8] = 1
    m[1, 0, 0] = 1
    boxes = masks_to_boxes_normalised(m)
    assert boxes[0].tolist() == pytest.approx([4 / 20, 2 / 10, 7 / 20, 4 / 10])
    assert boxes[1].tolist() == [0.0, 0.0, 0.0, 0.0]
    assert boxes[2].tolist() == [0.0, 0.0, 0.0, 0.0]  # empty mask


def test_objectness_loss_weights() -> None:
    x = torch.tensor([[2.0, -1.0, 0.5]])
    pos = torch.tensor([[True, False, False]])
    got = objectness_loss(x, pos, 1.0, 0.1)

    def bce(v: float, t: float) -> float:
        p = 1 / (1 + math.exp(-v))
        return -(t * math.log(p) + (1 - t) * math.log(1 - p))

    want = (bce(2.0, 1) + 0.1 * bce(-1.0, 0) + 0.1 * bce(0.5, 0)) / 3
    assert got.item() == pytest.approx(want, rel=1e-6)


def test_matcher_finds_the_optimal_assignment() -> None:
    g = torch.Generator().manual_seed(5)
    targets = (torch.rand(3, 12, 12, generator=g) > 0.5).to(torch.uint8)
    logits = torch.randn(1, 5, 12, 12, generator=g)
    logits[0, 4] = (targets[0].float() - 0.5) * 20  # query 4 is target 0
    logits[0, 1] = (targets[2].float() - 0.5) * 20  # query 1 is target 2
    obj = torch.randn(1, 5, 1, generator=g)
    matcher = HungarianMatcher(5.0, 5.0, 1.0, num_points=10_000)  # 144 pixels: every pixel
    m = matcher(logits, obj, [targets])
    cost = matcher.cost_matrix(logits[0], obj[0, :, 0], targets)
    best = min(itertools.permutations(range(5), 3), key=lambda qs: sum(cost[q, t].item() for t, q in enumerate(qs)))
    got = {int(t): int(q) for q, t in zip(m.query_index, m.target_index)}
    assert [got[t] for t in range(3)] == list(best)
    assert got[0] == 4 and got[2] == 1
    corr = m.correspondence(1, 5)
    assert corr[0, 4] == 1 and corr[0, 1] == 3
    # the cost is mask BCE + Dice minus sigmoid(objectness), as the official matcher
    want = ref_bce_dice(logits[0, 0].flatten().tolist(), targets[1].flatten().double().tolist(), 5, 5) - torch.sigmoid(obj[0, 0, 0]).item()
    assert cost[0, 1].item() == pytest.approx(want, rel=1e-5)
    # images without targets match nothing
    assert len(matcher(logits, obj, [targets[:0]])) == 0


def test_sequential_saliency_loss_is_teacher_forced() -> None:
    corr = torch.tensor([[0.0, 2.0, 1.0, 0.0]])  # query 2 is GT 0 (first), query 1 is GT 1
    seen = []
    logits = torch.tensor([[0.3, -0.2, 1.0, -2.0]])

    def srm(visits: torch.Tensor) -> torch.Tensor:
        seen.append(visits.clone())
        return logits

    loss = sequential_saliency_loss(srm, corr, num_steps=3)
    assert [v.tolist() for v in seen] == [[[0, 0, 0, 0]], [[0, 0, 1, 0]], [[0, 2, 1, 0]]]
    answers = [[0, 0, 1, 0], [0, 1, 0, 0], [0, 0, 0, 0]]  # GT 0, GT 1, then "stop"
    want = sum(F.binary_cross_entropy_with_logits(logits, torch.tensor([a], dtype=torch.float32)).item() for a in answers)
    assert loss.item() == pytest.approx(want, rel=1e-6)


def test_seqrank_criterion_terms_and_weights() -> None:
    from types import SimpleNamespace

    g = torch.Generator().manual_seed(9)
    b, nq = 2, 4
    pred = SimpleNamespace(masks=torch.randn(b, nq, 8, 8, generator=g, requires_grad=True), objectness=torch.randn(b, nq, 1, generator=g), boxes=torch.randn(b, nq, 4, generator=g))
    fovea = SimpleNamespace(predictions=[pred])
    t0 = torch.zeros(2, 32, 32, dtype=torch.uint8)
    t0[0, 4:20, 4:12] = 1
    t0[1, 10:30, 16:30] = 1
    t1 = torch.zeros(0, 32, 32, dtype=torch.uint8)
    crit = SeqRankCriterion(SeqRankLossConfig(num_points=100_000))
    calls = []

    def srm(visits: torch.Tensor) -> torch.Tensor:
        calls.append(visits)
        return torch.zeros(b, nq)

    losses = crit(fovea, srm, [{"masks": t0}, {"masks": t1}])
    assert set(losses) == {"mask_loss", "bbox_loss", "obj_loss", "sal_loss"}
    assert len(calls) == 3  # n_max + 1 steps
    # every step: BCE(0, target) = log 2 for all B x nq entries
    assert losses["sal_loss"].item() == pytest.approx(5.0 * 3 * math.log(2), rel=1e-6)
    losses["mask_loss"].backward()
    assert pred.masks.grad is not None and pred.masks.grad[1].abs().sum() == 0  # image 1 has no GT


def test_criterion_on_a_batch_without_objects_is_finite() -> None:
    from types import SimpleNamespace

    pred = SimpleNamespace(masks=torch.randn(1, 3, 4, 4), objectness=torch.randn(1, 3, 1), boxes=torch.randn(1, 3, 4))
    losses = SeqRankCriterion()(SimpleNamespace(predictions=[pred]), lambda v: torch.zeros(1, 3), [{"masks": torch.zeros(0, 16, 16, dtype=torch.uint8)}])
    assert all(np.isfinite(float(v)) for v in losses.values())
