"""SeqRank against the official model's outputs (``shared/fixtures/models/seqrank_{correct,orig}``).

Each fixture is a tiny configuration of the official architecture with seeded random weights, run by
the official code. salrank builds the model from the official ``config.yaml``, loads the official
``checkpoint.pth`` through its key map and must reproduce, in float32 on CPU:

* the final ranked instances exactly: same order (query indices), equal masks, scores and saliency
  within 1e-5, boxes within 1e-3 px;
* every intermediate within 1e-4: neck features, positional encodings, FOM queries and all its
  predictions, the SRM logits at every step, the visiting histories and the selections.

Both the optimised path (default) and the reference path (official formulas step by step) are
checked, from the stored resized input and from ``input.jpg`` through the full official preprocessing.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from salrank.modeling.seqrank import (
    RankingTrace,
    SeqRankOutput,
    build_seqrank,
    load_official_seqrank_checkpoint,
    seqrank_config_from_official_yaml,
)
from salrank.modeling.seqrank.seqrank import resize_square
from salrank.utils.io import read_image

pytestmark = pytest.mark.fixtures
FIXTURES = ["seqrank_correct", "seqrank_orig"]
ATOL = RTOL = 1e-4


@pytest.fixture(autouse=True)
def two_threads():
    old = torch.get_num_threads()
    torch.set_num_threads(2)  # the fixtures were made with 2 threads
    yield
    torch.set_num_threads(old)


def load(folder, fast=True):
    cfg = seqrank_config_from_official_yaml(folder / "config.yaml")
    cfg.fast_inference = fast
    model = build_seqrank(cfg)
    report = load_official_seqrank_checkpoint(model, folder / "checkpoint.pth")
    assert report.ok and all(k.endswith("relative_position_index") for k in report.dropped)
    return model, torch.load(folder / "expected.pt", weights_only=True)


def assert_final(result, final, name):
    """The acceptance criterion on the ranked instances."""
    assert result.extras["query_index"].tolist() == final["query_index"].tolist(), name
    assert len(result) == final["num"]
    assert (result.height, result.width) == tuple(final["masks"].shape[1:])
    mismatched = int((result.masks != final["masks"].numpy().astype(bool)).sum())
    assert mismatched == 0, f"{name}: {mismatched} mask pixels differ"
    np.testing.assert_allclose(result.scores, final["scores"].numpy(), atol=1e-5, rtol=0)
    np.testing.assert_allclose(result.saliency, final["saliency"].numpy(), atol=1e-5, rtol=0)
    np.testing.assert_allclose(result.boxes, final["bboxes"].numpy(), atol=1e-3, rtol=0)


def assert_fovea(out: SeqRankOutput, expected, name):
    fom = expected["fom"]
    torch.testing.assert_close(out.fovea.queries, fom["q"], atol=ATOL, rtol=RTOL, msg=f"{name} fom.q")
    torch.testing.assert_close(out.fovea.query_pos, fom["qpe"], atol=0, rtol=0, msg=f"{name} fom.qpe")
    official = [*fom["aux"], fom["out"]]
    assert len(out.fovea.predictions) == len(official)
    for i, (ours, ref) in enumerate(zip(out.fovea.predictions, official)):
        for field, key in (("masks", "masks"), ("objectness", "scores"), ("boxes", "bboxes")):
            torch.testing.assert_close(getattr(ours, field), ref[key], atol=ATOL, rtol=RTOL, msg=f"{name} stage {i} {key}")


def assert_ranking(trace: RankingTrace, expected, name):
    srm = expected["srm"]
    steps = trace.stacked(0)
    assert len(trace.saliency_logits) == srm["num_srm_calls"]
    torch.testing.assert_close(steps["saliency_logits"], srm["sal_logits_steps"], atol=ATOL, rtol=RTOL, msg=f"{name} SRM logits")
    torch.testing.assert_close(steps["visits"], srm["q_vis_steps"], atol=0, rtol=0, msg=f"{name} visiting history")
    assert steps["selected"].tolist() == srm["selected_query_per_step"].tolist()
    torch.testing.assert_close(steps["saliency_logits"][:3], srm["first3_sal_logits"], atol=ATOL, rtol=RTOL)


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "reference"])
@pytest.mark.parametrize("name", FIXTURES)
def test_end_to_end_matches_official(shared_fixtures, name, fast):
    model, expected = load(shared_fixtures / "models" / name, fast=fast)
    meta = expected["meta"]
    image = expected["input"]["image_resized"].float()[None]
    trace, record = RankingTrace(), {}
    result = model.predict_resized(image, [(meta["orig_height"], meta["orig_width"])], ["input"], trace=trace, record=record)[0]
    out: SeqRankOutput = record["outputs"]
    for key, ref in expected["neck"].items():
        torch.testing.assert_close(out.features[key], ref, atol=ATOL, rtol=RTOL, msg=f"{name} neck.{key}")
    for size, ref in expected["pos_embed"].items():
        h, w = map(int, size.split("x"))
        torch.testing.assert_close(model.pos_embed.for_size(h, w), ref, atol=1e-6, rtol=0)
    assert_fovea(out, expected, name)
    assert_ranking(trace, expected, name)
    assert_final(result, expected["final"], name)
    assert result.image_name == "input" and result.model == f"seqrank-{model.variant}"


@pytest.mark.parametrize("name", FIXTURES)
def test_heads_from_the_official_neck_features(shared_fixtures, name):
    """FOM, SRM and read-out alone, fed the official neck outputs: independent of the backbone's rounding
    (FrcPN's local-mean comparisons amplify any backbone difference, see docs/readme/seqrank.md)."""
    model, expected = load(shared_fixtures / "models" / name)
    features = dict(expected["neck"])
    pos = {k: model.position_encoding(v) for k, v in features.items()}
    with torch.no_grad():
        out = SeqRankOutput(features=features, pos=pos, fovea=model.fovea(features, pos))
    assert_fovea(out, expected, name)
    trace = RankingTrace()
    rankings = model.rank(out, trace=trace)
    assert_ranking(trace, expected, name)
    meta = expected["meta"]
    result = model.to_instances(out, rankings, [(meta["orig_height"], meta["orig_width"])], ["input"])[0]
    assert_final(result, expected["final"], name)


@pytest.mark.parametrize("name", FIXTURES)
def test_official_preprocessing_from_the_photo(shared_fixtures, name):
    folder = shared_fixtures / "models" / name
    model, expected = load(folder)
    photo = read_image(folder / "input.jpg")  # PIL, RGB, as the official mapper
    resized = resize_square(photo, model.cfg.input.test_size)
    assert np.array_equal(resized, expected["input"]["image_resized"].permute(1, 2, 0).numpy()), "decode/resize differ"
    assert torch.equal(model.preprocess(photo), expected["input"]["image_resized"].float())
    result = model.predict([photo], ["input"])[0]
    assert_final(result, expected["final"], name)


def test_batched_images_get_their_own_results(shared_fixtures):
    folder = shared_fixtures / "models" / "seqrank_correct"
    model, expected = load(folder)
    photo = read_image(folder / "input.jpg")
    other = np.ascontiguousarray(photo[40:, ::-1])  # a different image of another size
    batch = model.predict([photo, other], ["input", "other"])
    alone = model.predict([other], ["other"])[0]
    assert_final(batch[0], expected["final"], "batched")
    assert batch[1].extras["query_index"].tolist() == alone.extras["query_index"].tolist()
    assert batch[1].masks.shape[1:] == (440, 640) and np.array_equal(batch[1].masks, alone.masks)
    np.testing.assert_allclose(batch[1].scores, alone.scores, atol=1e-6)
    np.testing.assert_allclose(batch[1].saliency, alone.saliency, atol=1e-6)
    np.testing.assert_allclose(batch[1].boxes, alone.boxes, atol=1e-4)
