"""End to end: PoseSOR predictions -> PoseSOR result file (with joints) -> salrank.io -> salrank eval (jacc/jae)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from _data_builders import build_posesor

from salrank.cli import main
from salrank.data import load_dataset
from salrank.evaluation import evaluate
from salrank.evaluation.joints import joint_metrics, normalise_keypoints
from salrank.io import load_predictions, read_result_file, save_result_file
from salrank.modeling.loading import load_model, save_model
from salrank.modeling.posesor import build_posesor as build_model
from salrank.modeling.posesor import posesor_tiny_config
from salrank.predictor import Predictor
from salrank.utils.io import read_image


@pytest.fixture(scope="module")
def dataset_and_predictions(tmp_path_factory):
    root = tmp_path_factory.mktemp("posesor_gt")
    gt_path = build_posesor(root)
    dataset = load_dataset(gt_path)
    torch.manual_seed(0)
    model = build_model(posesor_tiny_config())
    model.cfg.input.test_image_size = 64
    images = [read_image(dataset.image_path(img)) for img in dataset]
    preds = model.predict(images, [img.image_id for img in dataset])
    return root, gt_path, dataset, preds


def test_result_file_round_trip_keeps_the_joints(dataset_and_predictions, tmp_path):
    _, _, _, preds = dataset_and_predictions
    path = tmp_path / "posesor_results.pth"
    save_result_file(preds, path)
    raw = torch.load(path, weights_only=True)
    for pred in preds:
        entry = raw[pred.image_name]
        assert entry["num"] == len(pred) and len(entry["joints"]) == len(pred)
        joints = np.asarray(entry["joints"])  # official layout: (x / W, y / H, visibility)
        np.testing.assert_allclose(joints[..., 0] * pred.width, pred.keypoints[..., 0], atol=1e-4)
        np.testing.assert_allclose(joints[..., 2], pred.keypoints[..., 2], atol=1e-6)
    back = read_result_file(path)
    for pred in preds:
        got = back[pred.image_name]
        assert np.array_equal(got.masks, pred.masks)
        np.testing.assert_allclose(got.keypoints, pred.keypoints, atol=1e-4)
        np.testing.assert_allclose(got.saliency, pred.saliency, atol=1e-6)
    assert set(load_predictions(path)) == {p.image_name for p in preds}


def test_eval_scores_joints_when_the_gt_has_keypoints(dataset_and_predictions, tmp_path):
    _, gt_path, dataset, preds = dataset_and_predictions
    report = evaluate(dataset, preds, "seqrank")
    assert {"sa_sor", "sor", "mae", "jacc", "jae"} <= set(report.metrics)
    assert report.metrics["jacc"] is not None and 0 <= report.metrics["jacc"] <= 1
    # the per-image joint metrics are those of the official formulas on the normalised keypoints
    image = dataset.images[0]
    pred = {p.image_name: p for p in preds}[image.image_id]
    gt_kp = np.stack([inst.keypoints for inst in image.instances]) / np.array([image.width, image.height, 1], np.float32)
    from salrank.evaluation.seqrank_protocol import (
        seqrank_matching,  # the Hungarian pairs the protocol uses
    )

    pairs = seqrank_matching(image.gt_masks(), pred.masks)
    expected = joint_metrics(gt_kp, normalise_keypoints(pred.keypoints, pred.height, pred.width), pairs.gt_ind, pairs.pred_ind)
    assert report.per_image[image.image_id]["jacc"] == pytest.approx(expected["jacc"])

    # the command line, from the result file
    res = tmp_path / "results.pth"
    save_result_file(preds, res)
    out = tmp_path / "report.json"
    code = main(["eval", "--no-progress", "--protocol", "seqrank", "--gt", str(gt_path), "--pred", str(res), "--report", str(out)])
    assert code == 0
    saved = json.loads(out.read_text())
    assert saved["metrics"]["jacc"] == report.metrics["jacc"] and saved["metrics"]["jae"] == report.metrics["jae"]


def test_predictor_and_salrank_weights_round_trip(dataset_and_predictions, tmp_path):
    _, _, dataset, _ = dataset_and_predictions
    torch.manual_seed(0)
    model = build_model(posesor_tiny_config())
    model.cfg.input.test_image_size = 64
    weights = save_model(model, tmp_path / "tiny_posesor")
    loaded = load_model(weights=weights)
    assert loaded.architecture == "posesor" and loaded.cfg == model.cfg
    predictor = Predictor(loaded)
    path = dataset.image_path(dataset.images[0])
    result = predictor(str(path))
    expected = model.predict([read_image(path)], [path.stem])[0]
    assert np.array_equal(result.masks, expected.masks) and np.array_equal(result.keypoints, expected.keypoints)
    data = result.to_dict()
    assert len(data["instances"][0]["keypoints"]) == 17  # keypoints in the salrank JSON


@pytest.mark.fixtures
def test_load_model_from_official_files_and_cli_predict(shared_fixtures, tmp_path):
    folder = shared_fixtures / "models" / "posesor"
    model = load_model(folder / "config.yaml", folder / "checkpoint.pth")
    assert model.architecture == "posesor"
    out = tmp_path / "pred"
    code = main(["predict", str(folder / "input.jpg"), "--model", str(folder / "checkpoint.pth"), "--config", str(folder / "config.yaml"),
                 "--device", "cpu", "--out", str(out)])  # fmt: skip
    assert code == 0
    data = json.loads((out / "json" / "input.json").read_text())
    assert len(data["instances"]) == 5 and len(data["instances"][0]["keypoints"]) == 17
    assert (out / "skeletons" / "input.png").is_file() and (out / "colormaps" / "input.png").is_file()
    expected = torch.load(folder / "expected.pt", weights_only=False)["final"]
    kp = np.array([inst["keypoints"] for inst in data["instances"]], np.float32)
    assert np.array_equal(kp[..., :2] / np.array([640, 480], np.float32), expected["joints"].numpy()[..., :2])
