"""Conversions between formats: what is kept, what is lost (and said), and the convert command."""

from __future__ import annotations

import itertools
import json
import logging
from pathlib import Path

import numpy as np
import pytest
from _data_builders import build_assr, build_irsr, build_posesor, build_seqrank

from salrank.cli import main
from salrank.data import DATASET_FORMATS, convert_dataset, load_dataset, save_dataset
from salrank.data.formats import write_dataset
from salrank.errors import InputError
from salrank.structures import GTImage, GTInstance, SORDataset

BUILDERS = {"posesor": build_posesor, "seqrank": build_seqrank, "assr": build_assr, "irsr": build_irsr}
KEEPS_UNRANKED = ("seqrank", "assr")


def target_path(tmp: Path, fmt: str) -> Path:
    return tmp / ("x_test.json" if fmt in ("posesor", "seqrank") else fmt)


@pytest.mark.parametrize(("src", "dst"), list(itertools.permutations(DATASET_FORMATS, 2)))
def test_cross_format_conversion_keeps_masks_and_rank_order(src: str, dst: str, tmp_path: Path) -> None:
    ds = load_dataset(BUILDERS[src](tmp_path / "src"))
    result = write_dataset(ds, target_path(tmp_path / "dst", dst), dst)
    back = load_dataset(target_path(tmp_path / "dst", dst))
    assert back.format == dst
    assert [img.image_id for img in ds] == [img.image_id for img in back]
    for a, b in zip(ds, back):
        assert (a.height, a.width) == (b.height, b.width)
        assert a.ranks == b.ranks
        ma, mb = a.gt_masks().astype(bool), b.gt_masks().astype(bool)
        if src == "assr" and dst in ("posesor", "seqrank"):
            # the ASSR triangle is an RLE: traced into a polygon for the polygon-only formats
            inter = (ma & mb).sum(axis=(1, 2))
            union = (ma | mb).sum(axis=(1, 2))
            assert (inter / union > 0.9).all()
        else:
            np.testing.assert_array_equal(ma, mb)
        n_unranked = len(a.unranked) if dst in KEEPS_UNRANKED else 0
        assert len(b.unranked) == n_unranked
        # keypoints survive only PoseSOR -> PoseSOR; classes survive where the format has them
        if dst != "posesor":
            assert all(inst.keypoints is None for inst in b.instances)
    dropped = sum(len(img.unranked) for img in ds)
    said = " ".join(result.notes)
    if dst in ("posesor", "irsr") and dropped:
        assert f"{dropped} objects that are not salient" in said
    if src == "assr" and dst in ("posesor", "seqrank"):
        assert "written as integer polygons" in said


def test_posesor_keypoints_and_classes_through_seqrank_and_back(tmp_path: Path) -> None:
    ds = load_dataset(build_posesor(tmp_path / "p"))
    save_dataset(ds, tmp_path / "s" / "x_test.json", "seqrank")
    seq = load_dataset(tmp_path / "s" / "x_test.json")
    assert [i.category for i in seq[0].instances] == [i.category for i in ds[0].instances]  # class_id is kept
    assert seq[0].instances[0].keypoints is None  # SeqRank has no keypoints
    save_dataset(seq, tmp_path / "p2" / "x_test.json", "posesor")
    data = json.loads((tmp_path / "p2" / "x_test.json").read_text())
    ann = data["annotations"][0]
    assert ann["keypoints"] == [0] * 51 and ann["num_keypoints"] == 0
    assert ann["category_id"] == ann["visiting_order"] == 1
    assert {img["id"] for img in data["images"]} == {192, 164, 42}  # from the COCO names


def synthetic(levels: int) -> SORDataset:
    h = w = 40
    insts = []
    for r in range(1, levels + 1):
        x = 4 * (r - 1)
        insts.append(GTInstance(segmentation=[[x, 0, x + 3, 0, x + 3, 3, x, 3]], rank=r, rank_value=None, id=r - 1))
    return SORDataset(images=[GTImage("img", "img.jpg", h, w, insts)], name="syn", format="synth", split="test")


