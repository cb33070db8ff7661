"""A synthetic Salient Object Ranking dataset whose attention order follows a rule a model can learn.

No SOR data can be shipped with salrank (ASSR/IRSR images are COCO photos under their own terms), so
``salrank data synth OUT --n N`` writes a small dataset in the **PoseSOR COCO format** (real JPEGs + JSON,
``salrank data check`` passes it) on which training can be shown to work on a CPU.

**Scenes.** A low-saturation textured background (a grey level, a smooth colour gradient, stripes or
noise) with 2-5 objects painted back to front: textured shapes (disc, ellipse, rectangle, triangle,
star) and simple human figures (head, torso and limbs drawn from 17 COCO keypoints, with clothing
colours). Later objects occlude earlier ones; every object's mask is what remains visible.

**The attention rule** (:func:`attention_score`), computed on the visible masks::

    score = contrast x sqrt(visible area / image area) x (1 - 0.6 x distance of the centroid from the
            image centre / half-diagonal) x (1.5 for a human figure)

``contrast`` is the distance between the object's mean colour and the mean colour of the background
around it, in RGB scaled to [0, 1] (``|c_obj - c_bg| / (255 sqrt 3)``). Objects are ranked by
descending score: rank 1 (``category_id`` 1) is the most salient. A scene is redrawn when two scores are
within :data:`MIN_SCORE_RATIO` of each other, so the order is never a coin toss. The rule cannot be read
from any single cue: contrast varies about 10x between objects, size about 3x, so ranking by area alone
(a trivial baseline) is clearly worse than seeing colour, size and position together.

**Keypoints.** Figures face the camera, so the person's *left* joints are on the image's *right*
(COCO convention); ``v`` = 2 where the joint is on the visible part of the figure, 1 where another
object hides it, 0 outside the image. Other objects get 17 x (0, 0, 0).

**Determinism.** Image ``k`` of split ``s`` is drawn from ``numpy.random.default_rng([seed, s, k])``:
the same seed gives the same dataset (byte-identical JSON; JPEG bytes depend on the libjpeg build).

Layout written under ``OUT``::

    synth_train.json  synth_val.json  synth_test.json      # PoseSOR COCO-style annotations
    images/train/synth_train_000000.jpg ...                # the PoseSOR layout: images/<split>/<file_name>
"""

from __future__ import annotations

import argparse
import json
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

__all__ = [
    "MIN_SCORE_RATIO",
    "SPLITS",
    "SynthConfig",
    "SynthObject",
    "SynthScene",
    "attention_score",
    "draw_scene",
    "generate_synth_dataset",
    "scene_to_annotations",
]

SPLITS = ("train", "val", "test")
MIN_SCORE_RATIO = 1.15
"""Consecutive attention scores of a scene differ by at least this factor."""
PERSON_BONUS = 1.5
CENTRE_WEIGHT = 0.6
SHAPES = ("disc", "ellipse", "rectangle", "triangle", "star")

# Figure keypoints in a frame where the figure is 1 unit tall, origin at its centre; +x = image right,
# which is the person's LEFT (the figure faces the camera).
_FIGURE = np.array(
    [
        (0.00, -0.42),   # nose
        (0.03, -0.45),   # left_eye
        (-0.03, -0.45),  # right_eye
        (0.06, -0.43),   # left_ear
        (-0.06, -0.43),  # right_ear
        (0.13, -0.30),   # left_shoulder
        (-0.13, -0.30),  # right_shoulder
        (0.20, -0.12),   # left_elbow
        (-0.20, -0.12),  # right_elbow
        (0.23, 0.05),    # left_wrist
        (-0.23, 0.05),   # right_wrist
        (0.08, 0.04),    # left_hip
        (-0.08, 0.04),   # right_hip
        (0.10, 0.26),    # left_knee
        (-0.10, 0.26),   # right_knee
        (0.11, 0.48),    # left_ankle
        (-0.11, 0.48),   # right_ankle
    ],
    dtype=np.float64,
)  # fmt: skip
_LIMBS = ((5, 7), (7, 9), (6, 8), (8, 10), (11, 13), (13, 15), (12, 14), (14, 16), (5, 6), (11, 12))


