"""The 300 golden cases of tests/data/metrics: every per-image value and every aggregate of the official code.

The expected values were produced by running the official evaluation code (SeqRank/PoseSOR
``evaluation/metrics.py``, PoseSOR ``misc/sasor.py`` + dragonlee ``SA-SOR.py``, PPA ``sor_eval.py`` +
Siris ``evaluate.py``) on synthetic cases; ``tests/data/metrics/FORMAT.md`` (a copy of
``../shared/fixtures/metrics/FORMAT.md``) describes them and the observed official semantics. Tolerances: seqrank per-image 1e-9 and aggregates exact; irsr 1e-9; assr spr/sor 1e-9,
mae 1e-6. Every case runs through both mask back ends (RLE and dense bit-packed).
"""

from __future__ import annotations

import functools
import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest
from pycocotools import mask as mask_utils

from salrank.evaluation import (
    aggregate_assr,
    aggregate_irsr,
    aggregate_seqrank,
    assr_image_metrics,
    irsr_image_sa_sor,
    seqrank_image_metrics,
    seqrank_matching,
)

DATA = Path(__file__).parent / "data" / "metrics"

# pycocotools' decode (the independent reference decoder here) warns under numpy 2
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


@functools.cache
def load(protocol: str) -> dict:
    with open(DATA / protocol / "cases.json", encoding="utf-8") as fh:
        return json.load(fh)


def case_ids(protocol: str) -> list[str]:
    return [c["id"] for c in load(protocol)["cases"]]


def case(protocol: str, case_id: str) -> dict:
    return next(c for c in load(protocol)["cases"] if c["id"] == case_id)


def subset(protocol: str, name: str) -> list[str]:
    ids = load(protocol)["aggregates"][name]["case_ids"]
    return case_ids(protocol) if ids == "all" else ids


def decode(rles: list[dict], h: int, w: int) -> np.ndarray:
    if not rles:
        return np.zeros((0, h, w), np.uint8)
    return np.stack([mask_utils.decode({"size": r["size"], "counts": r["counts"].encode()}) for r in rles])


def as_backend(rles: list[dict], h: int, w: int, backend: str):
    return rles if backend == "rle" else decode(rles, h, w)


# ---------------------------------------------------------------------------------------------- seqrank
def seqrank_inputs(c: dict, backend: str):
    gt = [c["gt"][i]["rle"] for i in c["official_gt_order"]]
    preds = [p["rle"] for p in c["preds"]]
    return as_backend(gt, c["height"], c["width"], backend), as_backend(preds, c["height"], c["width"], backend)


@functools.cache
def seqrank_values(case_id: str, backend: str) -> dict:
    c = case("seqrank", case_id)
    gt, preds = seqrank_inputs(c, backend)
    return seqrank_image_metrics(gt, preds, height=c["height"], width=c["width"])


@pytest.mark.parametrize("backend", ["rle", "dense"])
@pytest.mark.parametrize("case_id", case_ids("seqrank"))
def test_seqrank_case(case_id: str, backend: str) -> None:
    c = case("seqrank", case_id)
    got = seqrank_values(case_id, backend)
    assert list(got) == list(c["expected"])
    for name, expected in c["expected"].items():
        value = got[name]
        if name in c["expected_none"]:
            assert value is None, name
        elif name in c["expected_nan"]:
            assert value is not None and math.isnan(value), name
        else:
            assert value is not None and not math.isnan(value), name
            assert value == pytest.approx(expected, abs=1e-9, rel=0), name


@pytest.mark.parametrize("case_id", [i for i in case_ids("seqrank") if "diagnostics" in case("seqrank", i)])
def test_seqrank_hungarian_pairs(case_id: str) -> None:
    c = case("seqrank", case_id)
    gt, preds = seqrank_inputs(c, "rle")
    m = seqrank_matching(gt, preds, height=c["height"], width=c["width"])
    diag = c["diagnostics"]
    assert m.gt_ind.tolist() == diag["hungarian_gt_ind"]
    assert m.pred_ind.tolist() == diag["hungarian_pred_ind"]
    np.testing.assert_allclose(m.ious, diag["hungarian_iou"], rtol=0, atol=1e-12)


@pytest.mark.parametrize("backend", ["rle", "dense"])
@pytest.mark.parametrize("name", list(load("seqrank")["aggregates"]))
def test_seqrank_aggregate(name: str, backend: str) -> None:
    expected = load("seqrank")["aggregates"][name]["expected"]
    rows = [seqrank_values(i, backend) for i in subset("seqrank", name)]
    agg = aggregate_seqrank(rows)
    got = {}
    for metric, a in agg.items():
        got[metric] = a.value
        got[f"{metric}_count"] = float(a.count)
    assert got == expected  # exact, 4-decimal official rounding included


def test_seqrank_values_are_bit_identical_across_backends() -> None:
    for case_id in case_ids("seqrank"):
        a, b = seqrank_values(case_id, "rle"), seqrank_values(case_id, "dense")
        for k in a:
            if a[k] is None or math.isnan(a[k]):
                assert (b[k] is None) == (a[k] is None)
            else:
                assert a[k] == b[k] and type(a[k]) is type(b[k]), (case_id, k)


