"""Components of the training-free default ranker, on small synthetic images (fast)."""

from __future__ import annotations

import numpy as np
import pytest

from salrank.modeling.default import people as people_mod
from salrank.modeling.default.proposals import Proposal, refine_with_grabcut, region_proposals, upsample_mask
from salrank.modeling.default.ranking import RankingWeights, attention_scores, foreground_map, person_directions
from salrank.modeling.default.saliency import center_prior, colour_contrast, geodesic_saliency, guided_filter, normalise, to_lab


def _disc_scene(h: int = 60, w: int = 80, cx: float = 40, cy: float = 30, r: float = 10) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    img = np.empty((h, w, 3), np.uint8)
    img[:] = (90, 140, 90)
    img = np.clip(img + rng.normal(0, 4, img.shape), 0, 255).astype(np.uint8)
    yy, xx = np.mgrid[:h, :w]
    disc = np.hypot(yy - cy, xx - cx) < r
    img[disc] = (220, 40, 40)
    return img, disc


# ---------------------------------------------------------------------------------------- saliency
def test_geodesic_saliency_separates_object_from_background() -> None:
    img, disc = _disc_scene()
    sal = geodesic_saliency(to_lab(img))
    assert sal.shape == disc.shape and sal.dtype == np.float32
    assert 0.0 <= sal.min() and sal.max() <= 1.0
    assert sal[disc].mean() > 0.8 and sal[~disc].mean() < 0.15


def test_geodesic_saliency_forgives_one_touched_side() -> None:
    img, disc = _disc_scene(cy=55, r=14)  # cut by the bottom edge
    sal = geodesic_saliency(to_lab(img))
    assert sal[disc].mean() > 5 * sal[~disc].mean()


def test_colour_contrast_and_center_prior() -> None:
    img, disc = _disc_scene()
    cc = colour_contrast(to_lab(img))
    assert cc[disc].mean() > cc[~disc].mean() + 0.3
    cp = center_prior(31, 41)
    assert cp.shape == (31, 41) and cp[15, 20] == pytest.approx(cp.max()) and cp[0, 0] < 0.3


def test_guided_filter_keeps_edges() -> None:
    guide = np.zeros((40, 40), np.float32)
    guide[:, 20:] = 1.0
    noisy = guide + np.random.default_rng(0).normal(0, 0.2, guide.shape).astype(np.float32)
    out = guided_filter(guide, noisy, 4, 1e-3)
    assert abs(out[:, :18].mean()) < 0.05 and abs(out[:, 22:].mean() - 1) < 0.05
    assert out[:, 22:].std() < noisy[:, 22:].std() / 2
    assert normalise(np.full((3, 3), 5.0)).max() == 0


# ---------------------------------------------------------------------------------------- proposals
def test_region_proposals_find_two_blobs_and_skip_excluded() -> None:
    fg = np.zeros((60, 80), np.float32)
    fg[10:25, 10:30] = 1.0
    fg[35:50, 45:70] = 0.8
    props = region_proposals(fg)
    assert len(props) == 2
    boxes = sorted(tuple(np.argwhere(p.mask).min(0)) for p in props)
    assert boxes == [(10, 10), (35, 45)]
    excl = np.zeros_like(fg, bool)
    excl[8:27, 8:32] = True
    assert len(region_proposals(fg, exclude=excl)) == 1
    assert region_proposals(np.zeros((10, 10), np.float32)) == []


def test_region_proposals_skip_ground_like_stuff() -> None:
    fg = np.zeros((60, 80), np.float32)
    fg[40:, :50] = 1.0  # a big band along the bottom and left edges
    assert region_proposals(fg) == []


def test_upsample_and_grabcut_follow_the_object() -> None:
    img, disc = _disc_scene(120, 160, 80, 60, 25)
    rough = np.zeros((30, 40), bool)
    rough[9:22, 13:28] = True  # a box roughly around the disc at 1/4 resolution
    grey = img.mean(2).astype(np.float32) / 255
    up = upsample_mask(rough, None, grey, radius=3)
    assert up.shape == disc.shape
    refined = refine_with_grabcut(img, up)
    iou = (refined & disc).sum() / (refined | disc).sum()
    assert iou > 0.85
    assert (refine_with_grabcut(img, up) == refined).all()  # deterministic


# ---------------------------------------------------------------------------------------- ranking
def _pose(shoulder=(100, 100), elbow=(130, 100), wrist=(160, 100), nose=(80, 60), ears=((70, 60), (72, 62))) -> np.ndarray:
    kp = np.zeros((17, 3), np.float32)
    kp[5] = (*shoulder, 1)
    kp[6] = (shoulder[0] - 40, shoulder[1], 1)
    kp[7] = (*elbow, 1)
    kp[9] = (*wrist, 1)
    kp[0] = (*nose, 1)
    kp[3] = (*ears[0], 1)
    kp[4] = (*ears[1], 1)
    return kp


