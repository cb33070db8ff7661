"""RoIAlign and NMS against straightforward reference implementations of torchvision's algorithms."""

import math

import numpy as np
import pytest
import torch

from salrank.ops import batched_nms, nms, roi_align


def _bilinear(feat: np.ndarray, y: float, x: float) -> np.ndarray:
    """One bilinear sample, with torchvision's border rules (feat: C, H, W)."""
    _, h, w = feat.shape
    if y < -1.0 or y > h or x < -1.0 or x > w:
        return np.zeros(feat.shape[0], np.float64)
    y, x = max(y, 0.0), max(x, 0.0)
    yl, xl = int(y), int(x)
    if yl >= h - 1:
        yh = yl = h - 1
        y = float(yl)
    else:
        yh = yl + 1
    if xl >= w - 1:
        xh = xl = w - 1
        x = float(xl)
    else:
        xh = xl + 1
    ly, lx = y - yl, x - xl
    hy, hx = 1 - ly, 1 - lx
    return hy * hx * feat[:, yl, xl] + hy * lx * feat[:, yl, xh] + ly * hx * feat[:, yh, xl] + ly * lx * feat[:, yh, xh]


def _reference_roi_align(feat, rois, out_hw, scale, ratio, aligned):
    ph, pw = out_hw
    out = np.zeros((len(rois), feat.shape[1], ph, pw))
    for k, (b, x1, y1, x2, y2) in enumerate(rois):
        off = 0.5 if aligned else 0.0
        sx, sy, ex, ey = x1 * scale - off, y1 * scale - off, x2 * scale - off, y2 * scale - off
        rw, rh = ex - sx, ey - sy
        if not aligned:
            rw, rh = max(rw, 1.0), max(rh, 1.0)
        bh, bw = rh / ph, rw / pw
        gh = ratio if ratio > 0 else math.ceil(rh / ph)
        gw = ratio if ratio > 0 else math.ceil(rw / pw)
        count = max(gh * gw, 1)
        for i in range(ph):
            for j in range(pw):
                acc = 0.0
                for iy in range(gh):
                    for ix in range(gw):
                        y = sy + i * bh + (iy + 0.5) * bh / gh
                        x = sx + j * bw + (ix + 0.5) * bw / gw
                        acc = acc + _bilinear(feat[int(b)], y, x)
                out[k, :, i, j] = acc / count
    return out


@pytest.mark.parametrize("aligned", [False, True])
@pytest.mark.parametrize("ratio", [-1, 0, 2])
def test_roi_align_matches_reference(aligned, ratio):
    g = torch.Generator().manual_seed(0)
    feat = torch.randn(2, 3, 13, 17, generator=g, dtype=torch.float64)
    rois = torch.tensor(
        [
            [0, 1.3, 2.2, 30.5, 40.1],  # inside
            [1, -10.0, -6.0, 20.0, 12.0],  # partly outside, top-left
            [0, 50.0, 30.0, 90.0, 70.0],  # partly outside, bottom-right
            [1, 5.0, 5.0, 5.2, 5.1],  # tiny
            [0, 200.0, 200.0, 260.0, 240.0],  # fully outside
            [1, 0.0, 0.0, 68.0, 52.0],  # whole image
        ],
        dtype=torch.float64,
    )
    for out_hw, scale in (((3, 3), 0.25), ((2, 5), 0.5), ((1, 1), 0.125), ((14, 14), 0.25)):
        got = roi_align(feat, rois, out_hw, spatial_scale=scale, sampling_ratio=ratio, aligned=aligned)
        ref = _reference_roi_align(feat.numpy(), rois.numpy(), out_hw, scale, ratio, aligned)
        np.testing.assert_allclose(got.numpy(), ref, rtol=1e-10, atol=1e-10)


def test_roi_align_float32_list_input_and_gradient():
    feat = torch.randn(1, 4, 10, 10, requires_grad=True)
    boxes = [torch.tensor([[0.0, 0.0, 20.0, 20.0], [4.0, 6.0, 30.0, 25.0]])]
    out = roi_align(feat, boxes, 7, spatial_scale=0.5, sampling_ratio=0, aligned=True)
    assert out.shape == (2, 4, 7, 7)
    out.sum().backward()
    assert feat.grad is not None and torch.isfinite(feat.grad).all()
    ref = _reference_roi_align(feat.detach().double().numpy(), np.array([[0, 0, 0, 20, 20], [0, 4, 6, 30, 25]], float), (7, 7), 0.5, 0, True)
    np.testing.assert_allclose(out.detach().numpy(), ref, rtol=1e-5, atol=1e-5)


