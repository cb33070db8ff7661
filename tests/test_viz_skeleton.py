"""Skeleton drawing: the official PoseSOR demo's ``_composition.png`` (19 COCO limbs, jet colours, width 2)."""

from __future__ import annotations

import numpy as np
import pytest

from salrank.structures import RankedInstances
from salrank.viz import rank_colormap
from salrank.viz.palette import rank_palette
from salrank.viz.render import render
from salrank.viz.skeleton import (
    COCO_SKELETON,
    LIMB_COLORS,
    draw_skeletons,
    jet_colors,
    skeleton_composite,
    skeleton_composition,
    skeleton_overlay,
)

# (plt.get_cmap("jet", 19)(np.linspace(0, 1, 19)) * 255).astype(np.uint8)[:, :3], matplotlib 3.11.2
MATPLOTLIB_JET_19 = [
    [0, 0, 127], [0, 0, 191], [0, 0, 255], [0, 42, 255], [0, 99, 255], [0, 155, 255], [0, 212, 255], [31, 255, 214],
    [77, 255, 169], [123, 255, 123], [169, 255, 77], [214, 255, 31], [255, 229, 0], [255, 177, 0], [255, 124, 0],
    [255, 72, 0], [255, 19, 0], [191, 0, 0], [127, 0, 0],
]  # fmt: skip


def test_limbs_and_colours_are_the_official_ones():
    assert len(COCO_SKELETON) == 19
    # the COCO person skeleton (1-based in COCO's annotation files)
    assert [(a + 1, b + 1) for a, b in COCO_SKELETON][:5] == [(16, 14), (14, 12), (17, 15), (15, 13), (12, 13)]
    assert LIMB_COLORS.tolist() == MATPLOTLIB_JET_19
    assert jet_colors(2).tolist() == [[0, 0, 127], [127, 0, 0]]


def person(x0: float, y0: float, scale: float = 1.0, visible: float = 0.9) -> np.ndarray:
    """A stick figure: head, shoulders, elbows, wrists, hips, knees, ankles (COCO order), pixels."""
    pts = [(0, 0), (-1, -1), (1, -1), (-2, 0), (2, 0), (-3, 4), (3, 4), (-5, 9), (5, 9), (-6, 14), (6, 14),
           (-2, 15), (2, 15), (-2, 22), (2, 22), (-2, 29), (2, 29)]  # fmt: skip
    kp = np.array([[x0 + scale * dx, y0 + scale * dy, visible] for dx, dy in pts], np.float32)
    return kp


def result_with(keypoints: np.ndarray, masks: np.ndarray) -> RankedInstances:
    return RankedInstances.from_masks(masks, image_name="x", keypoints=keypoints, model="posesor")


def test_draw_only_limbs_with_both_joints_visible():
    canvas = np.zeros((80, 80, 3), np.uint8)
    kp = person(40, 10, 2.0)[None]
    kp[0, 15, 2] = 0.4  # left ankle hidden: limb (15, 13) must not be drawn
    out = draw_skeletons(canvas, kp)
    colours = {tuple(c) for c in out.reshape(-1, 3).tolist()} - {(0, 0, 0)}
    hidden = COCO_SKELETON.index((15, 13))
    assert tuple(LIMB_COLORS[hidden]) not in colours
    assert tuple(LIMB_COLORS[COCO_SKELETON.index((16, 14))]) in colours
    assert canvas.sum() == 0  # input untouched
    # threshold is inclusive (>= 0.5)
    kp[0, 15, 2] = 0.5
    assert tuple(LIMB_COLORS[hidden]) in {tuple(c) for c in draw_skeletons(canvas, kp).reshape(-1, 3).tolist()}


def test_line_width_two():
    canvas = np.zeros((20, 40, 3), np.uint8)
    kp = np.zeros((1, 17, 3), np.float32)
    kp[0, 15] = (5, 10, 1)  # limb (15, 13): a horizontal line
    kp[0, 13] = (35, 10, 1)
    out = draw_skeletons(canvas, kp)
    column = out[:, 20].any(axis=1)
    assert column.sum() == 2  # two pixels thick


def test_composition_is_the_colour_map_with_skeletons_on_top():
    masks = np.zeros((2, 60, 60), bool)
    masks[0, 5:55, 5:30] = True
    masks[1, 5:55, 30:55] = True
    kp = np.stack([person(17, 8, 1.5), person(42, 8, 1.5)])
    result = result_with(kp, masks)
    comp = skeleton_composition(result)
    base = rank_colormap(result, steps=20)
    assert skeleton_composite is skeleton_composition
    # off the skeletons, the composition is the colour map with the official 20-step palette
    drawn = np.any(comp != base, axis=2)
    assert 0 < drawn.sum() < 0.3 * drawn.size
    assert np.array_equal(comp[~drawn], base[~drawn])
    assert tuple(base[50, 10]) == tuple(rank_palette(20)[0])
    # rank 1's skeleton is drawn last: where the two overlap, rank 1 wins
    overlap_kp = np.stack([person(30, 8, 1.5), person(30, 8, 1.5)])
    overlap_kp[1, :, 0] += 0.0
    assert np.array_equal(skeleton_composition(result_with(overlap_kp, masks)), draw_skeletons(base, overlap_kp[:1]))


def test_composition_of_an_empty_result_and_errors():
    empty = RankedInstances.from_masks(np.zeros((0, 10, 12), bool), height=10, width=12, keypoints=np.zeros((0, 17, 3)))
    assert skeleton_composition(empty).shape == (10, 12, 3) and skeleton_composition(empty).sum() == 0
    no_pose = RankedInstances.from_masks(np.ones((1, 10, 12), bool))
    with pytest.raises(ValueError, match="no keypoints"):
        skeleton_composition(no_pose)
    with pytest.raises(ValueError, match="RGB"):
        draw_skeletons(np.zeros((5, 5)), np.zeros((0, 17, 3)))


def test_skeleton_overlay_and_render():
    masks = np.zeros((1, 60, 60), bool)
    masks[0, 5:55, 10:50] = True
    result = result_with(person(30, 8, 1.5)[None], masks)
    photo = np.full((60, 60, 3), 128, np.uint8)
    out = skeleton_overlay(photo, result)
    assert out.shape == (60, 60, 3) and any(tuple(c) in {tuple(x) for x in LIMB_COLORS} for c in out.reshape(-1, 3).tolist())
    assert np.array_equal(render(result, kind="skeleton"), skeleton_composition(result))
