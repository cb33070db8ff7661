"""``salrank data check``: every kind of problem is found, located and counted; the summary is right."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _data_builders import build_assr, build_irsr, build_posesor, build_seqrank

from salrank.cli import main
from salrank.data import check_dataset


@pytest.mark.parametrize("builder", [build_posesor, build_seqrank, build_assr, build_irsr])
def test_clean_datasets_pass(builder, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    report = check_dataset(builder(tmp_path))
    assert report.ok, [str(p) for p in report.problems]
    s = report.summary
    assert s is not None
    assert (s.images, s.instances, s.instances_per_image_min, s.instances_per_image_max) == (3, 7, 1, 3)
    assert s.rank_histogram == {1: 3, 2: 3, 3: 1}
    assert s.images_without_gt == 0


def broken_posesor(tmp_path: Path) -> Path:
    path = build_posesor(tmp_path)
    data = json.loads(path.read_text())
    anns = data["annotations"]
    img_dir = path.parent / "images" / "test"
    (img_dir / "COCO_val2014_000000000042.jpg").unlink()  # missing image file
    (img_dir / "COCO_val2014_000000000164.jpg").write_bytes(b"not an image")  # unreadable
    data["images"][0]["height"] = 50  # 192: annotated 50x64, file 48x64
    anns[0]["segmentation"] = [[34, 6, 80, 6, 47, 30]]  # 1000: vertex 16 px outside
    anns[1]["segmentation"] = [[4, 4, 30, 4]]  # 1001: 2 points
    anns[2]["segmentation"] = [[60, 60, 70, 60, 70, 70]]  # 1002: empty mask (fully outside) + outside
    anns[3]["id"] = 1004  # duplicate annotation id with the next one
    anns[5]["segmentation"] = anns[4]["segmentation"]  # 1005: identical mask to 1004
    anns[0]["keypoints"][0] = 500  # joint 0 is not labelled (v=0): not a problem
    anns[0]["keypoints"][3] = 500  # joint 1 (v=2) far outside
    data["images"].append(dict(data["images"][2], id=5, file_name="COCO_val2014_000000000042.jpg"))  # duplicate image
    data["images"].append({"id": 6, "file_name": "empty.jpg", "height": 10, "width": 10})  # no salient object
    path.write_text(json.dumps(data))
    return path


def test_every_problem_is_reported_with_file_image_and_annotation(tmp_path: Path) -> None:
    path = broken_posesor(tmp_path)
    report = check_dataset(path)
    lines = [f"{p.severity}: {p}" for p in report.problems]
    text = "\n".join(lines)
    f = str(path)
    expected = [
        f"error: {f}: image COCO_val2014_000000000192: annotation 1000: polygon has 1 vertices outside the 64x50 image (e.g. x=80, y=6)",
        f"error: {f}: image COCO_val2014_000000000192: annotation 1001: polygon is degenerate: 2 points",
        f"error: {f}: image COCO_val2014_000000000192: annotation 1002: empty mask",
        f"error: {f}: image COCO_val2014_000000000192: annotated size 50x64 differs from the image file's 48x64",
        f"error: {f}: annotation 1004: duplicate annotation id (used 2 times)",
        f"warning: {f}: image COCO_val2014_000000000164: annotation 1005: mask identical to that of annotation 1004",
        f"error: {f}: image COCO_val2014_000000000042: duplicate image: it appears 2 times",
        f"image COCO_val2014_000000000042: image file not found: {path.parent / 'images' / 'test' / 'COCO_val2014_000000000042.jpg'}",
        f"error: {path.parent / 'images' / 'test' / 'COCO_val2014_000000000164.jpg'}: image COCO_val2014_000000000164: image file is not a readable image",
        f"warning: {f}: image empty: no salient object",
        f"warning: {f}: image COCO_val2014_000000000192: annotation 1000: 1 labelled keypoints lie outside the image",
        f"warning: {f}: image COCO_val2014_000000000164: visiting orders (category_id) are 1, 2, 2; expected 1..3",
    ]
    for e in expected:
        assert e in text, f"missing: {e}\n--- got:\n{text}"
    assert not report.ok
    assert report.summary is not None and report.summary.images_without_gt == 2  # "empty" and the duplicate entry


def test_assr_rank_values_out_of_range(tmp_path: Path) -> None:
    root = build_assr(tmp_path)
    rank_file = root / "rank_order" / "test" / "COCO_val2014_000000000164.json"
    rank_file.write_text(json.dumps({"rank_order": [1.3, 0.9, 0.9]}))
    report = check_dataset(root)
    assert any(str(p).startswith(f"{rank_file}: image COCO_val2014_000000000164: object 0: rank_order 1.3 is above 1.0") for p in report.errors)


def test_check_collects_problems_that_loading_would_raise(tmp_path: Path) -> None:
    path = build_seqrank(tmp_path)
    data = json.loads(path.read_text())
    data["data"][0]["annotations"][1]["category_id"] = None
    data["data"][2]["annotations"][0]["segmentation"] = 5
    path.write_text(json.dumps(data))
    report = check_dataset(path)
    texts = [str(p) for p in report.errors]
    assert any("image COCO_val2014_000000000192: annotation 1: 'category_id' must be a number" in t for t in texts)
    assert any("image COCO_val2014_000000000042: annotation 0: segmentation must be polygons or an RLE" in t for t in texts)
    assert report.summary is not None and report.summary.images == 3


def test_unreadable_file_is_one_error_without_summary(tmp_path: Path) -> None:
    path = tmp_path / "x_test.json"
    path.write_text("[1, 2")
    report = check_dataset(path)
    assert report.summary is None and len(report.errors) == 1
    assert str(report.errors[0]).startswith(f"{path}: not valid JSON")


def test_cli_check_output_and_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = build_seqrank(tmp_path / "good")
    assert main(["data", "check", str(good)]) == 0
    out = capsys.readouterr().out
    assert "images               3" in out and "OK: no errors" in out
    assert "instances / image    min 1, mean 2.33, max 3" in out
    assert "      1        3  ##############################" in out

    bad = broken_posesor(tmp_path / "bad")
    report_json = tmp_path / "report.json"
    assert main(["data", "check", str(bad), "--max-problems", "2", "--json", str(report_json)]) == 1
    out = capsys.readouterr().out
    assert "FAILED:" in out and "more (raise --max-problems or use --json)" in out
    saved = json.loads(report_json.read_text())
    assert saved["errors"] >= 8 and saved["summary"]["images"] == 5

    assert main(["data", "check", str(bad), "--no-images"]) == 1
    out = capsys.readouterr().out
    assert "image file not found" not in out
