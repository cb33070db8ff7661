"""Content-aware cropping: the plan (aspect, what is kept, where), the files (format, EXIF, alpha), the command."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from _app_helpers import HAS_LITE0, LITE0_REASON, REAL_PHOTOS, exif_rotated_jpeg
from PIL import Image

from salrank.apps.crop import CropPlan, crop_file, parse_aspect, parse_size, plan_crop
from salrank.cli import main
from salrank.errors import InputError
from salrank.structures import RankedInstances


def scene(boxes: list[tuple[int, int, int, int]], h: int = 400, w: int = 800) -> RankedInstances:
    """Rectangular objects ``(x0, y0, x1, y1)`` in rank order."""
    masks = np.zeros((len(boxes), h, w), bool)
    for m, (x0, y0, x1, y1) in zip(masks, boxes):
        m[y0:y1, x0:x1] = True
    return RankedInstances.from_masks(masks, image_name="scene", height=h, width=w, saliency=np.linspace(1.0, 0.4, len(boxes)))


def inside(plan: CropPlan, box: tuple[int, int, int, int]) -> bool:
    x0, y0, x1, y1 = plan.box
    return x0 <= box[0] and y0 <= box[1] and box[2] <= x1 and box[3] <= y1


def test_parse_aspect_and_size() -> None:
    assert parse_aspect("16:9") == pytest.approx(16 / 9)
    assert parse_aspect("4/5") == pytest.approx(0.8)
    assert parse_aspect("1.91") == pytest.approx(1.91)
    assert parse_aspect("1") == 1.0
    assert parse_size("1080x1350") == (1080, 1350)
    for bad in ("wide", "0:1", "16:0", "100:1"):
        with pytest.raises(InputError):
            parse_aspect(bad)
    with pytest.raises(InputError):
        parse_size("1080")


@pytest.mark.parametrize("aspect", [16 / 9, 1.0, 4 / 5, 9 / 16, 3.0])
def test_fit_crops_have_the_aspect_and_stay_inside(aspect: float) -> None:
    result = scene([(300, 120, 420, 300), (480, 150, 560, 260)])
    plan = plan_crop(result, aspect)
    x0, y0, x1, y1 = plan.box
    assert 0 <= x0 < x1 <= 800 and 0 <= y0 < y1 <= 400
    assert abs(plan.width / plan.height - aspect) < 2.0 / min(plan.width, plan.height) + 1e-9
    assert plan.width == 800 or plan.height == 400  # the largest crop of that shape
    assert 1 in plan.kept and inside(plan, (300, 120, 420, 300))


def test_top_k_are_kept_when_they_fit_together() -> None:
    result = scene([(360, 100, 440, 300), (200, 150, 260, 250), (520, 150, 580, 250), (20, 20, 60, 60)])
    plan = plan_crop(result, 1.0, top_k=3)  # a 400x400 window fits ranks 1-3 (x 200..580)
    assert plan.kept == [1, 2, 3] and plan.dropped == []
    for box in [(360, 100, 440, 300), (200, 150, 260, 250), (520, 150, 580, 250)]:
        assert inside(plan, box)
    only_two = plan_crop(result, 1.0, top_k=2)
    assert only_two.kept == [1, 2]


def test_objects_that_cannot_fit_are_dropped_most_salient_kept() -> None:
    # rank 2 is far left, rank 3 close to rank 1: a square crop keeps 1 and 3, drops 2
    result = scene([(600, 120, 700, 300), (10, 100, 90, 300), (500, 150, 560, 250)])
    plan = plan_crop(result, 1.0, top_k=3)
    assert plan.kept == [1, 3] and plan.dropped == [2]
    assert inside(plan, (600, 120, 700, 300)) and inside(plan, (500, 150, 560, 250))
    assert "rank 2 does not fit" in plan.describe()


def test_kept_objects_are_centred_and_neighbours_not_cut() -> None:
    result = scene([(380, 150, 420, 250)])
    plan = plan_crop(result, 1.0, top_k=1)
    cx = (plan.box[0] + plan.box[2]) / 2
    assert abs(cx - 400) <= 2  # centred on the object
    # an unkept object next to the crop edge is either wholly in or wholly out
    result = scene([(380, 150, 420, 250), (585, 150, 640, 250)])
    plan = plan_crop(result, 1.0, top_k=1)
    x0, _, x1, _ = plan.box
    assert x1 <= 585 or x1 >= 640 or x0 >= 640


def test_margin_is_kept_when_possible() -> None:
    result = scene([(390, 100, 410, 300)])
    plan = plan_crop(result, 1.0, top_k=1, margin=0.1)
    assert plan.margin == pytest.approx(0.1)
    assert plan.box[1] == 0 and plan.box[3] == 400  # full height: the margin fits vertically
    tall = scene([(390, 0, 410, 400)])  # touches top and bottom: no room, but still kept
    assert plan_crop(tall, 1.0, top_k=1, margin=0.1).kept == [1]


def test_tight_mode_zooms_on_the_kept_objects() -> None:
    result = scene([(300, 150, 360, 230), (380, 160, 420, 220)])
    fit = plan_crop(result, 1.0, top_k=2, mode="fit")
    tight = plan_crop(result, 1.0, top_k=2, mode="tight", margin=0.05)
    assert tight.width < fit.width and tight.width == tight.height
    assert tight.kept == [1, 2] and inside(tight, (300, 150, 360, 230)) and inside(tight, (380, 160, 420, 220))
    # with an output size, a tight crop is not smaller than it (no enlarging)
    sized = plan_crop(result, None, (300, 300), top_k=2, mode="tight")
    assert sized.width >= 300 and sized.output_size == (300, 300)


def test_rank_one_larger_than_the_crop_and_empty_results() -> None:
    big = scene([(100, 0, 700, 400)])
    plan = plan_crop(big, 9 / 16)
    assert plan.cut == [1] and plan.kept == []
    assert 100 <= plan.box[0] and plan.box[2] <= 700  # as much of it as possible
    empty = RankedInstances.empty("e", 400, 800)
    plan = plan_crop(empty, 1.0)
    assert plan.box == (200, 0, 600, 400)  # centred
    with pytest.raises(InputError):
        plan_crop(empty)


def test_crop_file_keeps_format_alpha_and_turns_upright(tmp_path: Path, shared_images: Path) -> None:
    # RGBA PNG: alpha survives
    rgba = np.zeros((100, 200, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[..., 3] = np.linspace(0, 255, 200, dtype=np.uint8)[None, :]
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    plan = CropPlan(box=(50, 0, 150, 100), image_size=(200, 100), output_size=(50, 50))
    out = crop_file(tmp_path / "a.png", plan, tmp_path / "out" / "a.png")
    with Image.open(out) as img:
        assert img.format == "PNG" and img.mode == "RGBA" and img.size == (50, 50)
    # EXIF-rotated JPEG: cropped in upright coordinates, written upright without the orientation tag
    w, h = exif_rotated_jpeg(shared_images / REAL_PHOTOS[0], tmp_path / "r.jpg")
    plan = CropPlan(box=(0, 0, w // 2, h), image_size=(w, h))
    out = crop_file(tmp_path / "r.jpg", plan, tmp_path / "out" / "r.jpg")
    with Image.open(out) as img:
        assert img.format == "JPEG" and img.size == (w // 2, h) and img.getexif().get(0x0112, 1) == 1
        upright = np.asarray(Image.open(shared_images / REAL_PHOTOS[0]).convert("RGB"))[:, : w // 2].astype(int)
        assert np.abs(np.asarray(img.convert("RGB")).astype(int) - upright).mean() < 6  # same pixels, JPEG noise
    with pytest.raises(InputError, match="plan is for"):
        crop_file(tmp_path / "a.png", CropPlan(box=(0, 0, 10, 10), image_size=(10, 10)), tmp_path / "x.png")


def test_crop_command_on_real_photos(tmp_path: Path, shared_images: Path, capsys: pytest.CaptureFixture[str]) -> None:
    if not HAS_LITE0:
        pytest.skip(LITE0_REASON)
    photos = tmp_path / "photos"
    photos.mkdir()
    shutil.copy(shared_images / REAL_PHOTOS[0], photos / "kite.jpg")
    from salrank.apps.examples import example_image

    shutil.copy(example_image(), photos / "garden.jpg")
    out = tmp_path / "crops"
    code = main(["crop", str(photos), "--size", "300x300", "--top-k", "2", "--show", "--out", str(out), "--no-progress"])
    text = capsys.readouterr().out
    assert code == 0, text
    for name in ("kite", "garden"):
        with Image.open(out / f"{name}.jpg") as img:
            assert img.size == (300, 300) and img.format == "JPEG"
        with Image.open(out / f"{name}_preview.jpg") as img:
            assert img.size[0] == Image.open(photos / f"{name}.jpg").size[0]  # the full photo, plus a caption band
    assert "keeps rank 1" in text and "salrank-default" in text
    # the garden scene's ball (rank 1) is in the crop
    assert main(["crop", str(photos / "garden.jpg"), "--aspect", "1:1", "--out", str(out), "--no-progress"]) == 2
    assert "refusing to overwrite" in capsys.readouterr().err
