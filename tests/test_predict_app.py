"""``salrank predict`` end to end with the built-in default ranker on real photos, and the run plumbing.

One module-scoped run ranks two real COCO photos plus a folder holding a corrupt JPEG, a text file
named like a photo, a greyscale PNG, an RGBA PNG and an EXIF-rotated JPEG; the tests check what it
wrote. The run's COCO results file is scored by ``salrank eval``. Plumbing (layouts, collisions,
resume, batches with a failing image) is tested with a tiny deterministic model.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from _app_helpers import (
    HAS_LITE0,
    LITE0_REASON,
    REAL_PHOTOS,
    BrightSpotModel,
    corrupt_jpeg,
    exif_rotated_jpeg,
    save_png,
    spots_image,
)
from PIL import Image

from salrank.cli import main
from salrank.outputs import MANIFEST_NAME, OutputOptions, read_manifest


def _size(path: Path) -> tuple[int, int]:
    with Image.open(path) as img:
        return img.size


@pytest.fixture(scope="module")
def photo_run(tmp_path_factory: pytest.TempPathFactory, shared_images: Path) -> dict:
    if not HAS_LITE0:
        pytest.skip(LITE0_REASON)
    root = tmp_path_factory.mktemp("predict")
    inputs = root / "inputs"
    folder = inputs / "mixed"
    folder.mkdir(parents=True)
    photos = [shutil.copy(shared_images / name, inputs / name) for name in REAL_PHOTOS]
    corrupt_jpeg(shared_images / REAL_PHOTOS[0], folder / "broken.jpg")
    (folder / "notes.jpg").write_text("this is a text file, not a photo\n")
    grey = np.asarray(Image.open(shared_images / REAL_PHOTOS[1]).convert("L").resize((200, 150)))
    save_png(folder / "grey.png", grey)
    rgba = np.zeros((120, 160, 4), np.uint8)
    rgba[..., :3] = np.asarray(Image.open(shared_images / REAL_PHOTOS[0]).convert("RGB").resize((160, 120)))
    rgba[..., 3] = 255
    rgba[:, :40, 3] = 0  # a transparent band
    Image.fromarray(rgba, "RGBA").save(folder / "rgba.png")
    upright = exif_rotated_jpeg(shared_images / REAL_PHOTOS[1], folder / "rotated.jpg")
    out = root / "out"
    coco = root / "run_coco.json"
    code = main(["predict", *map(str, photos), str(folder), "--out", str(out), "--coco", str(coco), "--masks", "--no-progress"])
    return {"code": code, "out": out, "coco": coco, "inputs": inputs, "folder": folder, "upright": upright, "photos": photos}


def test_exit_code_and_failures_reported(photo_run: dict) -> None:
    assert photo_run["code"] == 1  # two bad files among seven
    manifest = read_manifest(photo_run["out"])
    failed = {Path(i["source"]).name: i["error"] for i in manifest["images"] if i["status"] == "failed"}
    assert set(failed) == {"broken.jpg", "notes.jpg"}
    assert all("image" in reason for reason in failed.values())
    ok = [i for i in manifest["images"] if i["status"] == "ok"]
    assert len(ok) == 5
    run = manifest["runs"][-1]
    assert run["model"]["name"] == "salrank-default" and "training-free" in run["model"]["source"]
    assert run["summary"]["done"] == 5 and run["summary"]["failed"] == 2


def test_outputs_exist_at_each_images_size(photo_run: dict) -> None:
    out = photo_run["out"]
    manifest = read_manifest(out)
    by_name = {i["name"]: i for i in manifest["images"]}
    expected = {
        Path(REAL_PHOTOS[0]).stem: (640, 480),
        Path(REAL_PHOTOS[1]).stem: (640, 480),
        "grey": (200, 150),
        "rgba": (160, 120),
        "rotated": photo_run["upright"],  # EXIF orientation honoured: the upright size
    }
    for name, (w, h) in expected.items():
        record = by_name[name]
        assert (record["width"], record["height"]) == (w, h)
        assert _size(out / "colormaps" / f"{name}.png") == (w, h)
        assert _size(out / "rank_maps" / f"{name}.png") == (w, h)
        ow, oh = _size(out / "overlays" / f"{name}.jpg")
        assert ow == w and oh > h  # the caption band naming the model is under the photo
        data = json.loads((out / "json" / f"{name}.json").read_text())
        assert data["model"] == "salrank-default" and (data["width"], data["height"]) == (w, h)
        assert [inst["rank"] for inst in data["instances"]] == list(range(1, len(data["instances"]) + 1))
        skeleton = out / "skeletons" / f"{name}.png"
        has_pose = any("keypoints" in inst for inst in data["instances"])  # people found (MediaPipe installed)
        assert skeleton.is_file() == has_pose
        if has_pose:
            assert _size(skeleton) == (w, h)
        masks = sorted((out / "masks" / name).glob("rank*.png"))
        assert len(masks) == len(data["instances"])
        if masks:
            assert _size(masks[0]) == (w, h)
    # the real photos have objects, and the colour map uses the official palette
    photo = Path(REAL_PHOTOS[0]).stem
    colours = {tuple(c) for c in np.asarray(Image.open(out / "colormaps" / f"{photo}.png")).reshape(-1, 3)}
    assert (234, 87, 61) in colours and (0, 0, 0) in colours
    assert by_name[photo]["objects"] >= 2


def test_coco_results_file_is_scored_by_eval(photo_run: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The run's COCO file goes straight into 'salrank eval'; a GT equal to the predictions scores 1."""
    from salrank.utils.masks import decode_rle, mask_to_polygons

    coco = photo_run["coco"]
    entries = json.loads(coco.read_text())
    names = {e["image_id"] for e in entries}
    assert Path(REAL_PHOTOS[0]).stem in names and "broken" not in names
    # a tiny PoseSOR-format GT: the two real photos, objects = the top-3 predicted masks in predicted order
    images, annotations = [], []
    for k, photo in enumerate(REAL_PHOTOS, start=1):
        stem = Path(photo).stem
        images.append({"id": k, "file_name": photo, "height": 480, "width": 640})
        own = sorted((e for e in entries if e["image_id"] == stem), key=lambda e: e["rank"])
        for e in own[:3]:
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": k,
                    "category_id": e["rank"],
                    "segmentation": mask_to_polygons(decode_rle(e["segmentation"])),
                    "bbox": e["bbox"],
                    "iscrowd": 0,
                }
            )
    gt = tmp_path / "gt.json"
    gt.write_text(json.dumps({"images": images, "annotations": annotations, "categories": [{"id": 1, "name": "object"}]}))
    capsys.readouterr()
    code = main(["eval", "--protocol", "seqrank", "--gt", str(gt), "--pred", str(coco), "--no-progress", "--metrics", "sor"])
    text = capsys.readouterr().out
    assert code == 0, text
    row = [line for line in text.splitlines() if line.strip().startswith("sor")]
    assert row and "1.0000" in row[0], text  # predictions in the GT's order


