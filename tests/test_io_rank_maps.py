"""Grey rank maps: both rendering conventions, reading as the official code reads, splitting into instances."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from salrank.errors import InputError
from salrank.io import ASSR_GREY_LEVELS, RankMapFolder, rank_map_to_instances, render_rank_map, save_rank_maps
from salrank.structures import RankedInstances


def boxes_result(specs: list[tuple[int, int, int, int]], h: int = 40, w: int = 60) -> RankedInstances:
    masks = np.zeros((len(specs), h, w), bool)
    for k, (y0, y1, x0, x1) in enumerate(specs):
        masks[k, y0:y1, x0:x1] = True
    return RankedInstances.from_masks(masks, image_name="img")


def test_assr_style_levels_and_area_order() -> None:
    # rank 1 big, rank 2 small inside it, ranks 3..6 elsewhere
    r = boxes_result([(0, 30, 0, 30), (5, 10, 5, 10), (32, 36, 0, 4), (32, 36, 10, 14), (32, 36, 20, 24), (32, 36, 30, 34)])
    m = render_rank_map(r, "assr")
    assert m.dtype == np.uint8 and m.shape == (40, 60)
    assert m[20, 20] == 255 and m[7, 7] == 229  # the smaller rank-2 object is painted after the bigger rank-1
    assert m[33, 1] == 204 and m[33, 11] == 178 and m[33, 21] == 153
    assert m[33, 31] == 0  # only the top 5 are drawn
    assert set(np.unique(m)) == {0, *ASSR_GREY_LEVELS}
    assert render_rank_map(r, "assr", max_ranks=2)[33, 1] == 0


def test_assr_style_equal_areas_keep_rank_order() -> None:
    r = boxes_result([(0, 10, 0, 10), (5, 15, 5, 15)])  # same area, overlapping
    m = render_rank_map(r, "assr")
    assert m[7, 7] == 229  # rank 2 painted after rank 1 (stable sort on -area, as PPA's argsort on <= 5 items)


def official_seqrank_map(masks: np.ndarray) -> np.ndarray:
    """SeqRank's EVAL_SAVE rendering, written out independently."""
    n = len(masks)
    uni = np.linspace(1.0, 0.5, n)
    pred_mask = np.zeros(masks.shape[1:], dtype=float)
    for i in range(n - 1, -1, -1):
        pred_mask[np.where(masks[i].astype(float) > 0.5)] = uni[i]
    return (pred_mask * 255).astype(np.uint8)


@pytest.mark.parametrize("n", [1, 2, 6, 11])
def test_seqrank_style_matches_the_official_formula(n: int) -> None:
    rng = np.random.default_rng(n)
    masks = rng.random((n, 30, 40)) > 0.7
    r = RankedInstances.from_masks(masks, image_name="img")
    np.testing.assert_array_equal(render_rank_map(r, "seqrank"), official_seqrank_map(masks))
    if n == 6:
        assert list(np.unique(render_rank_map(r, "seqrank"))[::-1][:6]) == [255, 229, 204, 178, 153, 127]


def test_unknown_style_and_too_many_assr_ranks() -> None:
    r = boxes_result([(0, 5, 0, 5)])
    with pytest.raises(ValueError, match="unknown rank-map style"):
        render_rank_map(r, "ppa")
    with pytest.raises(ValueError, match="grey levels for 5 ranks"):
        render_rank_map(boxes_result([(0, 2, k, k + 1) for k in range(7)]), "assr", max_ranks=7)


def test_rank_map_to_instances_brightest_first() -> None:
    r = boxes_result([(0, 30, 0, 30), (25, 35, 25, 35), (36, 40, 0, 4)])
    m = render_rank_map(r, "seqrank")
    out = rank_map_to_instances(m, "img")
    assert len(out) == 3 and out.extras["grey_levels"] == [255, 191, 127]
    visible = r.masks.copy()
    visible[1] &= ~visible[0]  # rank 1 is painted last, over rank 2
    np.testing.assert_array_equal(out.masks, visible)
    np.testing.assert_allclose(out.saliency, np.array([255, 191, 127]) / 255, rtol=1e-6)
    empty = rank_map_to_instances(np.zeros((4, 5), np.uint8), "z")
    assert len(empty) == 0 and (empty.height, empty.width) == (4, 5)


def test_rgb_rank_maps_use_pil_luma() -> None:
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 255, (20, 30, 3), dtype=np.uint8)
    out = rank_map_to_instances(rgb, "img")
    luma = np.asarray(Image.fromarray(rgb).convert("L"))
    expected = [v for v in np.unique(luma)[::-1] if v != 0]
    assert out.extras["grey_levels"] == [int(v) for v in expected]


def test_folder_reads_channel_zero_like_cv2(tmp_path: Path) -> None:
    bgr = np.zeros((10, 12, 3), np.uint8)
    bgr[..., 0] = 200  # blue
    bgr[..., 2] = 50  # red
    cv2.imwrite(str(tmp_path / "a.png"), bgr)
    Image.fromarray(np.full((8, 9), 153, np.uint8)).save(tmp_path / "b_count_3.png")  # SeqRank EVAL_SAVE name
    (tmp_path / "notes.txt").write_text("ignored")
    folder = RankMapFolder(tmp_path)
    assert sorted(folder) == ["a", "b"] and "b" in folder and len(folder) == 2
    a = folder.read("a")
    np.testing.assert_array_equal(a, cv2.imread(str(tmp_path / "a.png"))[:, :, 0])
    assert a[0, 0] == 200
    np.testing.assert_array_equal(folder.read("b"), np.full((8, 9), 153, np.uint8))
    inst = folder.to_instances("a")  # PoseSOR reads convert("L"): one instance with the luma grey
    assert len(inst) == 1 and inst.extras["grey_levels"] == [int(np.asarray(Image.open(tmp_path / "a.png").convert("L"))[0, 0])]
    with pytest.raises(InputError, match="image c: no rank map for this image"):
        folder.read("c")


def test_folder_errors(tmp_path: Path) -> None:
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / "x.png")
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / "x_count_2.png")
    with pytest.raises(InputError, match="two rank maps for image x"):
        RankMapFolder(tmp_path)
    (tmp_path / "x_count_2.png").unlink()
    (tmp_path / "y.png").write_bytes((tmp_path / "x.png").read_bytes()[:20])
    folder = RankMapFolder(tmp_path)
    with pytest.raises(InputError, match="not a readable image") as exc:
        folder.read("y")
    assert exc.value.path == str(tmp_path / "y.png")
    with pytest.raises(InputError, match="rank-map folder not found"):
        RankMapFolder(tmp_path / "missing")


@pytest.mark.parametrize("style", ["assr", "seqrank"])
def test_save_and_read_back(tmp_path: Path, style: str) -> None:
    r = boxes_result([(0, 10, 0, 10), (20, 30, 20, 30)])
    save_rank_maps({"img": r}, tmp_path, style)
    folder = RankMapFolder(tmp_path)
    np.testing.assert_array_equal(folder.read("img"), render_rank_map(r, style))
    back = folder.to_instances("img")
    np.testing.assert_array_equal(back.masks, r.masks)
    with pytest.raises(InputError, match="refusing to overwrite"):
        save_rank_maps({"img": r}, tmp_path, style)
