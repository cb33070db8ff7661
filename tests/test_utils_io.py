"""File helpers: atomic writes keep normal permissions, unreadable images give a clean message,
and a `salrank predict` output folder is readable as predictions through its manifest."""

import json
import os

import numpy as np
import pytest

from salrank.errors import InputError
from salrank.io import detect_predictions, load_predictions
from salrank.outputs import MANIFEST_FORMAT
from salrank.structures import RankedInstances
from salrank.utils.io import read_image, write_json


def test_atomic_write_respects_umask(tmp_path):
    old = os.umask(0o022)
    try:
        write_json(tmp_path / "a.json", {"x": 1})
    finally:
        os.umask(old)
    assert (os.stat(tmp_path / "a.json").st_mode & 0o777) == 0o644


def test_unreadable_image_message_is_clean(tmp_path):
    bad = tmp_path / "not_an_image.jpg"
    bad.write_text("hello")
    with pytest.raises(InputError) as info:
        read_image(bad)
    message = str(info.value)
    assert str(bad) in message and "not a readable image" in message and "BytesIO" not in message


def _write_run(root, names):
    (root / "json").mkdir(parents=True)
    images = []
    for name in names:
        masks = np.zeros((2, 8, 10), bool)
        masks[0, 1:4, 1:5] = True
        masks[1, 5:7, 6:9] = True
        result = RankedInstances.from_masks(masks, image_name=name, model="test")
        write_json(root / "json" / f"{name}.json", result.to_dict())
        images.append({"name": name, "source": f"{name}.jpg", "status": "ok", "outputs": {"json": f"json/{name}.json"}})
    images.append({"name": "broken", "source": "broken.jpg", "status": "failed", "outputs": {}})
    (root / "manifest.json").write_text(json.dumps({"format": MANIFEST_FORMAT, "runs": [], "images": images}))


def test_predict_run_folder_reads_as_predictions(tmp_path):
    _write_run(tmp_path, ["a", "b"])
    assert detect_predictions(tmp_path) == "predict_run"
    preds = load_predictions(tmp_path)
    assert sorted(preds) == ["a", "b"] and len(preds["a"]) == 2


def test_predict_run_with_missing_json_is_reported(tmp_path):
    _write_run(tmp_path, ["a"])
    (tmp_path / "json" / "a.json").unlink()
    with pytest.raises(InputError, match="missing"):
        load_predictions(tmp_path)
