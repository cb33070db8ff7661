"""PPA against the official model's outputs (``../shared/fixtures/models/ppa``, see its NOTES.md).

The fixture is a narrow PPA (VoVNet "V-39-eSE-tiny-a", 32-wide FPN, 8 detections) run by the official
CenterMask2/detectron2 code on a real 640x480 photo. Intermediates must agree within 1e-4; detections,
ranks and pasted masks must be the same, in each inference form (NHWC, NCHW, optimised).
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import torch

from salrank.modeling.layers.frozen_bn import FrozenBatchNorm2d
from salrank.modeling.ppa import build_ppa, load_official_ppa_checkpoint, ppa_config_from_official_yaml
from salrank.modeling.ppa.inference_forms import optimize_ppa_for_inference
from salrank.modeling.ppa.ppa import PPA, PPAPrediction

ATOL = 1e-4


@pytest.fixture(scope="module")
def ppa_dir(shared_fixtures: Path) -> Path:
    path = shared_fixtures / "models" / "ppa"
    if not (path / "expected.pt").is_file():
        pytest.skip(f"PPA fixture not found in {path}")
    return path


@pytest.fixture(scope="module")
def expected(ppa_dir: Path) -> dict:
    return torch.load(ppa_dir / "expected.pt", weights_only=True)


@pytest.fixture(scope="module")
def model(ppa_dir: Path, expected: dict) -> PPA:
    cfg = ppa_config_from_official_yaml(ppa_dir / "config.yaml", vovnet_spec=expected["meta"]["vovnet_spec"])
    m = build_ppa(cfg)
    report = load_official_ppa_checkpoint(m, ppa_dir / "checkpoint.pth")
    assert report.ok and not report.missing and not report.unexpected
    return m


@pytest.fixture(scope="module", params=["channels_last", "nchw", "optimised"])
def form(request: pytest.FixtureRequest, model: PPA) -> PPA:
    """Every inference form reproduces the official outputs: NHWC convolutions (the default), NCHW (the
    official kernels) and ``optimize_ppa_for_inference`` (frozen BN folded, FCOS towers fused; a copy)."""
    if request.param == "optimised":
        optimised = copy.deepcopy(model)
        # the checkpoint's BatchNorms are not the identity, so folding does real arithmetic here
        assert any(not torch.equal(m.weight, torch.ones_like(m.weight)) for m in optimised.modules() if isinstance(m, FrozenBatchNorm2d))
        changes = optimize_ppa_for_inference(optimised)
        assert changes["folded_bn"] > 0 and changes["fused_fcos"] == 1
        yield optimised
        return
    model.set_channels_last(request.param == "channels_last")
    try:
        yield model
    finally:
        model.set_channels_last(True)


@pytest.fixture(scope="module")
def run(form: PPA, expected: dict) -> tuple[PPAPrediction, dict]:
    threads = torch.get_num_threads()
    torch.set_num_threads(2)  # the fixture was produced with 2 threads
    try:
        record: dict = {}
        prediction = form.run_image(expected["input"]["image_bgr"], record=record)
    finally:
        torch.set_num_threads(threads)
    return prediction, record


def _close(got: torch.Tensor, want: torch.Tensor, name: str, atol: float = ATOL) -> None:
    assert tuple(got.shape) == tuple(want.shape), f"{name}: shape {tuple(got.shape)} != {tuple(want.shape)}"
    diff = (got.double() - want.double()).abs().max().item() if got.numel() else 0.0
    assert diff <= atol, f"{name}: max abs difference {diff:.3g} > {atol}"


def test_config_matches_fixture(model: PPA, expected: dict) -> None:
    spec = expected["meta"]["vovnet_spec"]
    assert model.cfg.vovnet_spec is not None and list(model.cfg.vovnet_spec.stage_out_ch) == spec["stage_out_ch"]
    assert model.cfg.fcos.score_threshold == pytest.approx(expected["meta"]["score_threshold"])
    assert model.cfg.fcos.post_nms_topk == 8 and model.cfg.rank_head.name == "SelfAttentionWithPosConvCat"


def test_backbone_fpn_and_fcos_head(run: tuple, expected: dict) -> None:
    _, rec = run
    for name in ("stage3", "stage4", "stage5"):
        _close(rec[f"backbone.{name}"], expected["backbone"][name], f"backbone.{name}")
    for name in ("p3", "p4", "p5", "p6", "p7"):
        _close(rec[f"fpn.{name}"], expected["fpn"][name], f"fpn.{name}")
    for key in ("cls_logits", "bbox_reg", "ctrness_logits"):
        got, want = rec[f"fcos_head.{key}"], expected["fcos_head"][key]
        assert len(got) == len(want) == 5
        for level, (g, w) in enumerate(zip(got, want)):
            _close(g, w, f"fcos_head.{key}[{level}]")


def test_detections_before_roi_heads(run: tuple, expected: dict) -> None:
    _, rec = run
    det, want = rec["detections_before_roi_heads"], expected["detections_before_roi_heads"]
    assert len(det) == len(want["scores"]) == 8
    assert torch.equal(det.classes, want["pred_classes"])
    assert torch.equal(det.locations, want["locations"])
    _close(det.boxes, want["pred_boxes"], "pred_boxes", atol=1e-3)  # pixels
    _close(det.scores, want["scores"], "scores", atol=1e-6)
    assert det.image_size == tuple(want["image_size"])


def test_roi_heads_intermediates(run: tuple, expected: dict) -> None:
    _, rec = run
    assert torch.equal(rec["mask_pooler_level_index"], expected["mask_pooler_level_index"])
    for key in ("mask_pooler_out", "mask_logits", "maskiou_pred", "sor_in_mask_probs_28", "sor_in_pos", "sor_logits"):
        _close(rec[key], expected[key], key)


def test_roi_heads_output(run: tuple, expected: dict) -> None:
    prediction, _ = run
    want = expected["roi_heads_out"]
    # no box became empty, so the post-processed detections are all of them, in order
    assert prediction.detection_index.tolist() == list(range(8))
    det = prediction.detections
    assert det.pred_ranks.tolist() == [int(r) for r in want["pred_ranks"].tolist()] == [4, 0, 1, -1, -1, -1, 3, 2]
    _close(det.mask_probs, want["pred_masks"], "pred_masks (28x28 probabilities)")
    _close(det.mask_scores, want["mask_scores"], "mask_scores", atol=1e-6)


def test_final_boxes_scores_and_masks(run: tuple, expected: dict) -> None:
    prediction, _ = run
    final = expected["final"]
    _close(prediction.boxes, final["pred_boxes"], "final boxes", atol=1e-3)
    _close(prediction.detections.scores, final["scores"], "final scores", atol=1e-6)
    _close(prediction.detections.mask_scores, final["mask_scores"], "final mask_scores", atol=1e-6)
    assert prediction.detections.pred_ranks.tolist() == [int(r) for r in final["pred_ranks"].tolist()]
    masks = prediction.masks()
    want = final["pred_masks"].bool()
    # NOTES.md allows a few pixels to flip where a probability sits at exactly 0.5; none does here.
    flipped = int((masks != want).sum())
    assert flipped == 0, f"{flipped} mask pixels differ from the official pasted masks"


def test_predict_returns_ranked_instances_in_rank_order(form: PPA, ppa_dir: Path, expected: dict) -> None:
    from salrank.utils.io import read_image

    image = read_image(ppa_dir / "input.jpg")
    # our reader + the official test mapper give the official model input byte for byte
    assert torch.equal(form.preprocess(image), expected["input"]["image_bgr"])
    (result,) = form.predict([image], ["input"])
    final = expected["final"]
    order = [0, 6, 7, 2, 1]  # detections with rank classes 4, 3, 2, 1, 0
    assert len(result) == 5 and result.model == "ppa" and (result.height, result.width) == (480, 640)
    assert result.extras["rank_class"].tolist() == [4, 3, 2, 1, 0]
    assert result.extras["detection_index"].tolist() == order
    np.testing.assert_array_equal(result.masks, final["pred_masks"][order].bool().numpy())
    np.testing.assert_allclose(result.scores, final["scores"][order].numpy(), atol=1e-6)
    np.testing.assert_allclose(result.boxes, final["pred_boxes"][order].numpy(), atol=1e-3)
    np.testing.assert_allclose(result.saliency, [1.0, 0.9, 0.8, 0.7, 0.6], atol=1e-6)
    np.testing.assert_allclose(result.extras["mask_scores"], final["mask_scores"][order].numpy(), atol=1e-6)
    assert result.extras["sor_logits"].shape == (5, 5)
    assert (np.diff(result.saliency) < 0).all()
    unranked = result.extras["unranked"]
    assert unranked["detection_index"].tolist() == [3, 4, 5]
    np.testing.assert_allclose(unranked["scores"], final["scores"][[3, 4, 5]].numpy(), atol=1e-6)
