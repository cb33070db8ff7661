"""Predictions as a COCO results JSON: one entry per predicted object.

::

    [{"image_id": 192,                 # the GT's integer COCO id, or the image name when there is none
      "category_id": 1,
      "segmentation": {"size": [H, W], "counts": "..."},   # RLE, str counts
      "rank": 1,                       # 1 = most salient
      "score": 0.93,                   # the rank score (RankedInstances.saliency)
      "objectness": 0.88,              # RankedInstances.scores
      "bbox": [x, y, w, h],
      "keypoints": [x, y, v] * 17}]    # pixels, when the model predicts pose

Reading sorts each image's entries by ``rank`` (entries without ``rank``, and ties, by descending
``score``; the sort is stable). ``saliency`` is ``score`` when every entry has one, and then
``extras["explicit_rank_scores"]`` is set (the ``irsr`` protocol ranks by explicit scores; otherwise it
uses the official ``linspace(1, 0.5, m)`` over the predicted order). ``scores`` is ``objectness``, else
``score``, else 1. Polygons are accepted when the GT gives the image size. Images without any entry
are absent from the file, so an empty prediction does not survive a round trip (it reads as "no
prediction", which every protocol scores the same way).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from salrank.errors import InputError
from salrank.structures import NUM_KEYPOINTS, RankedInstances, SORDataset
from salrank.utils.io import read_json, write_json
from salrank.utils.masks import encode_rle, polygons_to_mask, rle_to_str_counts, validate_rle

logger = logging.getLogger(__name__)

_IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


def _name_of(image_id: Any) -> str:
    name = str(image_id)
    lower = name.lower()
    for ext in _IMAGE_EXTENSIONS:
        if lower.endswith(ext):
            return name[: -len(ext)]
    return name


def coco_entries(result: RankedInstances, image_id: int | str) -> list[dict[str, Any]]:
    """The COCO results entries of one image, in rank order."""
    entries = []
    for inst, rle in zip(result, result.to_rles()):
        x1, y1, x2, y2 = (float(v) for v in inst.box)
        entry: dict[str, Any] = {
            "image_id": image_id,
            "category_id": 1,
            "segmentation": rle,
            "rank": inst.rank,
            "score": float(inst.saliency),
            "objectness": float(inst.score),
            "bbox": [x1, y1, x2 - x1, y2 - y1],
        }
        if inst.keypoints is not None:
            entry["keypoints"] = [float(v) for v in inst.keypoints.reshape(-1)]
        entries.append(entry)
    return entries


def save_coco_results(
    preds: Mapping[str, RankedInstances] | Sequence[RankedInstances], path: str | Path, gt: SORDataset | None = None
) -> None:
    """Write predictions as a COCO results JSON (atomically).

    With ``gt``, ``image_id`` is the GT image's integer ``coco_id`` (images the GT does not know keep
    their name, with a warning); without it, the image name.
    """
    items = list(preds.items()) if isinstance(preds, Mapping) else [(r.image_name, r) for r in preds]
    out: list[dict[str, Any]] = []
    unknown: list[str] = []
    for name, result in items:
        image_id: int | str = name
        if gt is not None:
            if name in gt and gt[name].coco_id is not None:
                image_id = gt[name].coco_id  # type: ignore[assignment]
            elif name not in gt:
                unknown.append(name)
        out.extend(coco_entries(result, image_id))
    if unknown:
        logger.warning("%s: %d predicted images are not in the GT and keep their names as image_id: %s", path, len(unknown), ", ".join(unknown[:10]))
    write_json(path, out, indent=None)


def _sort_key(entry: dict[str, Any]) -> tuple[int, float, float]:
    rank = entry.get("rank")
    score = entry.get("score")
    s = float(score) if isinstance(score, int | float) else 0.0
    if isinstance(rank, int | float) and not isinstance(rank, bool) and math.isfinite(rank):
        return (0, float(rank), -s)
    return (1, 0.0, -s)


def read_coco_results(path: str | Path, gt: SORDataset | None = None, data: Any = None) -> dict[str, RankedInstances]:
    """Read a COCO results JSON into ``{image_name: RankedInstances}``.

    Integer ``image_id`` values are mapped to names through the GT's ``coco_id``; without a GT (or for
    ids it does not have) that is an :class:`InputError`.
    """
    p = Path(path)
    if data is None:
        data = read_json(p)
    if not isinstance(data, list):
        raise InputError("not a COCO results file: expected a list of {image_id, segmentation, score, ...}", p)
    by_coco: dict[Any, str] = {}
    if gt is not None:
        by_coco = {img.coco_id: img.image_id for img in gt.images if img.coco_id is not None}
    groups: dict[str, list[dict[str, Any]]] = {}
    unmapped: set[Any] = set()
    for k, entry in enumerate(data):
        if not isinstance(entry, dict) or "image_id" not in entry:
            raise InputError("entry without an 'image_id'", p, None, f"entry {k}")
        image_id = entry["image_id"]
        if isinstance(image_id, bool) or not isinstance(image_id, int | str):
            raise InputError(f"image_id must be an integer or a name, got {image_id!r}", p, None, f"entry {k}")
        if isinstance(image_id, int):
            if image_id not in by_coco:
                unmapped.add(image_id)
                continue
            name = by_coco[image_id]
        else:
            name = _name_of(image_id)
        groups.setdefault(name, []).append(entry)
    if unmapped:
        shown = ", ".join(str(i) for i in sorted(unmapped)[:10])
        if gt is None:
            raise InputError(
                f"image_id values are integers ({shown}, ...); pass the ground truth (--gt) to map them to image names",
                p,
            )
        raise InputError(f"{len(unmapped)} integer image_id values are not ids of the ground truth ({shown})", p)

    out: dict[str, RankedInstances] = {}
    for name, entries in groups.items():
        ranks = [e["rank"] for e in entries if "rank" in e]
        unusable = [r for r in ranks if isinstance(r, bool) or not isinstance(r, int | float) or not math.isfinite(r)]
        if unusable:
            logger.warning("%s: image %s: rank values %s are not numbers; those entries are ordered by score after the ranked ones", p, name, unusable[:5])
        elif any(r < 1 for r in ranks):
            logger.warning("%s: image %s: rank values below 1 (%s); ranks start at 1 = most salient, the order is kept", p, name, min(ranks))
        elif len(set(ranks)) < len(ranks):
            logger.warning("%s: image %s: %d entries share a rank; ties are ordered by descending score", p, name, len(ranks) - len(set(ranks)))
        size = (gt[name].height, gt[name].width) if gt is not None and name in gt else None
        out[name] = _entries_to_instances(sorted(entries, key=_sort_key), name, p, size)
    return out


def _entries_to_instances(entries: list[dict[str, Any]], name: str, path: Path, size: tuple[int, int] | None) -> RankedInstances:
    masks = []
    hw = size
    for k, entry in enumerate(entries):
        seg = entry.get("segmentation")
        where = f"rank {entry.get('rank', '?')}"
        if isinstance(seg, dict) and "size" in seg and "counts" in seg:
            mh, mw = (int(v) for v in seg["size"])
            if hw is not None and (mh, mw) != hw:
                what = "the image size" if size is not None else "the other masks"
                raise InputError(f"mask size {mh}x{mw} differs from {what} {hw[0]}x{hw[1]}", path, name, where)
            hw = (mh, mw)
            try:
                rle = rle_to_str_counts(seg) if isinstance(seg.get("counts"), list) else seg
                validate_rle(rle)
            except Exception as exc:  # pycocotools raises plain Exceptions on corrupt counts
                raise InputError(f"segmentation is not a valid RLE ({exc})", path, name, where) from None
            masks.append(rle)
        elif isinstance(seg, list):
            if size is None:
                raise InputError("polygon segmentations need the image size; pass the ground truth (--gt)", path, name, where)
            masks.append(encode_rle(polygons_to_mask(seg, size[0], size[1])))
        else:
            raise InputError("entry has no segmentation (an RLE or polygons)", path, name, where)
    h, w = hw if hw is not None else (0, 0)
    n = len(entries)
    all_scored = n > 0 and all(isinstance(e.get("score"), int | float) for e in entries)
    saliency = np.array([float(e["score"]) for e in entries], np.float32) if all_scored else None
    if all(isinstance(e.get("objectness"), int | float) for e in entries):
        scores = [float(e["objectness"]) for e in entries]
    else:
        scores = [float(e["score"]) if isinstance(e.get("score"), int | float) else 1.0 for e in entries]
    boxes = None
    if n and all(isinstance(e.get("bbox"), list) and len(e["bbox"]) == 4 for e in entries):
        xywh = np.array([e["bbox"] for e in entries], np.float64)
        boxes = np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], axis=1)
    keypoints = None
    if n and any("keypoints" in e for e in entries):
        kps = []
        for e in entries:
            kp = e.get("keypoints")
            arr = np.zeros((NUM_KEYPOINTS, 3)) if kp is None else np.asarray(kp, np.float64)
            if arr.size != NUM_KEYPOINTS * 3:
                raise InputError(f"keypoints must be {NUM_KEYPOINTS * 3} numbers", path, name, f"rank {e.get('rank', '?')}")
            kps.append(arr.reshape(NUM_KEYPOINTS, 3))
        keypoints = np.stack(kps)
    result = RankedInstances(
        name,
        h,
        w,
        rles=masks,
        scores=scores,
        saliency=saliency,
        boxes=boxes,
        keypoints=keypoints,
    )
    if saliency is not None:
        result.extras["explicit_rank_scores"] = True
    return result
