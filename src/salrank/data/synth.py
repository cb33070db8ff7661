"""A synthetic Salient Object Ranking dataset whose attention order must be *seen* to be learned.

No SOR data can be shipped with salrank (ASSR/IRSR images are COCO photos under their own terms), so
``salrank data synth OUT --n N`` writes a small dataset in the **PoseSOR COCO format** (real JPEGs + JSON,
``salrank data check`` passes it) on which training can be shown to work on a CPU.

**Scenes.** A low-saturation textured background (a grey level, a smooth colour gradient, stripes or
noise) with 2-5 objects painted back to front: textured shapes (disc, ellipse, rectangle, triangle,
star) and simple human figures (head, torso and limbs drawn from 17 COCO keypoints). Later objects
occlude earlier ones; every object's mask is what remains visible.

**The attention rule: a fixed hue ladder.** Every object is painted in one of the six saturated hues of
:data:`HUE_LADDER`, in attention order::

    red (0 deg) > yellow (60) > green (120) > cyan (180) > blue (240) > magenta (300)

The objects of a scene get distinct ladder hues, and the object whose hue is highest on the ladder is
rank 1 (``category_id`` 1), the next one rank 2, and so on (:func:`ladder_level`,
:func:`attention_score`). The exact colour varies around the ladder hue (hue +-6 deg, saturation
0.65-1, brightness 0.6-1, a multiplicative texture), so the model has to read the hue, not a fixed
RGB value. Everything else is drawn **independently of the rank**: the kind of object (a person is
not favoured, so the figures' larger size cannot leak the order), its size, its position, and the
painting order (hence which object occludes which). Ordering a scene's objects by size ("largest
first") or by position ("most central first") is therefore as good as a random order on average: a
model that beats those trivial orders of its own masks has learned to look at the objects' colour.

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
    "HUE_LADDER",
    "SPLITS",
    "SynthConfig",
    "SynthObject",
    "SynthScene",
    "attention_score",
    "draw_scene",
    "generate_synth_dataset",
    "ladder_level",
    "scene_to_annotations",
]

SPLITS = ("train", "val", "test")
HUE_LADDER = (("red", 0.0), ("yellow", 60.0), ("green", 120.0), ("cyan", 180.0), ("blue", 240.0), ("magenta", 300.0))
"""``(name, hue in degrees)`` in attention order: an object painted in an earlier hue is seen first."""
HUE_JITTER = 6.0
"""Degrees an object's hue may differ from its ladder hue (the ladder steps are 60 degrees apart)."""
MIN_VISIBLE_FRACTION = 0.015
"""Scenes where an object shows less than this share of the image are redrawn."""
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
    """At most ``len(HUE_LADDER)`` (6): the objects of a scene have distinct ladder hues."""
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
    level: int
    """Position of the object's hue on :data:`HUE_LADDER` (0 = red = seen first)."""
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
    thick = max(2, round(0.055 * size))
    for a, b in _LIMBS:
        cv2.line(mask, tuple(int(v) for v in pts[a]), tuple(int(v) for v in pts[b]), 1, thick)
    torso = pts[[5, 6, 12, 11]].astype(np.int32)
    cv2.fillPoly(mask, [torso], 1)
    head = (pts[1] + pts[2]) / 2
    cv2.circle(mask, (int(head[0]), int(head[1])), max(2, int(0.08 * size)), 1, -1)
    return mask.astype(bool), pts


def ladder_level(hue_degrees: float) -> int:
    """The :data:`HUE_LADDER` position (0 = first seen) of the ladder hue nearest to ``hue_degrees``."""
    hue = float(hue_degrees) % 360.0
    dist = [min(abs(hue - h), 360.0 - abs(hue - h)) for _, h in HUE_LADDER]
    return int(np.argmin(dist))


def attention_score(hue_degrees: float) -> float:
    """The rule that orders attention in the synthetic scenes (see the module docstring).

    The score depends on the object's hue only: ``1 - level / len(HUE_LADDER)`` for the ladder level
    of the nearest ladder hue, so red scores 1.0 and magenta 1/6. Objects are visited by descending
    score; the objects of one scene have distinct levels, so there are no ties.
    """
    return 1.0 - ladder_level(hue_degrees) / len(HUE_LADDER)


def _mask_from_polygons(polygons: list[list[int]], h: int, w: int) -> np.ndarray:
    from salrank.utils.masks import polygons_to_mask

    return polygons_to_mask(polygons, h, w).astype(bool)


def _polygons(mask: np.ndarray) -> list[list[int]]:
    import cv2

    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    return [c.reshape(-1).astype(int).tolist() for c in contours if len(c) >= 3]


def _ladder_colour(rng: np.random.Generator, level: int) -> np.ndarray:
    """A saturated RGB colour (0-255) around the ladder hue of ``level``."""
    hue = (HUE_LADDER[level][1] + rng.uniform(-HUE_JITTER, HUE_JITTER)) % 360.0
    return _hsv_to_rgb(hue / 360.0, rng.uniform(0.65, 1.0), rng.uniform(0.6, 1.0))


