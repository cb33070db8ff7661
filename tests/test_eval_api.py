"""salrank.evaluate on datasets: official aggregates through the whole pipeline, missing/unknown predictions, the report."""

from __future__ import annotations

import json
import logging
import math

import numpy as np
import pytest
from eval_fixture_data import assr_dataset, cases, expected_aggregate, irsr_dataset, seqrank_dataset, write_assr_maps

from salrank.errors import InputError
from salrank.evaluation import EvaluationReport, evaluate
from salrank.io.rank_maps import RankMapFolder
from salrank.structures import GTImage, GTInstance, RankedInstances, SORDataset

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


@pytest.fixture(scope="module")
def seqrank_report() -> EvaluationReport:
    ds, preds = seqrank_dataset()
    return evaluate(ds, preds, "seqrank")


def test_seqrank_evaluate_reproduces_official_aggregates_and_per_image(seqrank_report: EvaluationReport) -> None:
    rep = seqrank_report
    expected = expected_aggregate("seqrank")["expected"]
    for name, value in expected.items():
        if name.endswith("_count"):
            assert rep.counts[name[: -len("_count")]] == value
        else:
            assert rep.metrics[name] == value
            assert rep.metrics_unrounded[name] == pytest.approx(value, abs=5e-5)
    for c in cases("seqrank")["cases"]:
        row = rep.per_image[c["id"]]
        for name, value in c["expected"].items():
            if value is None:
                assert row[name] is None or math.isnan(row[name])
            else:
                assert row[name] == pytest.approx(value, abs=1e-9, rel=0)
    no_pred = [c["id"] for c in cases("seqrank")["cases"] if not c["preds"]]
    assert rep.missing_predictions == no_pred and rep.unknown_predictions == []
    assert rep.images == 100 and rep.protocol == "seqrank"


def test_report_json_roundtrip_and_table(seqrank_report: EvaluationReport, tmp_path) -> None:
    path = seqrank_report.save(tmp_path / "sub" / "report.json")
    data = json.loads(path.read_text())
    for key in ("protocol", "metrics", "counts", "per_image", "missing_predictions", "unknown_predictions"):
        assert key in data
    assert data["metrics"]["sa_sor"] == expected_aggregate("seqrank")["expected"]["sa_sor"]
    nan_case = next(c for c in cases("seqrank")["cases"] if "sa_sor" in c["expected_nan"])
    assert data["per_image"][nan_case["id"]]["sa_sor"] is None  # NaN -> null, strict JSON
    back = EvaluationReport.from_dict(data)
    assert back.metrics == seqrank_report.metrics and back.counts == seqrank_report.counts
    table = seqrank_report.table()
    assert "sa_sor" in table and f"{seqrank_report.metrics['sa_sor']:.4f}" in table and "count" in table
    assert "missing predictions: 5" in table
    per_image = seqrank_report.table(per_image=True, max_rows=3)
    assert "97 more" in per_image
    assert not list(tmp_path.glob("sub/.*tmp"))  # atomic write leaves nothing behind


def test_unknown_and_missing_predictions_are_listed_and_warned(caplog) -> None:
    ds, preds = seqrank_dataset(limit=6)
    extra = RankedInstances.empty("not_in_gt", 10, 10)
    preds = dict(preds)
    preds["not_in_gt"] = extra
    dropped = next(iter(preds))
    del preds[dropped]
    with caplog.at_level(logging.WARNING, logger="salrank.evaluation"):
        rep = evaluate(ds, preds, "seqrank")
    assert rep.unknown_predictions == ["not_in_gt"]
    assert dropped in rep.missing_predictions
    assert "not_in_gt" not in rep.per_image
    text = caplog.text
    assert "not_in_gt" in text and "not in the GT" in text and "no prediction" in text
    # the missing image is scored as "nothing predicted"
    assert rep.per_image[dropped]["ap"] == pytest.approx(1e-12 / (1 + 1e-12)) and rep.per_image[dropped]["top1"] == 0.0


