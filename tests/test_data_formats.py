"""Reading the field's ground-truth formats: ranks, orders, sizes, detection and round trips."""

from __future__ import annotations

import json
import logging
import pickle
from pathlib import Path

import numpy as np
import pytest
from _data_builders import (
    PERSON_KEYPOINTS,
    SCENES,
    build_assr,
    build_irsr,
    build_posesor,
    build_seqrank,
    gt_order,
    scene_mask,
    write_image,
)

from salrank.data import DATASET_FORMATS, load_dataset, save_dataset
from salrank.data.formats import detect_dataset
from salrank.errors import InputError
from salrank.structures import SORDataset

BUILDERS = {"posesor": build_posesor, "seqrank": build_seqrank, "assr": build_assr, "irsr": build_irsr}


def masks_of(img) -> np.ndarray:  # type: ignore[no-untyped-def]
    return img.gt_masks().astype(bool)


@pytest.fixture(params=DATASET_FORMATS)
def built(request, tmp_path) -> tuple[str, Path]:  # type: ignore[no-untyped-def]
    fmt = request.param
    return fmt, BUILDERS[fmt](tmp_path / fmt)


# ---------------------------------------------------------------------------------------------- reading
def test_every_format_reads_to_the_same_ground_truth(built) -> None:  # type: ignore[no-untyped-def]
    fmt, path = built
    ds = load_dataset(path)
    assert ds.format == fmt and ds.split == "test"
    assert ds.image_root is not None and ds.image_root.is_dir()
    assert [img.image_id for img in ds] == list(SCENES)
    for img in ds:
        h, w, objects = SCENES[img.image_id]
        assert (img.height, img.width) == (h, w)
        assert (ds.image_root / img.file_name).is_file()
        expected = np.stack([scene_mask(img.image_id, k) for k in gt_order(img.image_id)]).astype(bool)
        np.testing.assert_array_equal(masks_of(img), expected)
        assert img.ranks == sorted(objects[k][1] for k in gt_order(img.image_id))  # type: ignore[type-var]
        n_unranked = sum(r is None for _, r in objects) if fmt in ("seqrank", "assr") else 0
        assert len(img.unranked) == n_unranked


def test_posesor_keeps_keypoints_classes_and_ids(tmp_path: Path) -> None:
    ds = load_dataset(build_posesor(tmp_path))
    img = ds["COCO_val2014_000000000192"]
    assert img.coco_id == 192
    first = img.instances[0]
    assert first.category == 1 and first.rank_value == 1 and first.id == 1000
    np.testing.assert_array_equal(first.keypoints, PERSON_KEYPOINTS)
    assert first.bbox == [34.0, 6.0, 26.0, 24.0]


def test_seqrank_order_is_the_official_stable_descending_sort(tmp_path: Path) -> None:
    cats = [2, 5, 2, 0, -1, 5, 3]
    anns = [{"category_id": c, "segmentation": [[k, 0, k + 1, 0, k + 1, 1]]} for k, c in enumerate(cats)]
    path = tmp_path / "x_test.json"
    path.write_text(json.dumps({"data": [{"image_name": "img", "height": 10, "width": 10, "annotations": anns}]}))
    img = load_dataset(path)["img"]
    # what SeqRank's test mapper does: keep category_id > 0, list.sort(key=cat, reverse=True) (stable)
    official = sorted([(c, k) for k, c in enumerate(cats) if c > 0], key=lambda t: t[0], reverse=True)
    assert [inst.id for inst in img.instances] == [k for _, k in official] == [1, 5, 6, 0, 2]
    assert img.ranks == [1, 1, 2, 3, 3]
    assert [inst.id for inst in img.unranked] == [3, 4]
    assert [inst.rank_value for inst in img.unranked] == [0, -1]


def test_assr_salient_threshold_odd_values_and_ties(tmp_path: Path) -> None:
    root = build_assr(tmp_path)
    values = [0.52, 1.0, 0.0, 0.52, 0.5, -0.2, 0.7]
    image_id = "COCO_val2014_000000000042"
    objs = [{"bbox": [k, 0, k + 2, 2], "segmentation": [[k, 0, k + 2, 0, k + 2, 2, k, 2]]} for k in range(len(values))]
    entries = [{"img": image_id, "object_data": objs}]
    (root / "obj_seg_data_test.json").write_text(json.dumps(entries))
    (root / "test_images.txt").write_text(image_id + "\n")
    (root / "rank_order" / "test" / f"{image_id}.json").write_text(json.dumps({"rank_order": values}))
    img = load_dataset(root)[image_id]
    assert [inst.id for inst in img.instances] == [1, 6, 0, 3]
    assert img.ranks == [1, 2, 3, 3]
    assert [inst.rank_value for inst in img.instances] == [1.0, 0.7, 0.52, 0.52]
    assert [inst.id for inst in img.unranked] == [2, 4, 5]
    assert img.instances[0].bbox == [1, 0, 2, 2]  # x1y1x2y2 in the file, xywh in salrank