@dataclass
class SynthConfig:
    """What :func:`generate_synth_dataset` draws."""

    n: int = 200
    """Total number of images, split by :attr:`fractions`."""
    width: int = 160
    height: int = 120
    min_objects: int = 2
    max_objects: int = 5
    person_probability: float = 0.3
    """Chance that an object is a human figure."""
    fractions: tuple[float, float, float] = (0.7, 0.15, 0.15)
    """Shares of train / val / test."""
    seed: int = 0
    jpeg_quality: int = 95


@dataclass
class SynthObject:
    """One painted object with its visible mask."""

    kind: str
    colour: np.ndarray
    mask: np.ndarray
    """``bool`` ``(H, W)`` visible part."""
    full_mask: np.ndarray
    keypoints: np.ndarray | None = None
    """``(17, 3)`` pixel x, y and visibility flag for figures."""
    score: float = 0.0


@dataclass
class SynthScene:
    image: np.ndarray
    """RGB ``uint8`` ``(H, W, 3)``."""
    background_colour: np.ndarray
    objects: list[SynthObject] = field(default_factory=list)
    """Objects in attention order (most salient first)."""


# ---------------------------------------------------------------------------------------------- drawing
def _hsv_to_rgb(h: float, s: float, v: float) -> np.ndarray:
    import colorsys

    return np.array(colorsys.hsv_to_rgb(h, s, v), dtype=np.float64) * 255.0