def test_predictions_as_a_list_and_metric_subset() -> None:
    ds, preds = seqrank_dataset(limit=10)
    rep = evaluate(ds, list(preds.values()), "seqrank", metrics=["sa_sor", "sor"])
    assert list(rep.metrics) == ["sa_sor", "sor"]
    assert rep.metrics["sa_sor"] == expected_aggregate("seqrank", "first_10")["expected"]["sa_sor"]
    with pytest.raises(InputError, match="unknown seqrank metric"):
        evaluate(ds, preds, "seqrank", metrics=["spr"])
    with pytest.raises(InputError, match="unknown protocol"):
        evaluate(ds, preds, "sasor")


def test_size_mismatch_is_an_input_error_naming_the_image() -> None:
    ds, preds = seqrank_dataset(limit=2)
    name = ds.images[0].image_id
    bad = dict(preds)
    bad[name] = RankedInstances.from_masks(np.ones((1, 7, 9), bool), image_name=name)
    with pytest.raises(InputError, match="7x9") as err:
        evaluate(ds, bad, "seqrank")
    assert err.value.image == name


def test_irsr_evaluate_reproduces_official_values() -> None:
    ds, preds = irsr_dataset()
    rep = evaluate(ds, preds, "irsr")
    agg = expected_aggregate("irsr")
    assert rep.images_used == agg["images_used"] == rep.counts["sa_sor"]
    assert rep.metrics["sa_sor"] == pytest.approx(agg["expected"]["sa_sor"], abs=1e-9, rel=0)
    for c in cases("irsr")["cases"]:
        row = rep.per_image[c["id"]]
        assert row["used"] == int(c["expected_status"] == "used")
        if c["expected"]["sa_sor"] is not None:
            assert row["sa_sor"] == pytest.approx(c["expected"]["sa_sor"], abs=1e-9, rel=0)
        else:
            assert row["sa_sor"] is None and c["id"] in rep.excluded
    assert any("rank scores given" in n for n in rep.notes)
    assert not rep.errors


def test_irsr_without_usable_image_is_an_error_message_not_a_crash() -> None:
    ds, preds = irsr_dataset()
    single = [img for img in ds.images if len(img.instances) == 1]
    rep = evaluate(SORDataset(images=single, name="single", format="irsr"), preds, "irsr")
    assert rep.metrics["sa_sor"] is None and rep.images_used == 0
    assert rep.errors and "no usable image" in rep.errors[0]
    assert set(rep.excluded.values()) == {"single GT object"}
    assert json.loads(rep.to_json())["metrics"]["sa_sor"] is None


def test_irsr_default_scores_follow_the_predicted_order() -> None:
    """Without explicit scores, linspace(1, 0.5, m) over the rank order: a reversed list reverses the ranking."""
    h = w = 20
    masks = [np.zeros((h, w), bool) for _ in range(3)]
    for k, m in enumerate(masks):
        m[k * 6 : k * 6 + 5, :] = True
    gt = GTImage("img", "img.jpg", h, w, [GTInstance(segmentation=_rle(m), rank=k + 1, id=k) for k, m in enumerate(masks)])
    ds = SORDataset([gt], format="irsr")
    good = evaluate(ds, {"img": RankedInstances.from_masks(np.stack(masks), image_name="img")}, "irsr")
    bad = evaluate(ds, {"img": RankedInstances.from_masks(np.stack(masks[::-1]), image_name="img")}, "irsr")
    assert good.metrics["sa_sor"] == pytest.approx(1.0) and bad.metrics["sa_sor"] == pytest.approx(-1.0)


def _rle(mask: np.ndarray) -> dict:
    from salrank.utils.masks import encode_rle

    return encode_rle(mask)