def test_person_directions_pointing_and_gaze() -> None:
    dirs = {k: (o, d) for k, o, d in person_directions(_pose())}
    assert "pointing" in dirs and np.allclose(dirs["pointing"][1], [1, 0], atol=1e-3)
    assert np.allclose(dirs["pointing"][0], [160, 100])
    assert "gaze" in dirs and dirs["gaze"][1][0] > 0.9  # profile face turned right
    bent = person_directions(_pose(elbow=(100, 130), wrist=(130, 130)))
    assert not any(k == "pointing" for k, _, _ in bent)
    hanging = person_directions(_pose(elbow=(100, 130), wrist=(100, 160)))
    assert not any(k == "pointing" for k, _, _ in hanging)
    frontal = person_directions(_pose(nose=(75, 62), ears=((60, 60), (90, 60))))
    assert not any(k == "gaze" for k, _, _ in frontal)


def test_pointing_passes_attention_to_the_target() -> None:
    h, w = 100, 200
    person = np.zeros((h, w), bool)
    person[40:90, 20:50] = True
    ahead = np.zeros((h, w), bool)
    ahead[45:60, 150:170] = True  # in line with the arm
    aside = np.zeros((h, w), bool)
    aside[5:20, 80:100] = True  # the same size, off the arm's line
    kp = _pose(shoulder=(45, 50), elbow=(70, 51), wrist=(95, 52), nose=(35, 40), ears=((30, 40), (40, 40)))
    props = [
        Proposal(mask=person, score=1.0, kind="person", keypoints=kp),
        Proposal(mask=aside, score=0.5),
        Proposal(mask=ahead, score=0.5),
    ]
    fg = np.full((h, w), 0.5, np.float32)
    center = np.ones((h, w), np.float32)
    zeros = np.zeros((h, w), np.float32)
    scores = attention_scores(props, fg, center, zeros, zeros, (h, w), RankingWeights())
    assert scores[0] > scores[2] > scores[1]
    assert props[2].cues["directed"] > 0 and props[1].cues["directed"] == 0
    no_pose = attention_scores([Proposal(mask=person, score=1.0, kind="person"), Proposal(mask=aside, score=0.5), Proposal(mask=ahead, score=0.5)], fg, center, zeros, zeros, (h, w))
    assert no_pose[1] == pytest.approx(no_pose[2])


def test_foreground_map_range() -> None:
    rng = np.random.default_rng(0)
    maps = [rng.random((20, 30)).astype(np.float32) for _ in range(5)]
    fg = foreground_map(*maps)
    assert fg.shape == (20, 30) and fg.min() >= 0 and fg.max() == pytest.approx(1.0)


# ---------------------------------------------------------------------------------------- people
def test_blazepose_to_coco_mapping() -> None:
    m = people_mod.BLAZEPOSE_TO_COCO
    assert len(m) == 17 and m[0] == 0  # nose
    assert (m[5], m[6], m[11], m[12], m[15], m[16]) == (11, 12, 23, 24, 27, 28)  # shoulders, hips, ankles
    assert isinstance(people_mod.mediapipe_available(), bool)


def test_tiles_and_overlap_suppression() -> None:
    tiles = people_mod._tiles(100, 200, 0.6)
    assert tiles[0] == (0, 0, 200, 100) and len(tiles) == 5
    assert all(x1 <= 200 and y1 <= 100 for _, _, x1, y1 in tiles)
    assert people_mod._tiles(100, 200, 1.0) == [(0, 0, 200, 100)]
    a = np.zeros((10, 10), bool)
    a[2:8, 2:8] = True
    kp = np.zeros((17, 3), np.float32)
    ps = [people_mod.Person(a, kp, 0.6), people_mod.Person(a.copy(), kp, 0.9), people_mod.Person(~a, kp, 0.5)]
    kept = people_mod._suppress_overlaps(ps)
    assert [p.score for p in kept] == [0.9, 0.5]


def test_fine_tiles_cover_the_image() -> None:
    tiles = people_mod._tiles(300, 400, 0.6, 0.4)
    assert len(tiles) == 1 + 4 + 9
    covered = np.zeros((300, 400), bool)
    for x0, y0, x1, y1 in tiles[5:]:
        covered[y0:y1, x0:x1] = True
    assert covered.all()


def test_torch_threads_are_restored() -> None:
    import torch

    from salrank.modeling.default.model import _torch_threads

    before = torch.get_num_threads()
    with _torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with _torch_threads(None):
        assert torch.get_num_threads() == before
