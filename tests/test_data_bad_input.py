"""Wrong ground-truth files: every error names the file (and the image and annotation where there is one)."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
from _data_builders import build_assr, build_irsr, build_posesor, build_seqrank

from salrank.cli import main
from salrank.data import load_dataset
from salrank.data.formats.irsr import safe_unpickle
from salrank.errors import InputError
from salrank.utils.masks import encode_rle


def test_missing_path(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file or folder") as exc:
        load_dataset(tmp_path / "nope.json")
    assert str(tmp_path / "nope.json") in str(exc.value)


def test_truncated_json_names_the_file_and_position(tmp_path: Path) -> None:
    path = build_seqrank(tmp_path)
    path.write_text(path.read_text()[:100])
    with pytest.raises(InputError, match=r"not valid JSON \(line 1, column") as exc:
        load_dataset(path)
    assert exc.value.path == str(path)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ({"foo": 1}, "unknown annotation format.*keys \\['foo'\\]"),
        ([1, 2], "unknown annotation format.*a list of int"),
        ([{"image_id": 1, "segmentation": {}, "score": 0.5}], "COCO results file of predictions, not ground truth"),
        ("text", "unknown annotation format"),
    ],
)
def test_unknown_json_structure(tmp_path: Path, content: object, expected: str) -> None:
    path = tmp_path / "x_test.json"
    path.write_text(json.dumps(content))
    with pytest.raises(InputError, match=expected) as exc:
        load_dataset(path)
    assert exc.value.path == str(path)


def test_forced_format_that_does_not_match(tmp_path: Path) -> None:
    path = build_seqrank(tmp_path)
    with pytest.raises(InputError, match="this file is in the seqrank format, not posesor"):
        load_dataset(path, format="posesor")
    with pytest.raises(InputError, match="unknown dataset format 'coco'"):
        load_dataset(path, format="coco")


def test_unknown_folder(tmp_path: Path) -> None:
    (tmp_path / "readme.txt").write_text("hi")
    with pytest.raises(InputError, match="not a dataset folder: expected obj_seg_data_<split>.json"):
        load_dataset(tmp_path)


def test_rle_of_the_wrong_size_names_file_image_and_annotation(tmp_path: Path) -> None:
    path = build_posesor(tmp_path)
    data = json.loads(path.read_text())
    data["annotations"][1]["segmentation"] = encode_rle(np.ones((10, 10), np.uint8))
    path.write_text(json.dumps(data))
    with pytest.raises(InputError) as exc:
        load_dataset(path)
    msg = str(exc.value)
    assert msg.startswith(f"{path}: image COCO_val2014_000000000192: annotation 1001: mask size 10x10 differs from the image size 48x64")


def test_bad_category_id(tmp_path: Path) -> None:
    path = build_seqrank(tmp_path)
    data = json.loads(path.read_text())
    data["data"][1]["annotations"][2]["category_id"] = "high"
    path.write_text(json.dumps(data))
    with pytest.raises(InputError, match="image COCO_val2014_000000000164: annotation 2: 'category_id' must be a number"):
        load_dataset(path)


def test_bad_segmentation(tmp_path: Path) -> None:
    path = build_seqrank(tmp_path)
    data = json.loads(path.read_text())
    data["data"][0]["annotations"][0]["segmentation"] = [["a", "b"]]
    path.write_text(json.dumps(data))
    with pytest.raises(InputError, match="annotation 0: polygon 0 is not a list of numbers"):
        load_dataset(path)


def test_annotation_of_an_unknown_image(tmp_path: Path) -> None:
    path = build_posesor(tmp_path)
    data = json.loads(path.read_text())
    data["annotations"][0]["image_id"] = 777
    path.write_text(json.dumps(data))
    with pytest.raises(InputError, match="annotation 1000: refers to image_id 777, which is not in 'images'"):
        load_dataset(path)


def test_assr_rank_order_mismatch(tmp_path: Path) -> None:
    root = build_assr(tmp_path)
    rank_file = root / "rank_order" / "test" / "COCO_val2014_000000000042.json"
    rank_file.write_text(json.dumps({"rank_order": [1.0, 0.9]}))
    with pytest.raises(InputError, match="image COCO_val2014_000000000042: 2 rank_order values for 1 objects") as exc:
        load_dataset(root)
    assert exc.value.path == str(rank_file)
    rank_file.unlink()
    with pytest.raises(InputError, match="rank_order file not found"):
        load_dataset(root)


def test_irsr_length_mismatch(tmp_path: Path) -> None:
    root = build_irsr(tmp_path)
    pkl = root / "Annotations" / "test.pkl"
    data = pickle.loads(pkl.read_bytes())
    data[0]["rank"] = data[0]["rank"][:1]
    pkl.write_bytes(pickle.dumps(data))
    with pytest.raises(InputError, match="image COCO_val2014_000000000192: 1 rank values for 3 annotations"):
        load_dataset(root)


# ---------------------------------------------------------------------------------------------- pickles
class _Evil:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (os.system, (f"touch {self.marker}",))


def test_malicious_pickle_is_refused_and_nothing_runs(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    root = tmp_path / "IRSR"
    (root / "Annotations").mkdir(parents=True)
    pkl = root / "Annotations" / "test.pkl"
    pkl.write_bytes(pickle.dumps([{"file_name": "a.jpg", "annotations": [], "rank": [], "x": _Evil(marker)}]))
    with pytest.raises(InputError, match=r"refusing to unpickle (posix|nt)\.system") as exc:
        load_dataset(root)
    assert exc.value.path == str(pkl)
    assert not marker.exists()


@pytest.mark.parametrize("obj", [__import__("collections").Counter({"a": 1}), __import__("datetime").date(2020, 1, 1)])
def test_pickled_classes_other_than_plain_data_are_refused(tmp_path: Path, obj: object) -> None:
    path = tmp_path / "x.pkl"
    path.write_bytes(pickle.dumps([obj]))
    with pytest.raises(InputError, match="refusing to unpickle"):
        safe_unpickle(path)


def test_plain_data_with_numpy_unpickles(tmp_path: Path) -> None:
    from collections import OrderedDict

    path = tmp_path / "x.pkl"
    value = {"a": np.arange(6, dtype=np.float32).reshape(2, 3), "b": np.int64(4), "c": OrderedDict(k=(1, 2.5, None, b"x")), "d": {1, 2}}
    for protocol in (2, 4, 5):
        path.write_bytes(pickle.dumps(value, protocol=protocol))
        out = safe_unpickle(path)
        np.testing.assert_array_equal(out["a"], value["a"])
        assert out["b"] == 4 and out["c"] == value["c"] and out["d"] == {1, 2}


def test_truncated_pickle(tmp_path: Path) -> None:
    root = build_irsr(tmp_path)
    pkl = root / "Annotations" / "test.pkl"
    pkl.write_bytes(pkl.read_bytes()[:50])
    with pytest.raises(InputError, match="not a readable pickle") as exc:
        load_dataset(pkl)
    assert exc.value.path == str(pkl)


# ---------------------------------------------------------------------------------------------- command line
def test_cli_prints_one_line_for_user_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "broken_test.json"
    path.write_text("{")
    assert main(["data", "info", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"salrank data: error: {path}: not valid JSON")
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
