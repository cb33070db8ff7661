"""``salrank predict`` with SeqRank: the official fixtures through the command, and salrank weights.

The command itself (outputs, layouts, resuming, error isolation) is tested with the application tests;
these check that official SeqRank checkpoints and configs go through it with the official results.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from salrank.cli import main
from salrank.io.json_folder import read_prediction_json
from salrank.modeling.loading import save_model
from salrank.modeling.seqrank import build_seqrank, seqrank_tiny_config

pytestmark = pytest.mark.usefixtures("one_thread")


def find_json(out, name):
    matches = sorted(out.rglob(f"{name}.json"))
    assert len(matches) == 1, f"expected one {name}.json under {out}, found {matches}"
    return matches[0]


@pytest.mark.fixtures
@pytest.mark.parametrize("name", ["seqrank_correct", "seqrank_orig"])
def test_fixture_through_the_command(shared_fixtures, tmp_path, name):
    torch.set_num_threads(2)  # as the fixtures were made
    folder = shared_fixtures / "models" / name
    out = tmp_path / "out"
    code = main(["predict", str(folder / "input.jpg"), "--config", str(folder / "config.yaml"),
                 "--weights", str(folder / "checkpoint.pth"), "--device", "cpu", "--out", str(out), "--no-progress"])  # fmt: skip
    assert code == 0
    path = find_json(out, "input")
    data = json.loads(path.read_text())
    assert (data["image"], data["height"], data["width"]) == ("input", 480, 640)
    assert data["model"] == f"seqrank-{'correct' if name == 'seqrank_correct' else 'original'}"
    first = data["instances"][0]
    assert {"rank", "segmentation", "score", "saliency", "bbox"} <= set(first)
    assert isinstance(first["segmentation"]["counts"], str) and first["segmentation"]["size"] == [480, 640]
    assert [d["rank"] for d in data["instances"]] == list(range(1, len(data["instances"]) + 1))
    final = torch.load(folder / "expected.pt", weights_only=True)["final"]
    result = read_prediction_json(path)
    assert len(result) == final["num"]
    assert np.array_equal(result.masks, final["masks"].numpy().astype(bool))
    np.testing.assert_allclose(result.scores, final["scores"].numpy(), atol=1e-5, rtol=0)
    np.testing.assert_allclose(result.saliency, final["saliency"].numpy(), atol=1e-5, rtol=0)
    np.testing.assert_allclose(result.boxes, final["bboxes"].numpy(), atol=1e-3, rtol=0)


def test_salrank_weights_through_the_command(tmp_path):
    torch.manual_seed(0)
    model = build_seqrank(seqrank_tiny_config())
    weights = save_model(model, tmp_path / "tiny.safetensors")
    rgb = (np.random.RandomState(0).rand(50, 70, 3) * 255).astype(np.uint8)
    Image.fromarray(rgb).save(tmp_path / "shot.png")
    out = tmp_path / "out"
    assert main(["predict", str(tmp_path / "shot.png"), "--weights", str(weights), "--device", "cpu", "--out", str(out), "--no-progress"]) == 0
    result = read_prediction_json(find_json(out, "shot"))
    [expected] = model.predict([rgb], ["shot"])
    assert np.array_equal(result.masks, expected.masks)
    np.testing.assert_allclose(result.saliency, expected.saliency, atol=1e-6)