# ---------------------------------------------------------------------------------------------- irsr
@functools.cache
def irsr_result(case_id: str, backend: str):
    c = case("irsr", case_id)
    h, w = c["height"], c["width"]
    gt = as_backend([g["rle"] for g in c["gt"]], h, w, backend)
    preds = as_backend([p["rle"] for p in c["preds"]], h, w, backend)
    return irsr_image_sa_sor(gt, [g["gt_rank"] for g in c["gt"]], preds, [p["score"] for p in c["preds"]], height=h, width=w)


@pytest.mark.parametrize("backend", ["rle", "dense"])
@pytest.mark.parametrize("case_id", case_ids("irsr"))
def test_irsr_case(case_id: str, backend: str) -> None:
    c = case("irsr", case_id)
    r = irsr_result(case_id, backend)
    assert r.status == c["expected_status"]
    expected = c["expected"]["sa_sor"]
    if expected is None:
        assert r.sa_sor is None
    else:
        assert r.sa_sor == pytest.approx(expected, abs=1e-9, rel=0)
    if "rank_index" in c["diagnostics"]:
        assert r.rank_index == c["diagnostics"]["rank_index"]


@pytest.mark.parametrize("name", list(load("irsr")["aggregates"]))
def test_irsr_aggregate(name: str) -> None:
    a = load("irsr")["aggregates"][name]
    agg = aggregate_irsr([irsr_result(i, "rle") for i in subset("irsr", name)])
    assert agg.images_used == a["images_used"]
    if a["expected_error"]:
        assert agg.sa_sor is None and "no usable image" in agg.error
    else:
        assert agg.error is None
        assert agg.sa_sor == pytest.approx(a["expected"]["sa_sor"], abs=1e-9, rel=0)


def test_irsr_default_scores_are_linspace() -> None:
    """Without scores the protocol ranks by linspace(1, 0.5, m) over the given order (PoseSOR __main__)."""
    for case_id in case_ids("irsr"):
        c = case("irsr", case_id)
        scores = [p["score"] for p in c["preds"]]
        if not scores or not np.array_equal(scores, np.linspace(1.0, 0.5, len(scores))):
            continue
        h, w = c["height"], c["width"]
        r = irsr_image_sa_sor([g["rle"] for g in c["gt"]], [g["gt_rank"] for g in c["gt"]], [p["rle"] for p in c["preds"]], height=h, width=w)
        assert (r.status, r.sa_sor) == (irsr_result(case_id, "rle").status, irsr_result(case_id, "rle").sa_sor)


# ---------------------------------------------------------------------------------------------- assr
@functools.cache
def assr_maps(case_id: str) -> tuple[np.ndarray, np.ndarray]:
    c = case("assr", case_id)
    pred = cv2.imread(str(DATA / "assr" / c["pred_map"]), cv2.IMREAD_COLOR)[:, :, 0]  # what the official code reads
    gt = cv2.imread(str(DATA / "assr" / c["gt_map"]), cv2.IMREAD_COLOR)[:, :, 0]
    return np.ascontiguousarray(pred), np.ascontiguousarray(gt)


@functools.cache
def assr_result(case_id: str, backend: str):
    c = case("assr", case_id)
    salient = [o for o in c["objects"] if o["rank_order"] > 0.5]
    masks = as_backend([o["rle"] for o in salient], c["height"], c["width"], backend)
    pred, gt = assr_maps(case_id)
    return assr_image_metrics(masks, [o["rank_order"] for o in salient], pred, gt)


@pytest.mark.parametrize("backend", ["rle", "dense"])
@pytest.mark.parametrize("case_id", case_ids("assr"))
def test_assr_case(case_id: str, backend: str) -> None:
    e = case("assr", case_id)["expected"]
    r = assr_result(case_id, backend)
    assert (r.spr_kind, r.spr_is_nan, r.used, r.use_indices) == (e["spr_kind"], e["spr_is_nan"], e["used"], e["use_indices"])
    if e["spr"] is None:
        assert r.spr is None
    else:
        assert r.spr == pytest.approx(e["spr"], abs=1e-9, rel=0)
    if e["sor"] is None:
        assert math.isnan(r.sor)
    else:
        assert r.sor == pytest.approx(e["sor"], abs=1e-9, rel=0)
    # float32 as the official code: bit-exact (FORMAT.md allows 1e-6)
    assert r.mae == e["mae"]
    assert r.mae_binary == e["mae_binary"]


@pytest.mark.parametrize("name", list(load("assr")["aggregates"]))
def test_assr_aggregate(name: str) -> None:
    a = load("assr")["aggregates"][name]
    agg = aggregate_assr([assr_result(i, "rle") for i in subset("assr", name)])
    e = a["expected"]
    assert agg.images_used == e["image_used"]
    if "sor" in a.get("expected_nan", []):
        assert math.isnan(agg.sor)
    else:
        assert agg.sor == pytest.approx(e["sor"], abs=1e-9, rel=0)
    assert agg.mae == pytest.approx(e["mae"], abs=1e-6, rel=0)
    assert agg.mae_binary == pytest.approx(e["mae_binary"], abs=1e-6, rel=0)