def test_ranks_beyond_five_become_not_salient_in_assr(tmp_path: Path) -> None:
    result = write_dataset(synthetic(7), tmp_path / "a", "assr")
    assert any("2 objects ranked below 5th" in n for n in result.notes)
    values = json.loads((tmp_path / "a" / "rank_order" / "test" / "img.json").read_text())["rank_order"]
    assert values == [1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4]
    back = load_dataset(tmp_path / "a")
    assert back[0].ranks == [1, 2, 3, 4, 5] and len(back[0].unranked) == 2


def test_seqrank_and_irsr_values_from_ranks(tmp_path: Path) -> None:
    write_dataset(synthetic(3), tmp_path / "s.json", "seqrank")
    cats = [a["category_id"] for a in json.loads((tmp_path / "s.json").read_text())["data"][0]["annotations"]]
    assert cats == [3, 2, 1]  # larger = more salient
    write_dataset(synthetic(3), tmp_path / "i", "irsr")
    assert load_dataset(tmp_path / "i")[0].ranks == [1, 2, 3]


def test_float_polygons_are_truncated_for_the_official_loaders(tmp_path: Path) -> None:
    ds = synthetic(1)
    ds.images[0].instances[0].segmentation = [[0.7, 0.2, 10.9, 0.5, 10.2, 8.8, 0.1, 9.9]]
    before = ds.images[0].gt_masks()
    result = write_dataset(ds, tmp_path / "s.json", "seqrank")
    seg = json.loads((tmp_path / "s.json").read_text())["data"][0]["annotations"][0]["segmentation"]
    assert seg == [[0, 0, 10, 0, 10, 8, 0, 9]]
    assert result.notes
    np.testing.assert_array_equal(load_dataset(tmp_path / "s.json")[0].gt_masks(), before)  # same pixels for salrank


def test_save_refuses_to_overwrite(tmp_path: Path) -> None:
    ds = load_dataset(build_seqrank(tmp_path / "s"))
    target = tmp_path / "out.json"
    save_dataset(ds, target, "seqrank")
    with pytest.raises(InputError, match="refusing to overwrite"):
        save_dataset(ds, target, "seqrank")
    save_dataset(ds, target, "seqrank", overwrite=True)
    save_dataset(ds, tmp_path / "a", "assr")
    with pytest.raises(InputError, match="refusing to overwrite"):
        save_dataset(ds, tmp_path / "a", "assr")


def test_save_logs_what_it_loses(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    ds = load_dataset(build_seqrank(tmp_path / "s"))
    with caplog.at_level(logging.WARNING):
        save_dataset(ds, tmp_path / "p.json", "posesor")
    assert "1 objects that are not salient (unranked) cannot be expressed in the PoseSOR format" in caplog.text


def test_images_can_be_linked_or_copied(tmp_path: Path) -> None:
    ds = load_dataset(build_irsr(tmp_path / "irsr"))
    write_dataset(ds, tmp_path / "a", "assr", images="link")
    back = load_dataset(tmp_path / "a")
    assert back.image_root == tmp_path / "a" / "images" / "test"
    assert all((back.image_root / img.file_name).is_symlink() for img in back)
    write_dataset(ds, tmp_path / "s" / "x_test.json", "seqrank", images="copy")
    seq = load_dataset(tmp_path / "s" / "x_test.json")
    assert seq.image_root is not None and all((seq.image_root / img.file_name).is_file() for img in seq)


def test_convert_dataset_never_overwrites_the_destination(tmp_path: Path) -> None:
    src = build_assr(tmp_path / "ASSR")
    dst = tmp_path / "out"
    dst.mkdir()
    (dst / "keep.txt").write_text("mine")
    with pytest.raises(InputError, match="destination exists"):
        convert_dataset(src, dst, "irsr")
    convert_dataset(src, dst, "irsr", overwrite=True)
    assert (dst / "keep.txt").read_text() == "mine"
    assert load_dataset(dst).format == "irsr"


def test_cli_convert(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = build_assr(tmp_path / "ASSR")
    out = tmp_path / "seq_test.json"
    assert main(["data", "convert", str(src), str(out), "--to", "seqrank"]) == 0
    text = capsys.readouterr().out
    assert f"wrote 1 file (seqrank) to {out}" in text and "note:" in text
    assert main(["data", "convert", str(src), str(out), "--to", "seqrank"]) == 2
    assert "destination exists" in capsys.readouterr().err
    assert main(["data", "convert", str(src), str(out), "--to", "seqrank", "--overwrite"]) == 0