def _background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    grey = rng.uniform(80, 175)
    tint = _hsv_to_rgb(rng.uniform(), rng.uniform(0.0, 0.15), 1.0) / 255.0
    base = grey * tint / tint.mean()
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    angle = rng.uniform(0, 2 * math.pi)
    ramp = (np.cos(angle) * xx / w + np.sin(angle) * yy / h) * rng.uniform(-25, 25)
    kind = rng.integers(3)
    if kind == 0:  # stripes
        period = rng.uniform(6, 20)
        texture = 8 * np.sin(2 * math.pi * (xx * np.cos(angle + 1) + yy * np.sin(angle + 1)) / period)
    elif kind == 1:  # blotchy noise
        import cv2

        noise = rng.normal(0, 1, (max(2, h // 8), max(2, w // 8)))
        texture = 14 * cv2.resize(noise, (w, h), interpolation=cv2.INTER_CUBIC)
    else:  # fine grain
        texture = rng.normal(0, 5, (h, w))
    img = base[None, None, :] + (ramp + texture)[:, :, None]
    return np.clip(img, 0, 255)


def _texture(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A multiplicative texture around 1 (stripes, checks or grain)."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    kind = rng.integers(3)
    period = rng.uniform(4, 12)
    if kind == 0:
        t = np.sin(2 * math.pi * (xx + yy * rng.uniform(-1, 1)) / period)
    elif kind == 1:
        t = np.sign(np.sin(2 * math.pi * xx / period) * np.sin(2 * math.pi * yy / period))
    else:
        t = rng.normal(0, 0.7, (h, w))
    return 1.0 + rng.uniform(0.05, 0.15) * t


def _shape_mask(rng: np.random.Generator, kind: str, h: int, w: int) -> np.ndarray:
    import cv2

    mask = np.zeros((h, w), np.uint8)
    side = min(h, w)
    r = rng.uniform(0.08, 0.24) * side
    cx, cy = rng.uniform(0.1 * w, 0.9 * w), rng.uniform(0.1 * h, 0.9 * h)
    if kind == "disc":
        cv2.circle(mask, (int(cx), int(cy)), int(r), 1, -1)
    elif kind == "ellipse":
        cv2.ellipse(mask, (int(cx), int(cy)), (int(r), int(r * rng.uniform(0.45, 0.8))), float(rng.uniform(0, 180)), 0, 360, 1, -1)
    elif kind == "rectangle":
        box = ((cx, cy), (2 * r * rng.uniform(0.6, 1.2), 2 * r * rng.uniform(0.6, 1.2)), float(rng.uniform(0, 90)))
        cv2.fillPoly(mask, [cv2.boxPoints(box).astype(np.int32)], 1)
    elif kind == "triangle":
        a0 = rng.uniform(0, 2 * math.pi)
        pts = [(cx + r * math.cos(a0 + k * 2 * math.pi / 3), cy + r * math.sin(a0 + k * 2 * math.pi / 3)) for k in range(3)]
        cv2.fillPoly(mask, [np.array(pts, np.int32)], 1)
    else:  # star
        a0 = rng.uniform(0, 2 * math.pi)
        pts = [
            (cx + (r if k % 2 == 0 else 0.5 * r) * math.cos(a0 + k * math.pi / 5), cy + (r if k % 2 == 0 else 0.5 * r) * math.sin(a0 + k * math.pi / 5))
            for k in range(10)
        ]
        cv2.fillPoly(mask, [np.array(pts, np.int32)], 1)
    return mask.astype(bool)


def _figure(rng: np.random.Generator, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Mask and ``(17, 2)`` pixel keypoints of a human figure."""
    import cv2

    size = rng.uniform(0.45, 0.85) * h
    cx, cy = rng.uniform(0.15 * w, 0.85 * w), rng.uniform(0.35 * h, 0.65 * h)
    pts = _FIGURE.copy()
    pts[7:11] += rng.uniform(-0.07, 0.07, (4, 2))  # arms
    pts[13:17, 0] += rng.uniform(-0.04, 0.04, 4)  # legs
    pts = pts * size + np.array([cx, cy])
    mask = np.zeros((h, w), np.uint8)
    thick = max(2, int(round(0.055 * size)))
    for a, b in _LIMBS:
        cv2.line(mask, tuple(int(v) for v in pts[a]), tuple(int(v) for v in pts[b]), 1, thick)
    torso = pts[[5, 6, 12, 11]].astype(np.int32)
    cv2.fillPoly(mask, [torso], 1)
    head = (pts[1] + pts[2]) / 2
    cv2.circle(mask, (int(head[0]), int(head[1])), max(2, int(0.08 * size)), 1, -1)
    return mask.astype(bool), pts


def _local_background(background: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Mean background colour in a ring around ``mask``."""
    import cv2

    k = max(3, int(0.08 * min(mask.shape)) | 1)
    ring = cv2.dilate(mask.astype(np.uint8), np.ones((k, k), np.uint8)).astype(bool) & ~mask
    if not ring.any():
        ring = ~mask
    return background[ring].mean(axis=0)


def attention_score(contrast: float, visible_area_fraction: float, centroid_distance: float, is_person: bool) -> float:
    """The rule that orders attention in the synthetic scenes (see the module docstring).

    Args:
        contrast: colour distance to the surrounding background, in [0, 1].
        visible_area_fraction: visible pixels / image pixels.
        centroid_distance: distance of the visible centroid from the image centre / half-diagonal, in [0, 1].
        is_person: human figures weigh :data:`PERSON_BONUS` more.
    """
    score = contrast * math.sqrt(visible_area_fraction) * (1.0 - CENTRE_WEIGHT * centroid_distance)
    return score * (PERSON_BONUS if is_person else 1.0)


def _mask_from_polygons(polygons: list[list[int]], h: int, w: int) -> np.ndarray:
    from salrank.utils.masks import polygons_to_mask

    return polygons_to_mask(polygons, h, w).astype(bool)


def _polygons(mask: np.ndarray) -> list[list[int]]:
    import cv2

    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    return [c.reshape(-1).astype(int).tolist() for c in contours if len(c) >= 3]


def draw_scene(rng: np.random.Generator, cfg: SynthConfig, max_tries: int = 50) -> SynthScene:
    """One scene: background, objects painted back to front, visible masks, attention order.

    The visible masks are re-rasterised from their polygons (what the annotation file will hold), so the
    attention scores are computed on exactly the GT masks. Scenes with holes in a mask (which polygons
    cannot express), tiny visible parts or near-equal scores are redrawn.
    """
    h, w = cfg.height, cfg.width
    for _ in range(max_tries):
        background = _background(rng, h, w)
        image = background.copy()
        n = int(rng.integers(cfg.min_objects, cfg.max_objects + 1))
        drawn: list[tuple[str, np.ndarray, np.ndarray, np.ndarray | None]] = []
        for _k in range(n):
            if rng.uniform() < cfg.person_probability:
                kind = "person"
                mask, kps = _figure(rng, h, w)
            else:
                kind = str(rng.choice(SHAPES))
                mask, kps = _shape_mask(rng, kind, h, w), None
            colour = _hsv_to_rgb(rng.uniform(), rng.uniform(0.0, 1.0), rng.uniform(0.25, 1.0))
            tex = _texture(rng, h, w)
            image[mask] = np.clip(colour[None, :] * tex[mask][:, None], 0, 255)
            drawn.append((kind, colour, mask, kps))
        objects = []
        occluder = np.zeros((h, w), bool)
        ok = True
        for kind, colour, mask, kps in reversed(drawn):  # front to back
            visible = mask & ~occluder
            occluder |= mask
            polys = _polygons(visible)
            gt = _mask_from_polygons(polys, h, w) if polys else np.zeros((h, w), bool)
            if gt.sum() < 0.01 * h * w or (gt ^ visible).sum() > 0.03 * max(1, visible.sum()) + 2:
                ok = False
                break
            keypoints = None
            if kps is not None:
                keypoints = np.zeros((17, 3), np.float64)
                for j, (x, y) in enumerate(kps):
                    xi, yi = int(round(x)), int(round(y))
                    if 0 <= xi < w and 0 <= yi < h:
                        near = visible[max(0, yi - 1) : yi + 2, max(0, xi - 1) : xi + 2].any()
                        keypoints[j] = (xi, yi, 2 if near else 1)
            objects.append(SynthObject(kind=kind, colour=colour, mask=gt, full_mask=mask, keypoints=keypoints))
        if not ok:
            continue
        diag = math.hypot(w / 2, h / 2)
        for obj in objects:
            ys, xs = np.nonzero(obj.mask)
            dist = math.hypot(xs.mean() + 0.5 - w / 2, ys.mean() + 0.5 - h / 2) / diag
            mean_colour = image[obj.mask].mean(axis=0)
            contrast = float(np.linalg.norm(mean_colour - _local_background(background, obj.full_mask | obj.mask)) / (255 * math.sqrt(3)))
            obj.score = attention_score(contrast, obj.mask.sum() / (h * w), min(1.0, dist), obj.kind == "person")
        objects.sort(key=lambda o: -o.score)
        scores = [o.score for o in objects]
        if any(b <= 0 or a / b < MIN_SCORE_RATIO for a, b in zip(scores, scores[1:])):
            continue
        return SynthScene(image=np.clip(image, 0, 255).round().astype(np.uint8), background_colour=background.mean(axis=(0, 1)), objects=objects)
    raise RuntimeError(f"could not draw a valid scene in {max_tries} tries (image {w}x{h} too small?)")


def scene_to_annotations(scene: SynthScene, image_id: int, first_ann_id: int) -> list[dict[str, Any]]:
    """PoseSOR annotations of a scene, in visiting order (``category_id`` 1 = most salient)."""
    anns = []
    for k, obj in enumerate(scene.objects):
        ys, xs = np.nonzero(obj.mask)
        kps = obj.keypoints if obj.keypoints is not None else np.zeros((17, 3))
        anns.append(
            {
                "image_id": image_id,
                "id": first_ann_id + k,
                "category_id": k + 1,
                "visiting_order": k + 1,
                "class_id": 1 if obj.kind == "person" else 2,
                "segmentation": _polygons(obj.mask),
                "bbox": [float(xs.min()), float(ys.min()), float(xs.max() + 1 - xs.min()), float(ys.max() + 1 - ys.min())],
                "keypoints": [int(v) for v in kps.reshape(-1)],
                "num_keypoints": int((kps[:, 2] > 0).sum()),
                "iscrowd": 0,
                "area": int(obj.mask.sum()),
                "shape": obj.kind,
                "attention_score": round(float(obj.score), 6),
            }
        )
    return anns


def split_sizes(n: int, fractions: Sequence[float]) -> list[int]:
    """Images per split (train gets the rounding remainder; val/test get at least one when n >= 3)."""
    total = sum(fractions)
    sizes = [int(math.floor(n * f / total)) for f in fractions]
    if n >= 3:
        sizes = [max(1, s) for s in sizes]
    sizes[0] = n - sum(sizes[1:])
    return sizes


def generate_synth_dataset(out: str | Path, cfg: SynthConfig | None = None, *, overwrite: bool = False, progress: bool = False) -> dict[str, Path]:
    """Write the synthetic dataset under ``out`` (see the module docstring); returns ``{split: json path}``.

    Raises:
        InputError: ``out`` already holds a synthetic dataset and ``overwrite`` is false.
    """
    import cv2

    from salrank.errors import InputError
    from salrank.utils.io import atomic_write, write_bytes

    cfg = cfg or SynthConfig()
    out = Path(out)
    targets = {s: out / f"synth_{s}.json" for s in SPLITS}
    existing = [p for p in targets.values() if p.exists()]
    if existing and not overwrite:
        raise InputError("already holds a synthetic dataset; use --overwrite to replace it", existing[0])
    if cfg.width < 48 or cfg.height < 48:
        raise InputError(f"images must be at least 48x48, got {cfg.width}x{cfg.height}")
    sizes = split_sizes(cfg.n, cfg.fractions)
    iterator: Any = range(sum(sizes))
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=sum(sizes), desc="synth", unit="img")
    for split_index, (split, count) in enumerate(zip(SPLITS, sizes)):
        images, annotations = [], []
        for k in range(count):
            rng = np.random.default_rng([cfg.seed, split_index, k])
            scene = draw_scene(rng, cfg)
            name = f"synth_{split}_{k:06d}.jpg"
            ok, buf = cv2.imencode(".jpg", cv2.cvtColor(scene.image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, cfg.jpeg_quality])
            if not ok:
                raise RuntimeError("JPEG encoding failed")
            write_bytes(out / "images" / split / name, buf.tobytes())
            image_id = k + 1
            images.append({"id": image_id, "file_name": name, "height": cfg.height, "width": cfg.width})
            annotations.extend(scene_to_annotations(scene, image_id, len(annotations) + 1))
            if bar is not None:
                bar.update(1)
        data = {
            "info": {
                "description": "salrank synthetic SOR dataset (salrank.data.synth); category_id = visiting order, 1 = first",
                "rule": "score = contrast * sqrt(area fraction) * (1 - 0.6 * centre distance) * (1.5 if person)",
                "seed": cfg.seed,
                "split": split,
            },
            "images": images,
            "annotations": annotations,
            "categories": [{"id": 1, "name": "person"}, {"id": 2, "name": "shape"}],
        }
        with atomic_write(targets[split], "w") as fh:
            json.dump(data, fh, separators=(",", ":"))
    del iterator
    if bar is not None:
        bar.close()
    return targets


# ---------------------------------------------------------------------------------------------- CLI
def add_cli_arguments(p: argparse.ArgumentParser) -> None:
    """Arguments of ``salrank data synth``."""
    p.add_argument("out", help="output folder (synth_{train,val,test}.json and images/<split>/)")
    p.add_argument("--n", type=int, default=200, help="number of images over all splits (default: 200)")
    p.add_argument("--size", default="160x120", metavar="WxH", help="image size (default: 160x120)")
    p.add_argument("--seed", type=int, default=0, help="random seed (the same seed gives the same dataset)")
    p.add_argument("--objects", default="2-5", metavar="MIN-MAX", help="objects per image (default: 2-5)")
    p.add_argument("--person-probability", type=float, default=0.3, help="chance that an object is a human figure")
    p.add_argument("--overwrite", action="store_true", help="replace an existing synthetic dataset in OUT")


def run_cli(args: argparse.Namespace) -> int:
    """``salrank data synth``."""
    from salrank.errors import InputError

    try:
        w, h = (int(v) for v in str(args.size).lower().split("x"))
        lo, hi = (int(v) for v in str(args.objects).split("-"))
    except ValueError:
        raise InputError(f"--size is WxH and --objects MIN-MAX, got {args.size!r} and {args.objects!r}") from None
    if not 1 <= lo <= hi <= 12:
        raise InputError(f"--objects must satisfy 1 <= MIN <= MAX <= 12, got {args.objects}")
    if args.n < 1:
        raise InputError("--n must be positive")
    cfg = SynthConfig(n=args.n, width=w, height=h, min_objects=lo, max_objects=hi, person_probability=args.person_probability, seed=args.seed)
    import sys

    paths = generate_synth_dataset(args.out, cfg, overwrite=args.overwrite, progress=sys.stderr.isatty())
    sizes = split_sizes(cfg.n, cfg.fractions)
    for (split, path), count in zip(paths.items(), sizes):
        print(f"{split:5s} {count:6d} images  {path}")
    return 0
