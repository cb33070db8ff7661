"""Prediction files: the official result .pth, COCO results JSON, per-image JSONs; detection and bad input."""

from __future__ import annotations

import io
import json
import logging
import os
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from _data_builders import build_posesor
from pycocotools import mask as mask_utils

from salrank.data import load_dataset
from salrank.errors import InputError
from salrank.io import (
    RankMapFolder,
    load_predictions,
    render_rank_map,
    save_coco_results,
    save_json_folder,
    save_result_file,
)
from salrank.structures import RankedInstances

RNG = np.random.default_rng(0)


def prediction(name: str, h: int, w: int, n: int = 3, keypoints: bool = True) -> RankedInstances:
    masks = np.zeros((n, h, w), bool)
    for k in range(n):
        y, x = RNG.integers(0, h // 2), RNG.integers(0, w // 2)
        masks[k, y : y + h // 3, x : x + w // 3] = True
    kp = None
    if keypoints:
        kp = (RNG.random((n, 17, 3)) * [w, h, 1]).astype(np.float32)
    return RankedInstances.from_masks(
        masks,
        image_name=name,
        scores=RNG.random(n).astype(np.float32),
        saliency=np.sort(RNG.random(n).astype(np.float32))[::-1],
        boxes=(RNG.random((n, 4)) * 20).astype(np.float32),
        keypoints=kp,
        model="posesor",
    )


def assert_same(a: RankedInstances, b: RankedInstances, keypoints: bool = True) -> None:
    assert (a.height, a.width, len(a)) == (b.height, b.width, len(b))
    np.testing.assert_array_equal(a.masks, b.masks)
    np.testing.assert_array_equal(a.scores, b.scores)
    np.testing.assert_array_equal(a.saliency, b.saliency)
    np.testing.assert_array_equal(a.boxes, b.boxes)
    if keypoints:
        assert (a.keypoints is None) == (b.keypoints is None)
        if a.keypoints is not None:
            np.testing.assert_array_equal(a.keypoints, b.keypoints)


@pytest.fixture
def preds() -> dict[str, RankedInstances]:
    return {
        "COCO_val2014_000000000192": prediction("COCO_val2014_000000000192", 48, 64),
        "COCO_val2014_000000000164": prediction("COCO_val2014_000000000164", 40, 50, n=1),
        "COCO_val2014_000000000042": RankedInstances.empty("COCO_val2014_000000000042", 30, 40),
    }


# ---------------------------------------------------------------------------------------------- result .pth
def test_result_file_round_trip_is_lossless(tmp_path: Path, preds: dict[str, RankedInstances]) -> None:
    path = tmp_path / "assr_test_coco_format.pth"
    save_result_file(preds, path)
    back = load_predictions(path)
    assert list(back) == list(preds)
    for name in preds:
        assert_same(preds[name], back[name])  # type: ignore[index]
    assert back["COCO_val2014_000000000192"].model == "posesor"  # type: ignore[index]


def test_result_file_has_the_official_layout(tmp_path: Path, preds: dict[str, RankedInstances]) -> None:
    path = tmp_path / "r.pth"
    save_result_file(list(preds.values()), path)
    data = torch.load(path, weights_only=True)  # plain torch, no allow-list needed
    entry = data["COCO_val2014_000000000192"]
    assert entry["image_name"] == "COCO_val2014_000000000192" and entry["num"] == 3
    assert isinstance(entry["masks"][0]["counts"], bytes)
    np.testing.assert_array_equal(mask_utils.decode(entry["masks"][0]), preds["COCO_val2014_000000000192"].masks[0])
    joints = np.asarray(entry["joints"])
    assert joints.shape == (3, 17, 3) and joints[:, :, :2].max() <= 1.0  # normalised by W, H
    assert len(entry["bboxes"]) == 3 and len(entry["scores"]) == 3 and len(entry["saliency"]) == 3


def official_posesor_file(path: Path, h: int = 20, w: int = 30, numpy1_names: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """A result file as PoseSOR's evaluator writes it: numpy joints, float lists, no bboxes."""
    masks = np.zeros((2, h, w), np.uint8)
    masks[0, 2:8, 3:9] = 1
    masks[1, 10:15, 10:25] = 1
    joints = RNG.random((2, 17, 3)).astype(np.float32)
    content = {
        "img": {
            "image_name": "img",
            "masks": [mask_utils.encode(np.asfortranarray(m)) for m in masks],
            "joints": [j for j in joints],
            "scores": [0.9, np.float32(0.8)],
            "saliency": [0.7, 0.3],
            "num": 2,
        }
    }
    buf = io.BytesIO()
    torch.save(content, buf)
    raw = buf.getvalue()
    if numpy1_names:  # files written with numpy 1.x name numpy.core.multiarray
        zin = zipfile.ZipFile(io.BytesIO(raw))
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w") as zout:
            for name in zin.namelist():
                data = zin.read(name)
                if name.endswith("data.pkl"):
                    data = data.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
                zout.writestr(name, data)
        raw = out.getvalue()
    path.write_bytes(raw)
    return masks, joints


@pytest.mark.parametrize("numpy1_names", [False, True])
def test_official_posesor_result_file_with_numpy_arrays(tmp_path: Path, numpy1_names: bool) -> None:
    path = tmp_path / "assr_test_coco_format.pth"
    masks, joints = official_posesor_file(path, numpy1_names=numpy1_names)
    r = load_predictions(path)["img"]  # type: ignore[index]
    np.testing.assert_array_equal(r.masks, masks.astype(bool))
    np.testing.assert_allclose(r.keypoints[:, :, 0], joints[:, :, 0] * 30, rtol=1e-6)  # type: ignore[index]
    np.testing.assert_allclose(r.keypoints[:, :, 1], joints[:, :, 1] * 20, rtol=1e-6)  # type: ignore[index]
    np.testing.assert_array_equal(r.keypoints[:, :, 2], joints[:, :, 2])  # type: ignore[index]
    np.testing.assert_allclose(r.scores, [0.9, 0.8], rtol=1e-6)
    np.testing.assert_allclose(r.saliency, [0.7, 0.3], rtol=1e-6)
    np.testing.assert_array_equal(r.boxes, [[3, 2, 9, 8], [10, 10, 25, 15]])  # from the masks


class _Evil:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (os.system, (f"touch {self.marker}",))


def test_malicious_result_file_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pth"
    torch.save({"img": {"masks": [], "x": _Evil(marker)}}, path)
    with pytest.raises(InputError, match="refusing to load") as exc:
        load_predictions(path)
    assert exc.value.path == str(path)
    assert not marker.exists()


def test_truncated_and_wrong_result_files(tmp_path: Path, preds: dict[str, RankedInstances]) -> None:
    path = tmp_path / "r.pth"
    save_result_file(preds, path)
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(InputError, match="cannot read this file as a PyTorch file") as exc:
        load_predictions(path)
    assert exc.value.path == str(path)
    torch.save({"backbone.weight": torch.zeros(3)}, path)
    with pytest.raises(InputError, match="looks like a model checkpoint"):
        load_predictions(path)
    torch.save([1, 2, 3], path)
    with pytest.raises(InputError, match="not a SeqRank/PoseSOR result file"):
        load_predictions(path)
    torch.save({"img": {"scores": [1.0]}}, path)
    with pytest.raises(InputError, match="image img: entry has no 'masks'"):
        load_predictions(path)


def test_result_masks_of_the_wrong_size_name_the_image(tmp_path: Path) -> None:
    gt = load_dataset(build_posesor(tmp_path / "gt"))
    path = tmp_path / "r.pth"
    save_result_file([prediction("COCO_val2014_000000000192", 40, 64)], path)
    with pytest.raises(InputError) as exc:
        load_predictions(path, gt=gt)
    assert str(exc.value) == f"{path}: image COCO_val2014_000000000192: mask size 40x64 differs from the image size 48x64"


def test_predictions_for_unknown_images_are_listed(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    gt = load_dataset(build_posesor(tmp_path / "gt"))
    path = tmp_path / "r.pth"
    save_result_file([prediction("COCO_val2014_000000000192", 48, 64), prediction("cat", 10, 10), prediction("dog", 10, 10)], path)
    with caplog.at_level(logging.WARNING):
        out = load_predictions(path, gt=gt)
    assert set(out) == {"COCO_val2014_000000000192", "cat", "dog"}
    assert "2 predicted images are not in the ground truth and will be ignored: cat, dog" in caplog.text
    assert str(path) in caplog.text


# ---------------------------------------------------------------------------------------------- COCO results
def test_coco_results_round_trip_with_gt_ids(tmp_path: Path, preds: dict[str, RankedInstances]) -> None:
    gt = load_dataset(build_posesor(tmp_path / "gt"))
    path = tmp_path / "results.json"
    save_coco_results(preds, path, gt=gt)
    entries = json.loads(path.read_text())
    assert {e["image_id"] for e in entries} == {192, 164}
    first = entries[0]
    assert first["rank"] == 1 and first["category_id"] == 1 and isinstance(first["segmentation"]["counts"], str)
    assert len(first["keypoints"]) == 51 and len(first["bbox"]) == 4
    with pytest.raises(InputError, match="pass the ground truth"):
        load_predictions(path)
    back = load_predictions(path, gt=gt)
    assert set(back) == {"COCO_val2014_000000000192", "COCO_val2014_000000000164"}  # empty results have no entry
    for name, r in back.items():  # type: ignore[union-attr]
        assert_same(preds[name], r)
        assert r.extras["explicit_rank_scores"] is True


def test_coco_results_with_names_sorting_and_fallbacks(tmp_path: Path) -> None:
    m = np.zeros((4, 10, 10), np.uint8)
    for k in range(4):
        m[k, k : k + 2, k : k + 2] = 1
    rles = [{"size": [10, 10], "counts": mask_utils.encode(np.asfortranarray(x))["counts"].decode()} for x in m]
    entries = [
        {"image_id": "a.jpg", "segmentation": rles[0], "score": 0.2},  # no rank: after the ranked ones, by score
        {"image_id": "a.jpg", "segmentation": rles[1], "rank": 2, "score": 0.5},
        {"image_id": "a.jpg", "segmentation": rles[2], "rank": 1, "score": 0.9},
        {"image_id": "a.jpg", "segmentation": rles[3], "score": 0.6},
    ]
    path = tmp_path / "r.json"
    path.write_text(json.dumps(entries))
    r = load_predictions(path)["a"]  # type: ignore[index]
    np.testing.assert_array_equal(r.masks, m[[2, 1, 3, 0]].astype(bool))
    np.testing.assert_allclose(r.saliency, [0.9, 0.5, 0.6, 0.2])
    np.testing.assert_allclose(r.scores, [0.9, 0.5, 0.6, 0.2])  # no objectness: the score
    assert r.extras["explicit_rank_scores"] is True
    for e in entries:
        del e["score"]
    path.write_text(json.dumps(entries))
    r = load_predictions(path)["a"]  # type: ignore[index]
    np.testing.assert_allclose(r.saliency, np.linspace(1.0, 0.5, 4), rtol=1e-6)  # the field's default
    np.testing.assert_array_equal(r.scores, np.ones(4))
    assert "explicit_rank_scores" not in r.extras


def test_coco_results_bad_input(tmp_path: Path) -> None:
    gt = load_dataset(build_posesor(tmp_path / "gt"))
    path = tmp_path / "r.json"
    bad_size = {"size": [5, 5], "counts": mask_utils.encode(np.asfortranarray(np.ones((5, 5), np.uint8)))["counts"].decode()}
    path.write_text(json.dumps([{"image_id": 192, "segmentation": bad_size, "rank": 1, "score": 1.0}]))
    with pytest.raises(InputError) as exc:
        load_predictions(path, gt=gt)
    assert str(exc.value) == f"{path}: image COCO_val2014_000000000192: rank 1: mask size 5x5 differs from the image size 48x64"
    path.write_text(json.dumps([{"image_id": 999, "segmentation": bad_size}]))
    with pytest.raises(InputError, match=r"1 integer image_id values are not ids of the ground truth \(999\)"):
        load_predictions(path, gt=gt)
    path.write_text(json.dumps([{"image_id": "x", "bbox": [0, 0, 1, 1]}]))
    with pytest.raises(InputError, match="image x: rank \\?: entry has no segmentation"):
        load_predictions(path)
    path.write_text(json.dumps([{"segmentation": bad_size}]))
    with pytest.raises(InputError, match="entry 0: entry without an 'image_id'"):
        load_predictions(path)


# ---------------------------------------------------------------------------------------------- JSON folders and detection
def test_json_folder_round_trip(tmp_path: Path, preds: dict[str, RankedInstances]) -> None:
    folder = tmp_path / "pred"
    save_json_folder(preds, folder)
    back = load_predictions(folder)
    assert set(back) == set(preds)
    for name in preds:
        assert_same(preds[name], back[name])  # type: ignore[index]
    single = load_predictions(folder / "COCO_val2014_000000000164.json")
    assert list(single) == ["COCO_val2014_000000000164"]
    with pytest.raises(InputError, match="refusing to overwrite"):
        save_json_folder(preds, folder)


def test_json_prediction_of_the_wrong_size(tmp_path: Path) -> None:
    gt = load_dataset(build_posesor(tmp_path / "gt"))
    folder = tmp_path / "pred"
    save_json_folder([prediction("COCO_val2014_000000000042", 31, 40)], folder)
    with pytest.raises(InputError, match="image COCO_val2014_000000000042: prediction size 31x40 differs from the image size 30x40"):
        load_predictions(folder, gt=gt)


def test_detection_and_unknown_formats(tmp_path: Path, preds: dict[str, RankedInstances]) -> None:
    gt_file = build_posesor(tmp_path / "gt")
    with pytest.raises(InputError, match="ground-truth annotation file, not predictions"):
        load_predictions(gt_file)
    (tmp_path / "x.txt").write_text("hello")
    with pytest.raises(InputError, match="unknown prediction format") as exc:
        load_predictions(tmp_path / "x.txt")
    assert exc.value.path == str(tmp_path / "x.txt")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no predictions found"):
        load_predictions(tmp_path / "empty")
    maps = tmp_path / "maps"
    maps.mkdir()
    import cv2

    cv2.imwrite(str(maps / "COCO_val2014_000000000192.png"), render_rank_map(preds["COCO_val2014_000000000192"]))
    folder = load_predictions(maps)
    assert isinstance(folder, RankMapFolder) and folder.keys() == ["COCO_val2014_000000000192"]


def test_ranked_instances_helpers(preds: dict[str, RankedInstances]) -> None:
    r = preds["COCO_val2014_000000000192"]
    assert r.to_result_entry()["num"] == 3
    assert [e["rank"] for e in r.to_coco(192)] == [1, 2, 3]
    np.testing.assert_array_equal(r.to_rank_map("seqrank"), render_rank_map(r, "seqrank"))


def test_legacy_pickle_result_file_is_refused_cleanly(tmp_path: Path) -> None:
    path = tmp_path / "old.pth"
    path.write_bytes(pickle.dumps({"img": {"masks": []}}, protocol=2)[:-3])
    with pytest.raises(InputError) as exc:
        load_predictions(path)
    assert exc.value.path == str(path)


def test_coco_results_with_odd_ranks_warn(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    rle = {"size": [4, 4], "counts": mask_utils.encode(np.asfortranarray(np.ones((4, 4), np.uint8)))["counts"].decode()}
    path = tmp_path / "r.json"
    path.write_text(json.dumps([{"image_id": "a", "segmentation": rle, "rank": 1, "score": 0.3}, {"image_id": "a", "segmentation": rle, "rank": 1, "score": 0.9}]))
    with caplog.at_level(logging.WARNING):
        r = load_predictions(path)["a"]  # type: ignore[index]
    np.testing.assert_allclose(r.saliency, [0.9, 0.3])  # tie broken by descending score
    assert f"{path}: image a: 1 entries share a rank" in caplog.text
    path.write_text(json.dumps([{"image_id": "a", "segmentation": rle, "rank": "first"}]))
    with caplog.at_level(logging.WARNING):
        load_predictions(path)
    assert "rank values ['first'] are not numbers" in caplog.text
