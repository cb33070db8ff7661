"""``salrank eval`` end to end: files on disk -> command line -> table and JSON report, official values."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from eval_fixture_data import (
    cases,
    expected_aggregate,
    irsr_dataset,
    seqrank_dataset,
    write_assr_layout,
    write_assr_maps,
    write_posesor_json,
)

from salrank.cli import main
from salrank.io import save_coco_results, save_result_file

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["eval", "--no-progress", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


def test_assr_folder_and_map_folder(tmp_path, capsys) -> None:
    root = write_assr_layout(tmp_path / "ASSR", limit=10)
    maps = write_assr_maps(tmp_path / "maps", "pred_map", limit=10)
    report = tmp_path / "assr.json"
    code, out, err = run(capsys, "--protocol", "assr", "--gt", root, "--split", "test", "--pred", maps, "--report", report)
    assert code == 0, err
    e = expected_aggregate("assr", "first_10")["expected"]
    data = json.loads(report.read_text())
    assert data["protocol"] == "assr" and data["images_used"] == e["image_used"] == data["counts"]["sor"]
    assert data["metrics"]["sor"] == pytest.approx(e["sor"], abs=1e-9, rel=0)
    assert data["metrics"]["mae"] == pytest.approx(e["mae"], abs=1e-6, rel=0)
    assert data["metrics"]["mae_binary"] == pytest.approx(e["mae_binary"], abs=1e-6, rel=0)
    assert len(data["per_image"]) == 10 and data["missing_predictions"] == [] and data["unknown_predictions"] == []
    assert not any("drawn from the GT" in n for n in data["notes"])  # the layout's gt/test maps were used
    assert "sor" in out and f"{e['sor']:.6f}" in out and "10 used" in out
    # the report is not overwritten silently
    code, _, err = run(capsys, "--protocol", "assr", "--gt", root, "--split", "test", "--pred", maps, "--report", report)
    assert code == 2 and "refusing to overwrite" in err and err.count("\n") == 1


@pytest.fixture(scope="module")
def seqrank_files(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("seqrank")
    ds, preds = seqrank_dataset(limit=10)
    gt = write_posesor_json(tmp / "golden_test.json", ds)
    pth = tmp / "results.pth"
    save_result_file(preds, pth)
    coco = tmp / "results.json"
    save_coco_results(preds, coco, gt=ds)
    return gt, pth, coco


@pytest.mark.parametrize("kind", ["pth", "coco"])
def test_seqrank_result_files(seqrank_files, kind, tmp_path, capsys) -> None:
    gt, pth, coco = seqrank_files
    report = tmp_path / "r.json"
    code, out, err = run(capsys, "--protocol", "seqrank", "--gt", gt, "--pred", pth if kind == "pth" else coco, "--report", report, "--per-image")
    assert code == 0, err
    data = json.loads(report.read_text())
    for name, value in expected_aggregate("seqrank", "first_10")["expected"].items():
        if name.endswith("_count"):
            assert data["counts"][name[:-6]] == value
        else:
            assert data["metrics"][name] == value, name
    assert data["missing_predictions"] == [c["id"] for c in cases("seqrank")["cases"][:10] if not c["preds"]]
    assert "sa_sor" in out and "seqrank-public-009" in out  # per-image rows


def test_irsr_coco_results_with_scores(tmp_path, capsys) -> None:
    ds, preds = irsr_dataset(limit=10)
    gt = write_posesor_json(tmp_path / "golden_test.json", ds)
    coco = tmp_path / "results.json"
    save_coco_results(preds, coco, gt=ds)
    code, out, err = run(capsys, "--protocol", "irsr", "--gt", gt, "--pred", coco, "--report", tmp_path / "r.json")
    assert code == 0, err
    data = json.loads((tmp_path / "r.json").read_text())
    agg = expected_aggregate("irsr", "first_10")
    assert data["images_used"] == agg["images_used"]
    assert data["metrics"]["sa_sor"] == pytest.approx(agg["expected"]["sa_sor"], abs=1e-9, rel=0)


def test_irsr_no_usable_image_exits_2_with_one_line(tmp_path, capsys) -> None:
    ds, preds = irsr_dataset()
    ds.images[:] = [img for img in ds.images if len(img.instances) == 1]
    ds.__post_init__()
    gt = write_posesor_json(tmp_path / "single_test.json", ds)
    pth = tmp_path / "r.pth"
    save_result_file({k: v for k, v in preds.items() if k in ds}, pth)
    code, out, err = run(capsys, "--protocol", "irsr", "--gt", gt, "--pred", pth)
    assert code == 2
    assert "no usable image" in err and "Traceback" not in err


def test_unknown_predictions_are_warned_and_reported(tmp_path, capsys, caplog) -> None:
    ds, preds = seqrank_dataset(limit=4)
    gt = write_posesor_json(tmp_path / "small_test.json", ds)
    ds_all, preds_all = seqrank_dataset(limit=8)
    pth = tmp_path / "r.pth"
    save_result_file(preds_all, pth)
    code, out, err = run(capsys, "--protocol", "seqrank", "--gt", gt, "--pred", pth, "--report", tmp_path / "r.json")
    assert code == 0
    data = json.loads((tmp_path / "r.json").read_text())
    extra = [i for i in preds_all if i not in {img.image_id for img in ds.images}]
    assert data["unknown_predictions"] == extra
    assert "not in the ground truth" in caplog.text and extra[0] in caplog.text
    assert "unknown predictions: 4" in out


@pytest.mark.parametrize(
    "args, message",
    [
        (["--protocol", "seqrank", "--gt", "{tmp}/nope.json", "--pred", "{tmp}"], "not found"),
        (["--protocol", "seqrank", "--gt", "{gt}", "--pred", "{tmp}/nope.pth"], "not found"),
        (["--protocol", "seqrank", "--gt", "{gt}", "--pred", "{gt}"], "ground-truth annotation file"),
        (["--protocol", "seqrank", "--gt", "{gt}", "--pred", "{bad}"], "differs from the image size"),
        (["--protocol", "seqrank", "--gt", "{gt}", "--pred", "{pth}", "--metrics", "sa_sor,spr"], "unknown seqrank metric"),
    ],
)
def test_user_mistakes_exit_2_with_one_line(args, message, tmp_path, capsys) -> None:
    ds, preds = seqrank_dataset(limit=3)
    gt = write_posesor_json(tmp_path / "small_test.json", ds)
    pth = tmp_path / "r.pth"
    save_result_file(preds, pth)
    from salrank.structures import RankedInstances

    bad_preds = dict(preds)
    name = ds.images[0].image_id
    bad_preds[name] = RankedInstances.from_masks(np.ones((1, 5, 5), bool), image_name=name)
    bad = tmp_path / "bad.pth"
    save_result_file(bad_preds, bad)
    argv = [a.format(tmp=tmp_path, gt=gt, pth=pth, bad=bad) for a in args]
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert message in err and err.startswith("salrank eval: error:") and err.count("\n") == 1


def test_map_folder_under_seqrank_is_split_into_instances(tmp_path, capsys) -> None:
    """Rank maps under the seqrank protocol: one instance per grey level, brightest first (PoseSOR evaluate_map)."""
    from salrank.io import save_rank_maps
    from salrank.structures import GTImage, GTInstance, RankedInstances, SORDataset
    from salrank.utils.masks import encode_rle

    h, w = 30, 40
    masks = np.zeros((3, h, w), bool)
    masks[0, :10, :10] = masks[1, 12:20, 5:30] = masks[2, 22:, :] = True
    ds = SORDataset([GTImage("a", "a.jpg", h, w, [GTInstance(segmentation=encode_rle(m), rank=k + 1, id=k) for k, m in enumerate(masks)], coco_id=1)])
    gt = write_posesor_json(tmp_path / "maps_test.json", ds)
    save_rank_maps({"a": RankedInstances.from_masks(masks, image_name="a")}, tmp_path / "maps", style="seqrank")
    code, out, err = run(capsys, "--protocol", "seqrank", "--gt", gt, "--pred", tmp_path / "maps", "--report", tmp_path / "r.json")
    assert code == 0, err
    m = json.loads((tmp_path / "r.json").read_text())["metrics"]
    assert m["sa_sor"] == 1.0 and m["sor"] == 1.0 and m["ap"] == 1.0 and m["mae"] == 0.0
    assert not math.isnan(m["fbeta"])
