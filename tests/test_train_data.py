"""Synthetic dataset, training transforms, the resumable sampler and the training dataset."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from salrank.data import check_dataset, load_dataset
from salrank.data.synth import (
    HUE_LADDER,
    SynthConfig,
    attention_score,
    generate_synth_dataset,
    ladder_level,
)
from salrank.errors import InputError
from salrank.structures import COCO_KEYPOINT_NAMES
from salrank.training.datasets import SampleOptions, SORTrainingDataset, collate_samples
from salrank.training.samplers import SampleKey, TrainBatchSampler, shard_indices
from salrank.training.transforms import (
    FLIP_PERMUTATION,
    hflip,
    resize_shortest_edge,
    shortest_edge_size,
)


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synth")
    generate_synth_dataset(out, SynthConfig(n=24, seed=3))
    return out


def test_synth_is_deterministic_and_valid(synth: Path, tmp_path: Path) -> None:
    generate_synth_dataset(tmp_path, SynthConfig(n=24, seed=3))
    for split in ("train", "val", "test"):
        assert (synth / f"synth_{split}.json").read_bytes() == (tmp_path / f"synth_{split}.json").read_bytes()
        report = check_dataset(synth / f"synth_{split}.json")
        assert report.ok, [str(p) for p in report.problems]
        ds = load_dataset(synth / f"synth_{split}.json")
        assert ds.format == "posesor" and len(ds) > 0
    other = tmp_path / "other"
    generate_synth_dataset(other, SynthConfig(n=24, seed=4))
    assert (other / "synth_train.json").read_bytes() != (synth / "synth_train.json").read_bytes()
    with pytest.raises(InputError, match="overwrite"):
        generate_synth_dataset(tmp_path, SynthConfig(n=24, seed=3))


def _visible_hue(pixels: np.ndarray, mask: np.ndarray) -> float:
    """Hue (degrees) of the mean colour of a mask's interior, measured on the decoded JPEG."""
    import colorsys

    import cv2

    inner = cv2.erode(mask.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    r, g, b = pixels[inner if inner.sum() >= 10 else mask].mean(0) / 255.0
    return 360.0 * colorsys.rgb_to_hsv(r, g, b)[0]


def test_synth_attention_rule(synth: Path) -> None:
    """Visiting order = hue-ladder order, re-derived from the pixels of the written images."""
    import cv2

    data = json.loads((synth / "synth_train.json").read_text())
    ds = load_dataset(synth / "synth_train.json")
    by_image: dict[int, list[dict]] = {}
    for ann in data["annotations"]:
        by_image.setdefault(ann["image_id"], []).append(ann)
    correct_scenes = 0
    for info, img in zip(data["images"], ds.images):
        anns = by_image[info["id"]]
        assert [a["category_id"] for a in anns] == list(range(1, len(anns) + 1))
        names = [a["hue"] for a in anns]
        ladder = [name for name, _ in HUE_LADDER]
        assert [ladder.index(n) for n in names] == sorted(ladder.index(n) for n in names)  # distinct, in ladder order
        assert [a["attention_score"] for a in anns] == pytest.approx([1 - ladder.index(n) / len(ladder) for n in names], abs=1e-6)
        pixels = cv2.cvtColor(cv2.imread(str(ds.image_path(img))), cv2.COLOR_BGR2RGB).astype(np.float64)
        masks = img.gt_masks().astype(bool)
        hues = [_visible_hue(pixels, m) for m in masks]
        assert [ladder[ladder_level(h)] for h in hues] == names, (img.file_name, hues, names)
        # ranking by the re-measured hue gives the annotated order
        correct_scenes += sorted(range(len(hues)), key=lambda i: -attention_score(hues[i])) == list(range(len(hues)))
        # people have keypoints, other objects none
        for a in anns:
            assert (a["num_keypoints"] > 0) == (a["class_id"] == 1)
    assert correct_scenes == len(data["images"])


def test_synth_order_is_not_size_or_position() -> None:
    """Size, position, kind and occlusion are drawn independently of the rank: the trivial orders are at chance."""
    from scipy.stats import kendalltau

    from salrank.data.synth import draw_scene

    cfg = SynthConfig(width=128, height=96, min_objects=3, max_objects=3)
    taus: dict[str, list[float]] = {"area": [], "centre": [], "person": []}
    for k in range(300):
        scene = draw_scene(np.random.default_rng([5, k]), cfg)
        h, w = cfg.height, cfg.width
        area, centre, person = [], [], []
        for obj in scene.objects:
            ys, xs = np.nonzero(obj.mask)
            area.append(float(obj.mask.sum()))
            centre.append(-math.hypot(xs.mean() - w / 2, ys.mean() - h / 2))
            person.append(float(obj.kind == "person") + 1e-3 * area[-1])
        order = -np.arange(len(scene.objects))  # higher = seen earlier
        for key, values in (("area", area), ("centre", centre), ("person", person)):
            taus[key].append(kendalltau(order, values).statistic)
    for key, values in taus.items():
        assert abs(float(np.mean(values))) < 0.08, (key, float(np.mean(values)))
    assert SynthConfig().max_objects <= len(HUE_LADDER)
    with pytest.raises(ValueError, match="objects"):
        draw_scene(np.random.default_rng(0), SynthConfig(max_objects=len(HUE_LADDER) + 1))


def test_hflip_swaps_joints() -> None:
    assert [COCO_KEYPOINT_NAMES[i] for i in FLIP_PERMUTATION[:7]] == [
        "nose",
        "right_eye",
        "left_eye",
        "right_ear",
        "left_ear",
        "right_shoulder",
        "left_shoulder",
    ]
    img = np.arange(2 * 4 * 3, dtype=np.uint8).reshape(2, 4, 3)
    masks = np.zeros((1, 2, 4), np.uint8)
    masks[0, :, 0] = 1
    kps = np.zeros((1, 17, 3), np.float32)
    kps[0, 9] = (0.2, 0.5, 2)  # left wrist on the left of the image
    boxes = np.array([[0.0, 0.0, 0.25, 1.0]], np.float32)
    im2, m2, b2, k2, _ = hflip(img, masks, boxes, kps, swap_joints=True)
    assert (im2[:, 0] == img[:, 3]).all() and m2[0, :, 3].all()
    assert b2[0].tolist() == pytest.approx([0.75, 0.0, 1.0, 1.0])
    assert k2[0, 10].tolist() == pytest.approx([0.8, 0.5, 2])  # now a right wrist, on the right
    assert k2[0, 9].tolist() == [1.0, 0.0, 0.0]
    _, _, _, k3, _ = hflip(img, masks, boxes, kps, swap_joints=False)  # the official behaviour
    assert k3[0, 9].tolist() == pytest.approx([0.8, 0.5, 2])


def test_shortest_edge_resize() -> None:
    assert shortest_edge_size(480, 640, 480, 1333) == (480, 640)
    assert shortest_edge_size(100, 1000, 480, 1333) == (133, 1333)
    img, masks = resize_shortest_edge(np.zeros((240, 320, 3), np.uint8), np.ones((2, 240, 320), np.uint8), 480, 1333)
    assert img.shape == (480, 640, 3) and masks.shape == (2, 480, 640)


def test_sampler_is_deterministic_resumable_and_sharded() -> None:
    full = TrainBatchSampler(10, 3, seed=1, dynamic_sizes=(64, 96))
    stream = [full.batch(b) for b in range(12)]
    resumed = TrainBatchSampler(10, 3, seed=1, dynamic_sizes=(64, 96), start_batch=5)
    it = iter(resumed)
    assert [next(it) for _ in range(7)] == stream[5:]
    # every epoch is a permutation of the images
    first = [k.index for b in stream[:10] for k in b][:10]
    assert sorted(first) == list(range(10))
    assert {k.size for b in stream for k in b} <= {64, 96}
    # two processes split each global batch without overlap, with the same size
    r0 = TrainBatchSampler(12, 2, seed=1, rank=0, world_size=2, dynamic_sizes=(64, 96))
    r1 = TrainBatchSampler(12, 2, seed=1, rank=1, world_size=2, dynamic_sizes=(64, 96))
    for b in range(3):
        a, c = r0.batch(b), r1.batch(b)
        assert not {k.index for k in a} & {k.index for k in c}
        assert a[0].size == c[0].size
    assert shard_indices(5, 1, 2) == [1, 3]


def test_training_dataset_samples_and_skips_bad_images(synth: Path, tmp_path: Path) -> None:
    ds = load_dataset(synth / "synth_train.json")
    train = SORTrainingDataset(ds, SampleOptions(size=64, flip=0.5, next_targets=True))
    s = train[SampleKey(0, 48, 123)]
    n = len(ds[0].instances)
    assert s["image"].shape == (3, 48, 48) and s["image"].dtype == torch.uint8
    assert s["masks"].shape == (n, 48, 48) and s["next_targets"].shape == (n, 48, 48)
    assert s["ranks"].tolist() == list(range(1, n + 1)) and s["visiting_order"].tolist() == list(range(1, n + 1))
    # the next-object target of the last object is the background
    assert torch.equal(s["next_targets"][-1], 1 - s["masks"].amax(0))
    assert torch.equal(train[SampleKey(0, 48, 123)]["image"], s["image"])  # same key, same sample
    flips = {train[SampleKey(0, None, seed)]["flipped"] for seed in range(20)}
    assert flips == {True, False}
    # a missing image is reported, not fatal
    (synth / "images" / "train" / ds[1].file_name).rename(tmp_path / "moved.jpg")
    try:
        bad = train[SampleKey(1, None, 0)]
        assert "error" in bad and bad["image_id"] == ds[1].image_id
        batch = collate_samples([train[SampleKey(0, None, 0)], bad])
        assert len(batch["targets"]) == 1 and batch["skipped"][0]["image_id"] == ds[1].image_id
        assert batch["images"].shape[0] == 1
    finally:
        (tmp_path / "moved.jpg").rename(synth / "images" / "train" / ds[1].file_name)