def draw_scene(rng: np.random.Generator, cfg: SynthConfig, max_tries: int = 50) -> SynthScene:
    """One scene: background, objects painted back to front, visible masks, attention order.

    Each object's ladder level (its hue) is drawn without replacement from :data:`HUE_LADDER`,
    independently of its kind, size, position and painting order. The visible masks are
    re-rasterised from their polygons (what the annotation file will hold). Scenes with holes in a
    mask (which polygons cannot express) or an object showing less than
    :data:`MIN_VISIBLE_FRACTION` of the image are redrawn.
    """
    h, w = cfg.height, cfg.width
    if not 1 <= cfg.min_objects <= cfg.max_objects <= len(HUE_LADDER):
        raise ValueError(f"objects per scene must satisfy 1 <= min <= max <= {len(HUE_LADDER)}, got {cfg.min_objects}-{cfg.max_objects}")
    for _ in range(max_tries):
        background = _background(rng, h, w)
        image = background.copy()
        n = int(rng.integers(cfg.min_objects, cfg.max_objects + 1))
        levels = rng.permutation(len(HUE_LADDER))[:n]
        drawn: list[tuple[str, int, np.ndarray, np.ndarray, np.ndarray | None]] = []
        for level in levels:
            if rng.uniform() < cfg.person_probability:
                kind = "person"
                mask, kps = _figure(rng, h, w)
            else:
                kind = str(rng.choice(SHAPES))
                mask, kps = _shape_mask(rng, kind, h, w), None
            colour = _ladder_colour(rng, int(level))
            tex = _texture(rng, h, w)
            image[mask] = np.clip(colour[None, :] * tex[mask][:, None], 0, 255)
            drawn.append((kind, int(level), colour, mask, kps))
        objects = []
        occluder = np.zeros((h, w), bool)
        ok = True
        for kind, level, colour, mask, kps in reversed(drawn):  # front to back
            visible = mask & ~occluder
            occluder |= mask
            polys = _polygons(visible)
            gt = _mask_from_polygons(polys, h, w) if polys else np.zeros((h, w), bool)
            if gt.sum() < MIN_VISIBLE_FRACTION * h * w or (gt ^ visible).sum() > 0.03 * max(1, visible.sum()) + 2:
                ok = False
                break
            keypoints = None
            if kps is not None:
                keypoints = np.zeros((17, 3), np.float64)
                for j, (x, y) in enumerate(kps):
                    xi, yi = round(x), round(y)
                    if 0 <= xi < w and 0 <= yi < h:
                        near = visible[max(0, yi - 1) : yi + 2, max(0, xi - 1) : xi + 2].any()
                        keypoints[j] = (xi, yi, 2 if near else 1)
            score = attention_score(HUE_LADDER[level][1])
            objects.append(SynthObject(kind=kind, colour=colour, level=level, mask=gt, full_mask=mask, keypoints=keypoints, score=score))
        if not ok:
            continue
        objects.sort(key=lambda o: o.level)
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
                "hue": HUE_LADDER[obj.level][0],
                "attention_score": round(float(obj.score), 6),
            }
        )
    return anns


def split_sizes(n: int, fractions: Sequence[float]) -> list[int]:
    """Images per split (train gets the rounding remainder; val/test get at least one when n >= 3)."""
    total = sum(fractions)
    sizes = [math.floor(n * f / total) for f in fractions]
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
                "rule": "hue ladder: " + " > ".join(name for name, _ in HUE_LADDER) + "; size, position, kind and occlusion independent of the rank",
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
    """Arguments of ``salrank data synth`` (its ``--help`` states the attention rule)."""
    ladder = " > ".join(f"{name} ({int(hue)})" for name, hue in HUE_LADDER)
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.description = (
        "Write a synthetic SOR dataset in the PoseSOR COCO format (JPEGs + synth_{train,val,test}.json):\n"
        "textured shapes and human figures (17 keypoints) on textured low-saturation backgrounds, with\n"
        "occlusions.\n\n"
        "Attention rule: every object is painted in one of six saturated hues, a fixed ladder\n"
        f"    {ladder}\n"
        "(hue in degrees, +-6 deg, varying saturation, brightness and texture); the objects of an image\n"
        "have distinct ladder hues and are ranked in ladder order (rank 1 = the hue highest on the\n"
        "ladder). Size, position, kind (person or shape) and occlusion are drawn independently of the\n"
        "rank, so 'largest first' or 'most central first' orders are no better than chance: a model has\n"
        "to see the colours to learn the order."
    )
    p.add_argument("out", help="output folder (synth_{train,val,test}.json and images/<split>/)")
    p.add_argument("--n", type=int, default=200, help="number of images over all splits (default: 200)")
    p.add_argument("--size", default="160x120", metavar="WxH", help="image size (default: 160x120)")
    p.add_argument("--seed", type=int, default=0, help="random seed (the same seed gives the same dataset)")
    p.add_argument("--objects", default="2-5", metavar="MIN-MAX", help=f"objects per image, at most {len(HUE_LADDER)} (default: 2-5)")
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
    if not 1 <= lo <= hi <= len(HUE_LADDER):
        raise InputError(f"--objects must satisfy 1 <= MIN <= MAX <= {len(HUE_LADDER)} (one ladder hue per object), got {args.objects}")
    if args.n < 1:
        raise InputError("--n must be positive")
    cfg = SynthConfig(n=args.n, width=w, height=h, min_objects=lo, max_objects=hi, person_probability=args.person_probability, seed=args.seed)
    import sys

    paths = generate_synth_dataset(args.out, cfg, overwrite=args.overwrite, progress=sys.stderr.isatty())
    sizes = split_sizes(cfg.n, cfg.fractions)
    for (split, path), count in zip(paths.items(), sizes):
        print(f"{split:5s} {count:6d} images  {path}")
    return 0
