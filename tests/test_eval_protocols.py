"""Hand-computed cases for the protocols' edge semantics and for PoseSOR's joint metrics (no golden file exists for those)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from salrank.evaluation import (
    aggregate_seqrank,
    assr_image_metrics,
    irsr_image_sa_sor,
    joint_metrics,
    normalise_keypoints,
    seqrank_image_metrics,
)
from salrank.evaluation.irsr_protocol import match_predictions
from salrank.evaluation.seqrank_protocol import aggregate_metric


def box(h: int, w: int, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
    m = np.zeros((h, w), bool)
    m[y0:y1, x0:x1] = True
    return m


# ---------------------------------------------------------------------------------------------- seqrank
def test_seqrank_iou_of_exactly_half_is_never_a_hit() -> None:
    gt = np.stack([box(10, 10, 0, 2, 0, 2), box(10, 10, 5, 7, 5, 7)])
    pred = np.stack([box(10, 10, 0, 1, 0, 2), box(10, 10, 5, 7, 5, 7)])  # IoU 2/4 with GT 0, 1.0 with GT 1
    v = seqrank_image_metrics(gt, pred)
    assert v["top1"] == 0.0 and v["top2"] == 1.0
    assert v["ap"] == pytest.approx(0.5) and v["ar"] == pytest.approx(0.5)
    assert v["sor"] == 1.0  # one record
    assert v["top3"] is None
    # SA-SOR: G = [1, 2] (missed GT 0 appended), P = [2 - 1, 0] -> Pearson(-1) ... computed officially:
    assert v["sa_sor"] == pytest.approx(np.corrcoef([1, 2], [1, 0])[0, 1])


def test_seqrank_no_prediction_is_one_zero_mask() -> None:
    gt = np.stack([box(8, 8, 0, 4, 0, 4), box(8, 8, 4, 8, 4, 8)])
    v = seqrank_image_metrics(gt, np.zeros((0, 8, 8), bool))
    assert v["ap"] == (0 + 1e-12) / (1 + 1e-12)
    assert v["ar"] == (0 + 1e-12) / (2 + 1e-12)
    assert v["top1"] == 0.0 and v["top2"] == 0.0 and v["top3"] is None
    assert math.isnan(v["sa_sor"]) and math.isnan(v["sor"])
    assert v["mae"] == 32 / 64 and v["acc"] == 0.5 and v["iou"] == 0.0 and v["fbeta"] == 0.0


def test_seqrank_single_gt_sa_sor_is_nan_even_when_found() -> None:
    gt = box(6, 6, 1, 5, 1, 5)[None]
    v = seqrank_image_metrics(gt, gt.copy())
    assert math.isnan(v["sa_sor"]) and v["sor"] == 1.0 and v["top1"] == 1.0


def test_seqrank_needs_a_gt_object() -> None:
    with pytest.raises(ValueError, match="at least one GT"):
        seqrank_image_metrics(np.zeros((0, 4, 4), bool), np.ones((1, 4, 4), bool))


def test_seqrank_aggregate_nan_counts_as_zero_and_empty_metric_is_one() -> None:
    rows = [{"sor": math.nan, "top5": None}, {"sor": np.float64(0.75), "top5": None}]
    agg = aggregate_seqrank(rows)
    assert agg["sor"].value == round((0.75 + 1e-12) / (2 + 1e-12), 4) and agg["sor"].count == 2
    assert agg["top5"].value == 1.0 and agg["top5"].count == 0


def test_seqrank_aggregate_rounds_like_the_official_code() -> None:
    """A numpy running sum is rounded by numpy (scale, rint), a Python one by Python; they differ on half-way values."""
    found = None
    for k in range(1, 20000):
        x = (k + 0.5) / 10000
        mean = (x + 1e-12) / (1 + 1e-12)
        if round(float(mean), 4) != round(np.float64(mean), 4):
            found = x
            break
    assert found is not None
    mean = (found + 1e-12) / (1 + 1e-12)
    assert aggregate_metric([np.float64(found)]).value == float(round(np.float64(mean), 4))
    assert aggregate_metric([float(found)]).value == round(mean, 4)
    assert aggregate_metric([np.float64(found)]).value != aggregate_metric([float(found)]).value


# ---------------------------------------------------------------------------------------------- irsr
def test_irsr_iou_of_exactly_half_is_a_match() -> None:
    gt = [box(10, 10, 0, 2, 0, 2), box(10, 10, 5, 9, 5, 9)]
    pred = [box(10, 10, 5, 9, 5, 9), box(10, 10, 0, 1, 0, 2)]  # IoU 1.0 with GT 1, 0.5 with GT 0
    r = irsr_image_sa_sor(np.stack(gt), [2, 1], np.stack(pred), [0.9, 0.8])
    assert r.rank_index == [1, 2] and r.gt_index == [2, 1]
    assert r.sa_sor == pytest.approx(-1.0)


def test_irsr_shared_prediction_goes_to_the_best_gt_without_second_choice() -> None:
    iou = np.array([[0.6, 0.55], [0.9, 0.0]])
    # both GTs take prediction 0; GT 1 (0.9) keeps it, GT 0 becomes unmatched (no fallback to 0.55)
    assert match_predictions(iou).tolist() == [-1, 0]
    # n < m: unclaimed predictions are appended
    assert match_predictions(np.array([[0.7, 0.0, 0.1]])).tolist() == [0, 1, 2]
    # ties: the last of equal maxima (a stable argsort), NaN sorts last
    assert match_predictions(np.array([[0.7, 0.7], [0.0, 0.0]])).tolist() == [1, -1]
    assert match_predictions(np.array([[0.9, np.nan], [0.0, 0.0]])).tolist() == [1, -1]


def test_irsr_exclusions_and_zero_variance() -> None:
    one = irsr_image_sa_sor(box(4, 4, 0, 2, 0, 2)[None], [1], np.ones((1, 4, 4), bool))
    assert (one.status, one.sa_sor) == ("excluded_single_gt", None)
    gts = np.stack([box(4, 4, 0, 2, 0, 2), box(4, 4, 2, 4, 2, 4)])
    none = irsr_image_sa_sor(gts, [2, 1], np.zeros((0, 4, 4), bool))
    assert (none.status, none.sa_sor) == ("used", 0.0)  # no prediction: zero variance -> 0, counted
    tie = irsr_image_sa_sor(gts, [1, 1], gts.copy(), [0.9, 0.5])
    assert tie.status == "excluded_nan"  # all GT ranks equal -> Pearson undefined


# ---------------------------------------------------------------------------------------------- assr
def test_assr_coverage_is_strictly_more_than_half_and_mode_ties_pick_the_smallest() -> None:
    h, w = 4, 10
    obj = np.zeros((2, h, w), bool)
    obj[0, 0, :] = True  # area 10: needs > 5 covered pixels
    obj[1, 2, :] = True
    pred = np.zeros((h, w), np.uint8)
    pred[0, :5] = 200  # exactly 5 -> not covered
    pred[2, :3] = 90
    pred[2, 3:6] = 60  # 6 covered, 3 x 90 and 3 x 60 -> mode tie -> 60
    r = assr_image_metrics(obj, [1.0, 0.9], pred)
    assert r.pred_values == [0, 60]
    assert (r.spr_kind, r.spr, r.used, r.use_indices) == ("single_object", 1.0, True, [1])
    pred[0, 5] = 200
    r = assr_image_metrics(obj, [1.0, 0.9], pred)
    assert r.pred_values == [200, 60] and r.spr == pytest.approx(1.0) and r.sor == pytest.approx(1.0)


def test_assr_constant_prediction_is_not_used_and_mae_is_float32() -> None:
    obj = np.stack([box(4, 4, 0, 2, 0, 4), box(4, 4, 2, 4, 0, 4)])
    pred = np.full((4, 4), 128, np.uint8)
    gt = np.zeros((4, 4), np.uint8)
    gt[:2] = 255
    gt[2:] = 229
    r = assr_image_metrics(obj, [1.0, 0.9], pred, gt)
    assert r.spr_kind == "spearman" and r.spr_is_nan and not r.used and math.isnan(r.sor)
    g = gt.astype(np.float32) / 255.0
    p = pred.astype(np.float32) / 255.0
    assert r.mae == float(np.mean(np.abs(g - p)))
    assert r.mae_binary == 0.0


# ---------------------------------------------------------------------------------------------- joints
def _joint_case():
    h, w = 50, 100
    gt_px = np.zeros((2, 17, 3), np.float32)
    gt_px[0, 0] = (10, 5, 2)
    gt_px[0, 1] = (20, 10, 1)  # occluded counts as visible (flag > 0.5)
    gt_px[1, 0] = (50, 25, 2)
    pred_px = np.zeros((2, 17, 3), np.float32)
    pred_px[1, :, 2] = 0.8  # matched to GT 0; joints GT does not label do not count
    pred_px[1, 0] = (12, 5, 0.9)
    pred_px[1, 1] = (20, 15, 0.3)
    pred_px[0, 0] = (50, 20, 0.6)  # matched to GT 1
    gt_masks = np.stack([box(h, w, 0, h, 0, 50), box(h, w, 0, h, 50, w)])
    pred_masks = gt_masks[::-1].copy()  # rank order reversed: Hungarian pairs (0, 1), (1, 0)
    gt_norm = gt_px / np.array([[w, h, 1]], np.float32)
    return h, w, gt_masks, pred_masks, gt_norm, normalise_keypoints(pred_px, h, w)


def test_joint_metrics_by_hand() -> None:
    h, w, gt_masks, pred_masks, gt_kp, pred_kp = _joint_case()
    v = seqrank_image_metrics(gt_masks, pred_masks, gt_keypoints=gt_kp, pred_keypoints=pred_kp)
    # 3 visible GT joints, predicted visible: GT0 j0 (0.9) and GT1 j0 (0.6), not GT0 j1 (0.3)
    assert v["jacc"] == pytest.approx((2 + 1e-6) / (3 + 1e-6), abs=1e-12)
    # L1 of normalised xy: GT0 j0 |10-12|/100 = 0.02; GT0 j1 |10-15|/50 = 0.1; GT1 j0 |25-20|/50 = 0.1
    assert v["jae"] == pytest.approx(0.22 / (3 + 1e-6), abs=1e-7)


def test_joint_metrics_none_without_visible_gt_joint_and_without_prediction() -> None:
    h, w, gt_masks, pred_masks, gt_kp, pred_kp = _joint_case()
    hidden = gt_kp.copy()
    hidden[..., 2] = 0
    v = seqrank_image_metrics(gt_masks, pred_masks, gt_keypoints=hidden, pred_keypoints=pred_kp)
    assert v["jacc"] is None and v["jae"] is None
    v = seqrank_image_metrics(gt_masks, np.zeros((0, h, w), bool), gt_keypoints=gt_kp)
    # the substituted zero mask pairs with GT 0 only (2 visible joints), nothing predicted visible
    assert v["jacc"] == pytest.approx(1e-6 / (2 + 1e-6), abs=1e-15) and v["jae"] is None
    # a model without pose output: nothing predicted visible
    assert joint_metrics(gt_kp, None, np.array([0, 1]), np.array([1, 0]))["jae"] is None


def test_normalise_keypoints_matches_posesor_storage() -> None:
    kp = np.array([[[320.0, 240.0, 0.7]] * 17], np.float32)
    out = normalise_keypoints(kp, 480, 640)
    assert out.dtype == np.float32
    assert out[0, 0].tolist() == [np.float32(320) / np.float32(640), np.float32(240) / np.float32(480), np.float32(0.7)]
    assert kp[0, 0, 0] == 320.0  # input untouched