def test_assr_evaluate_with_map_folders(tmp_path) -> None:
    ds = assr_dataset()
    maps = RankMapFolder(write_assr_maps(tmp_path / "pred", "pred_map"))
    gt_maps = write_assr_maps(tmp_path / "gt", "gt_map")
    rep = evaluate(ds, maps, "assr", gt_maps=gt_maps)
    e = expected_aggregate("assr")["expected"]
    assert rep.images_used == e["image_used"] == rep.counts["sor"]
    assert rep.metrics["sor"] == pytest.approx(e["sor"], abs=1e-9, rel=0)
    assert rep.metrics["mae"] == pytest.approx(e["mae"], abs=1e-6, rel=0)
    assert rep.metrics["mae_binary"] == pytest.approx(e["mae_binary"], abs=1e-6, rel=0)
    for c in cases("assr")["cases"]:
        row = rep.per_image[c["id"]]
        assert row["mae"] == c["expected"]["mae"] and row["used"] == c["expected"]["image_used"]
    assert not any("drawn from the GT" in n for n in rep.notes)


def test_assr_renders_instances_and_gt_maps_when_needed(tmp_path) -> None:
    ds = assr_dataset(limit=5)
    preds = {}
    for img in ds.images:  # perfect instance predictions in GT order
        from salrank.evaluation.coco_segm import coco_rle
        from salrank.evaluation.overlaps import decode_rle_fast

        masks = np.stack([decode_rle_fast(coco_rle(i.segmentation, 480, 640)) for i in img.instances]) if img.instances else np.zeros((0, 480, 640), bool)
        preds[img.image_id] = RankedInstances.from_masks(masks, image_name=img.image_id, height=480, width=640)
    rep = evaluate(ds, preds, "assr")
    assert any("render_rank_map(style='assr')" in n for n in rep.notes)
    assert any("drawn from the GT" in n for n in rep.notes)
    assert rep.images == 5 and rep.metrics["sor"] is not None


def test_coco_ap_extra_is_one_for_perfect_predictions() -> None:
    ds, _ = seqrank_dataset(limit=8)
    preds = {}
    for img in ds.images:
        from salrank.evaluation.overlaps import decode_rle_fast

        masks = np.stack([decode_rle_fast(i.segmentation) for i in img.instances])
        preds[img.image_id] = RankedInstances.from_masks(masks, image_name=img.image_id)
    rep = evaluate(ds, preds, "seqrank", coco_ap=True)
    assert rep.metrics["segm_AP"] == pytest.approx(1.0)
    assert rep.metrics["segm_AR100"] == pytest.approx(1.0)
    assert rep.counts["segm_AP"] == 8
    empty = evaluate(ds, {}, "seqrank", coco_ap=True)
    assert empty.metrics["segm_AP"] == 0.0


def test_joint_metrics_in_evaluate() -> None:
    h, w = 50, 100
    left = np.zeros((h, w), bool)
    left[:, :50] = True
    gt_kp = np.zeros((17, 3), np.float32)
    gt_kp[0] = (10, 5, 2)
    inst = GTInstance(segmentation=_rle(left), rank=1, keypoints=gt_kp, id=0)
    ds = SORDataset([GTImage("a", "a.jpg", h, w, [inst])], format="posesor")
    pred_kp = np.zeros((1, 17, 3), np.float32)
    pred_kp[0, 0] = (12, 5, 0.9)
    pred = RankedInstances.from_masks(left[None], image_name="a", keypoints=pred_kp)
    rep = evaluate(ds, {"a": pred}, "seqrank")
    assert rep.metrics["jacc"] == 1.0 and rep.counts["jacc"] == 1
    assert rep.metrics["jae"] == 0.02  # |10 - 12| / 100, rounded to 4 decimals
    no_pose = evaluate(ds, {"a": RankedInstances.from_masks(left[None], image_name="a")}, "seqrank")
    assert "jacc" not in no_pose.metrics and any("keypoints" in n for n in no_pose.notes)


def test_gt_mask_of_the_wrong_size_is_an_input_error() -> None:
    bad = GTInstance(segmentation=_rle(np.ones((5, 5), bool)), rank=1, id=3)
    ds = SORDataset([GTImage("a", "a.jpg", 10, 10, [bad, GTInstance(segmentation=_rle(np.ones((5, 5), bool)), rank=2, id=4)])])
    for protocol in ("seqrank", "irsr", "assr"):
        with pytest.raises(InputError, match="5x5") as err:
            evaluate(ds, {}, protocol)
        assert err.value.image == "a" and "object 3" in str(err.value)