def test_roi_align_empty():
    assert roi_align(torch.randn(1, 2, 4, 4), torch.zeros(0, 5), 3).shape == (0, 2, 3, 3)


def _reference_nms(boxes, scores, thr):
    order = sorted(range(len(scores)), key=lambda i: -scores[i])
    keep, removed = [], set()
    for a, i in enumerate(order):
        if i in removed:
            continue
        keep.append(i)
        for j in order[a + 1 :]:
            xx1, yy1 = max(boxes[i][0], boxes[j][0]), max(boxes[i][1], boxes[j][1])
            xx2, yy2 = min(boxes[i][2], boxes[j][2]), min(boxes[i][3], boxes[j][3])
            inter = max(0.0, xx2 - xx1) * max(0.0, yy2 - yy1)
            ai = (boxes[i][2] - boxes[i][0]) * (boxes[i][3] - boxes[i][1])
            aj = (boxes[j][2] - boxes[j][0]) * (boxes[j][3] - boxes[j][1])
            if inter / (ai + aj - inter) > thr:
                removed.add(j)
    return keep


def test_nms_matches_reference():
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 100, (300, 2))
    wh = rng.uniform(5, 40, (300, 2))
    boxes = np.concatenate([xy, xy + wh], 1)
    scores = rng.uniform(0, 1, 300)
    keep = nms(torch.tensor(boxes), torch.tensor(scores), 0.5).tolist()
    assert keep == _reference_nms(boxes.tolist(), scores.tolist(), 0.5)


def _float32_loop_nms(boxes: np.ndarray, scores: np.ndarray, thr: float) -> list[int]:
    """Greedy NMS one kept box at a time, in float32 like torchvision's kernel (IoU compared in double)."""
    order = np.argsort(-scores, kind="stable")
    b = boxes[order]
    areas = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    suppressed = np.zeros(len(b), dtype=bool)
    keep = []
    for i in range(len(b)):
        if suppressed[i]:
            continue
        keep.append(int(order[i]))
        w = np.maximum(np.minimum(b[i, 2], b[i + 1 :, 2]) - np.maximum(b[i, 0], b[i + 1 :, 0]), np.float32(0))
        h = np.maximum(np.minimum(b[i, 3], b[i + 1 :, 3]) - np.maximum(b[i, 1], b[i + 1 :, 1]), np.float32(0))
        inter = w * h
        with np.errstate(invalid="ignore"):  # two zero-area boxes: 0 / 0, never suppressed
            iou = inter / (areas[i] + areas[i + 1 :] - inter)
        suppressed[i + 1 :] |= iou.astype(np.float64) > thr
    return keep


@pytest.mark.parametrize("n, spread", [(700, 100.0), (1300, 600.0), (64, 20.0)])
def test_nms_float32_matches_one_box_at_a_time(n, spread):
    """More boxes than one IoU block (256 rows), ties in score, duplicates, zero-area boxes, IoU exactly at the threshold."""
    rng = np.random.default_rng(n)
    xy = rng.integers(0, int(spread), (n, 2)).astype(np.float32)
    wh = rng.integers(0, 40, (n, 2)).astype(np.float32)  # integer sizes: many exact IoU values, some zero areas
    boxes = np.concatenate([xy, xy + wh], 1)
    boxes[1::7] = boxes[0::7][: len(boxes[1::7])]  # duplicates
    scores = rng.integers(0, 50, n).astype(np.float32)  # many equal scores
    for thr in (0.5, 0.6, 0.0):
        keep = nms(torch.from_numpy(boxes), torch.from_numpy(scores), thr).tolist()
        assert keep == _float32_loop_nms(boxes, scores, thr)


def test_batched_nms_keeps_other_categories():
    boxes = torch.tensor([[0, 0, 10, 10], [0, 0, 10, 10], [1, 1, 10, 10.0]])
    scores = torch.tensor([0.9, 0.8, 0.7])
    assert batched_nms(boxes, scores, torch.tensor([0, 1, 0]), 0.5).tolist() == [0, 1]
    assert nms(boxes, scores, 0.5).tolist() == [0]