def test_json_folder_is_read_by_eval(photo_run: dict) -> None:
    from salrank.io import load_predictions

    preds = load_predictions(photo_run["out"] / "json")
    assert set(preds) == {Path(REAL_PHOTOS[0]).stem, Path(REAL_PHOTOS[1]).stem, "grey", "rgba", "rotated"}
    assert all(p.model == "salrank-default" for p in preds.values())


def test_no_overwrite_without_flag(photo_run: dict, capsys: pytest.CaptureFixture[str]) -> None:
    out = photo_run["out"]
    before = (out / "json" / "grey.json").read_bytes()
    code = main(["predict", str(photo_run["folder"] / "grey.png"), "--out", str(out), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and "refusing to overwrite" in err and "--overwrite" in err
    assert (out / "json" / "grey.json").read_bytes() == before
    code = main(["predict", str(photo_run["folder"] / "grey.png"), "--out", str(out), "--skip-existing", "--no-progress"])
    assert code == 0 and "nothing to do" in capsys.readouterr().out


def test_example_photo_layout_and_overwrite(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    if not HAS_LITE0:
        pytest.skip(LITE0_REASON)
    out = tmp_path / "ex"
    assert main(["predict", "--example", "--out", str(out), "--no-progress", "--layout", "per-image", "--no-rank-map"]) == 0
    text = capsys.readouterr().out
    assert "1 of 1 image ranked" in text and "salrank-default" in text and "colormap" in text
    assert (out / "garden-scene" / "colormap.png").is_file() and (out / "garden-scene" / "result.json").is_file()
    assert not (out / "garden-scene" / "rank_map.png").exists()
    data = json.loads((out / "garden-scene" / "result.json").read_text())
    assert len(data["instances"]) >= 2
    assert main(["predict", "--example", "--out", str(out), "--no-progress", "--layout", "per-image", "--overwrite"]) == 0


def test_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["predict", str(tmp_path / "missing.jpg"), "--out", str(tmp_path / "o")]) == 2
    assert "no such file" in capsys.readouterr().err
    assert main(["predict", "--out", str(tmp_path / "o")]) == 2
    assert main(["predict", str(tmp_path), "--config", "x.yaml"]) == 2
    save_png(tmp_path / "a.png", spots_image())
    assert main(["predict", str(tmp_path / "a.png"), "--model", str(tmp_path / "nothing.pth"), "--out", str(tmp_path / "o")]) == 2
    assert "not found" in capsys.readouterr().err
    assert main(["predict", str(tmp_path / "a.png"), "--model", "no-such-model", "--out", str(tmp_path / "o")]) == 2


# ----------------------------------------------------------------------------------------------------
# the run plumbing with a tiny model


def _ranker(batch_size: int = 1):
    from salrank.ranker import Ranker

    return Ranker(BrightSpotModel(), device="cpu", batch_size=batch_size)


def test_batches_isolate_a_failing_image(tmp_path: Path) -> None:
    from salrank.apps.predict import predict_files

    files = []
    for i in range(5):
        img = spots_image()
        if i == 2:
            img[0, 0] = (255, 0, 255)  # this one makes the model raise
        files.append(save_png(tmp_path / f"img{i}.png", img))
    summary = predict_files(_ranker(batch_size=3), files, tmp_path / "out", progress=False)
    assert summary.done == 4 and [Path(p).name for p, _ in summary.failed] == ["img2.png"]
    assert "magenta corner" in summary.failed[0][1]
    assert summary.exit_code == 1 and summary.objects == 8
    assert (tmp_path / "out" / "json" / "img4.json").is_file()
    assert "4 of 5 images ranked, 1 failed, 8 objects found" in summary.text()


def test_name_collisions_and_manifest_merge(tmp_path: Path) -> None:
    from salrank.apps.predict import predict_files

    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    files = [save_png(tmp_path / "a" / "x.png", spots_image()), save_png(tmp_path / "b" / "x.png", spots_image())]
    roots = {files[0]: tmp_path, files[1]: tmp_path}
    out = tmp_path / "out"
    summary = predict_files(_ranker(), files, out, roots=roots, progress=False)
    assert summary.exit_code == 0
    assert {p.name for p in (out / "json").iterdir()} == {"a__x.json", "b__x.json"}
    third = save_png(tmp_path / "y.png", spots_image())
    predict_files(_ranker(), [third], out, progress=False)
    manifest = json.loads((out / MANIFEST_NAME).read_text())
    assert len(manifest["runs"]) == 2 and {i["name"] for i in manifest["images"]} == {"a__x", "b__x", "y"}


def test_output_options_and_result_methods(tmp_path: Path) -> None:
    result = _ranker()(spots_image(), names="s")
    written = result.save(tmp_path / "saved", masks=True, overlay_format="png")
    assert set(written) == {"json", "colormap", "overlay", "rank_map", "masks"}
    assert written["overlay"].suffix == ".png" and len(written["masks"]) == 2
    with pytest.raises(Exception, match="overwrite"):
        result.save(tmp_path / "saved")
    assert OutputOptions(json=False, overlay=False).kinds() == ["colormap", "rank_map", "skeleton"]


@pytest.mark.parametrize("width", [1, 9, 40, 80, 640])
def test_captions_fit_any_width(width: int) -> None:
    from salrank.viz.render import add_caption

    image = np.full((30, width, 3), 200, np.uint8)
    out = add_caption(image, "salrank-default - 12 objects")
    assert out.shape[1] == width and out.shape[0] > 30 and np.array_equal(out[:30], image)
