"""Class-agnostic COCO segmentation AP/AR of the salient objects (an extra; not part of any SOR protocol).

The salient GT objects of every image are one category ("salient object"); predictions are scored by
their objectness ``scores`` (ties keep the rank order, as COCOeval sorts with a stable sort).
pycocotools' ``COCOeval(iouType="segm")`` computes the 12 standard numbers; GT polygons are rasterised
the COCO way (pycocotools), and values of -1 (no GT in an area range) are reported as ``None``.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils

from salrank.structures import GTImage, RankedInstances

COCO_STAT_NAMES = ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl")
"""Names of ``COCOeval.stats`` (prefixed ``segm_`` in reports)."""


def coco_rle(segmentation: Any, height: int, width: int) -> dict[str, Any]:
    """A GT segmentation (polygons, compressed or uncompressed RLE) as one compressed RLE (``bytes`` counts),
    rasterised with pycocotools (the COCO / ASSR / IRSR convention for polygons)."""
    if isinstance(segmentation, Mapping):
        counts = segmentation["counts"]
        h, w = (int(v) for v in segmentation["size"])
        if isinstance(counts, list):
            return mask_utils.frPyObjects({"size": [h, w], "counts": counts}, h, w)
        return {"size": [h, w], "counts": counts.encode("ascii") if isinstance(counts, str) else bytes(counts)}
    polys = [[float(v) for v in p] for p in segmentation if len(p) >= 6]
    if not polys:
        return mask_utils.encode(np.zeros((height, width), np.uint8, order="F"))
    rles = mask_utils.frPyObjects(polys, height, width)
    return rles[0] if len(rles) == 1 else mask_utils.merge(rles)


def _str_counts(rle: Mapping[str, Any]) -> dict[str, Any]:
    counts = rle["counts"]
    return {"size": [int(rle["size"][0]), int(rle["size"][1])], "counts": counts.decode("ascii") if isinstance(counts, bytes) else counts}


def coco_segm_metrics(images: Sequence[GTImage], predictions: Mapping[str, RankedInstances]) -> dict[str, float | None]:
    """``{"segm_AP": ..., ...}`` over ``images``; images without an entry in ``predictions`` have no detection."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    gt_images, annotations, detections = [], [], []
    ann_id = 0
    for k, img in enumerate(images, start=1):
        gt_images.append({"id": k, "height": img.height, "width": img.width, "file_name": img.file_name})
        for inst in img.instances:
            rle = coco_rle(inst.segmentation, img.height, img.width)
            ann_id += 1
            annotations.append(
                {
                    "id": ann_id,
                    "image_id": k,
                    "category_id": 1,
                    "segmentation": _str_counts(rle),
                    "area": float(mask_utils.area(rle)),
                    "bbox": [float(v) for v in mask_utils.toBbox(rle)],
                    "iscrowd": 0,
                }
            )
        pred = predictions.get(img.image_id)
        if pred is None or len(pred) == 0:
            continue
        for rle, score in zip(pred.to_rles(), pred.scores):
            detections.append({"image_id": k, "category_id": 1, "segmentation": rle, "score": float(score)})
    if not annotations:
        return {f"segm_{n}": None for n in COCO_STAT_NAMES}
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = {"images": gt_images, "annotations": annotations, "categories": [{"id": 1, "name": "salient object"}]}
        coco_gt.createIndex()
        if not detections:  # COCO's loadRes cannot take an empty list: every AP/AR is 0 where GT exists
            areas = [a["area"] for a in annotations]
            ranges = {"s": (0, 32**2), "m": (32**2, 96**2), "l": (96**2, 1e10)}
            out: dict[str, float | None] = {}
            for n in COCO_STAT_NAMES:
                rng = ranges.get(n[-1]) if n[-1] in "sml" else None
                present = rng is None or any(rng[0] <= a <= rng[1] for a in areas)
                out[f"segm_{n}"] = 0.0 if present else None
            return out
        coco_dt = coco_gt.loadRes(detections)
        ev = COCOeval(coco_gt, coco_dt, iouType="segm")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return {f"segm_{n}": (None if v < 0 else float(v)) for n, v in zip(COCO_STAT_NAMES, ev.stats)}