def test_assr_image_size_sources(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    root = build_assr(tmp_path, rle_object=False)
    for p in (root / "images" / "test").iterdir():
        p.unlink()
    (root / "gt" / "test").mkdir(parents=True)
    # gt PNG for the first image only, of a different size than the scene, to see where sizes come from
    write_image(root / "gt" / "test" / "COCO_val2014_000000000192.png", 50, 70)
    with caplog.at_level(logging.INFO, logger="salrank.data"):
        ds = load_dataset(root)
    assert (ds[0].height, ds[0].width) == (50, 70)
    assert (ds[1].height, ds[1].width) == (480, 640)  # nothing known: the official evaluation's size
    assert "assuming 480x640" in caplog.text
    assert "1 gt PNGs" in caplog.text and "2 assumed" in caplog.text


def test_assr_rle_gives_the_size(tmp_path: Path) -> None:
    root = build_assr(tmp_path, rle_object=True)
    for p in (root / "images" / "test").iterdir():
        p.unlink()
    ds = load_dataset(root)
    assert (ds["COCO_val2014_000000000192"].height, ds["COCO_val2014_000000000192"].width) == (48, 64)


def test_assr_unlisted_images_are_reported_not_dropped_silently(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    root = build_assr(tmp_path)
    (root / "test_images.txt").write_text("COCO_val2014_000000000042\n")
    with caplog.at_level(logging.WARNING):
        ds = load_dataset(root)
    assert [img.image_id for img in ds] == ["COCO_val2014_000000000042"]
    assert "2 images of obj_seg_data_test.json are not listed in test_images.txt" in caplog.text


def test_irsr_higher_level_is_more_salient_and_zero_is_salient(tmp_path: Path) -> None:
    root = tmp_path / "IRSR"
    write_image(root / "Images" / "test" / "rgb" / "a.jpg", 20, 20)
    anns = [{"bbox": [k, 0, 2, 2], "segmentation": [[k, 0, k + 2, 0, k + 2, 2, k, 2]], "is_person": 0} for k in range(4)]
    (root / "Annotations").mkdir(parents=True)
    (root / "Annotations" / "test.pkl").write_bytes(pickle.dumps([{"file_name": "C:\\x\\a.jpg", "annotations": anns, "rank": np.array([0, 7, 3, 7])}]))
    ds = load_dataset(root / "Annotations" / "test.pkl")
    img = ds["a"]
    assert (img.height, img.width) == (20, 20)  # from the image file
    assert [inst.id for inst in img.instances] == [1, 3, 2, 0]
    assert img.ranks == [1, 1, 2, 3]
    assert img.unranked == []


def test_posesor_file_out_of_visiting_order_is_sorted_with_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = build_posesor(tmp_path)
    data = json.loads(path.read_text())
    data["annotations"] = data["annotations"][::-1]
    path.write_text(json.dumps(data))
    with caplog.at_level(logging.WARNING):
        ds = load_dataset(path)
    assert [inst.rank for inst in ds["COCO_val2014_000000000192"].instances] == [1, 2, 3]
    assert "not in ascending visiting order" in caplog.text


# ---------------------------------------------------------------------------------------------- detection
def test_detection_of_paths(tmp_path: Path) -> None:
    assr_root = build_assr(tmp_path / "ASSR")
    assert detect_dataset(assr_root).format == "assr"
    src = detect_dataset(assr_root / "obj_seg_data_test.json")
    assert (src.format, src.path, src.split) == ("assr", assr_root, "test")
    irsr_root = build_irsr(tmp_path / "IRSR")
    assert detect_dataset(irsr_root).path == irsr_root / "Annotations" / "test.pkl"
    assert detect_dataset(irsr_root / "Annotations").format == "irsr"
    seq = build_seqrank(tmp_path / "D")
    assert detect_dataset(seq.parent).format == "seqrank"
    assert detect_dataset(build_posesor(tmp_path / "P")).format == "posesor"


def test_split_must_be_chosen_when_ambiguous(tmp_path: Path) -> None:
    root = build_assr(tmp_path / "ASSR", split="test")
    build_assr(root, split="val")
    with pytest.raises(InputError, match=r"several splits \(test, val\)"):
        load_dataset(root)
    with pytest.raises(InputError, match=r"split 'train' not found; available: test, val"):
        load_dataset(root, split="train")
    assert load_dataset(root, split="val").split == "val"


def test_dataset_root_with_sub_folders_gives_a_hint(tmp_path: Path) -> None:
    build_seqrank(tmp_path)
    with pytest.raises(InputError, match="datasets found in sub-folders") as exc:
        load_dataset(tmp_path)
    assert str(tmp_path / "irsr") in str(exc.value)


# ---------------------------------------------------------------------------------------------- round trips
def assert_same_ground_truth(a: SORDataset, b: SORDataset, *, values: bool = True, keypoints: bool = True) -> None:
    assert [img.image_id for img in a] == [img.image_id for img in b]
    for ia, ib in zip(a, b):
        assert (ia.height, ia.width) == (ib.height, ib.width)
        np.testing.assert_array_equal(masks_of(ia), masks_of(ib))
        assert ia.ranks == ib.ranks
        if values:
            assert [i.rank_value for i in ia.instances] == [i.rank_value for i in ib.instances]
            assert [i.rank_value for i in ia.unranked] == [i.rank_value for i in ib.unranked]
        for x, y in zip(ia.instances, ib.instances):
            if x.bbox is not None and y.bbox is not None:
                np.testing.assert_allclose(x.bbox, y.bbox, rtol=0, atol=1e-9)
            if keypoints:
                assert (x.keypoints is None) == (y.keypoints is None)
                if x.keypoints is not None:
                    np.testing.assert_array_equal(x.keypoints, y.keypoints)


def test_round_trip_in_the_same_format_is_lossless(built, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    fmt, path = built
    ds = load_dataset(path)
    out = tmp_path / "out" / ("x_test.json" if fmt in ("posesor", "seqrank") else "root")
    save_dataset(ds, out, fmt)
    again = load_dataset(out)
    assert again.format == fmt
    assert_same_ground_truth(ds, again)
    for ia, ib in zip(ds, again):
        assert [i.id for i in ia.instances + ia.unranked] == [i.id for i in ib.instances + ib.unranked]
        assert [i.category for i in ia.instances] == [i.category for i in ib.instances]
        assert [i.segmentation for i in ia.instances] == [i.segmentation for i in ib.instances]
        assert ia.coco_id == ib.coco_id


def test_assr_round_trip_reproduces_the_files(tmp_path: Path) -> None:
    src = build_assr(tmp_path / "src")
    # odd values and an existing GT map must survive untouched
    rank_file = src / "rank_order" / "test" / "COCO_val2014_000000000164.json"
    rank_file.write_text(json.dumps({"rank_order": [0.52, 0.9, 0.9]}))
    (src / "gt" / "test").mkdir(parents=True)
    write_image(src / "gt" / "test" / "COCO_val2014_000000000164.png", 40, 50, seed=7)
    save_dataset(load_dataset(src), tmp_path / "dst", "assr")
    dst = tmp_path / "dst"
    assert json.loads((dst / "obj_seg_data_test.json").read_text()) == json.loads((src / "obj_seg_data_test.json").read_text())
    for p in (src / "rank_order" / "test").iterdir():
        assert json.loads((dst / "rank_order" / "test" / p.name).read_text()) == json.loads(p.read_text())
    assert (dst / "test_images.txt").read_text() == (src / "test_images.txt").read_text()
    name = "COCO_val2014_000000000164.png"
    assert (dst / "gt" / "test" / name).read_bytes() == (src / "gt" / "test" / name).read_bytes()


def test_assr_gt_maps_use_the_assr_grey_levels(tmp_path: Path) -> None:
    import cv2

    ds = load_dataset(build_posesor(tmp_path / "p"))
    save_dataset(ds, tmp_path / "a", "assr")
    gt = cv2.imread(str(tmp_path / "a" / "gt" / "test" / "COCO_val2014_000000000192.png"), 1)[:, :, 0]
    assert set(np.unique(gt)) == {0, 255, 229, 204}
    assert gt[15, 15] == 204  # the rank-3 square inside the rank-2 rectangle is painted after it
    assert gt[30, 10] == 229 and gt[10, 47] == 255 and gt[40, 50] == 0
