"""Builders shared by the evaluation API/CLI tests: the golden metric cases as salrank datasets and files."""

from __future__ import annotations

import functools
import json
import shutil
from pathlib import Path

import numpy as np

from salrank.structures import GTImage, GTInstance, RankedInstances, SORDataset

DATA = Path(__file__).parent / "data" / "metrics"


@functools.cache
def cases(protocol: str) -> dict:
    with open(DATA / protocol / "cases.json", encoding="utf-8") as fh:
        return json.load(fh)


def dense_rank(values: list[float], descending: bool = True) -> list[int]:
    levels = sorted(set(values), reverse=descending)
    return [levels.index(v) + 1 for v in values]


def seqrank_dataset(limit: int | None = None) -> tuple[SORDataset, dict[str, RankedInstances]]:
    """GT in the official order (SeqRank mapper: category_id > 0, stable sort descending) and predictions."""
    images, preds = [], {}
    for c in cases("seqrank")["cases"][:limit]:
        cats = [c["gt"][i]["category_id"] for i in c["official_gt_order"]]
        ranks = dense_rank(cats)
        inst = [
            GTInstance(segmentation=c["gt"][i]["rle"], rank=r, rank_value=cat, id=i)
            for i, r, cat in zip(c["official_gt_order"], ranks, cats)
        ]
        unranked = [GTInstance(segmentation=g["rle"], rank=None, rank_value=g["category_id"], id=i) for i, g in enumerate(c["gt"]) if g["category_id"] <= 0]
        images.append(GTImage(image_id=c["id"], file_name=f"{c['id']}.jpg", height=c["height"], width=c["width"], instances=inst, unranked=unranked, coco_id=len(images) + 1))
        if c["preds"]:
            preds[c["id"]] = RankedInstances.from_rles([p["rle"] for p in c["preds"]], image_name=c["id"], height=c["height"], width=c["width"])
    return SORDataset(images=images, name="golden", format="seqrank", split="test"), preds


def irsr_dataset(limit: int | None = None) -> tuple[SORDataset, dict[str, RankedInstances]]:
    """GT in the file order given to the official code; predictions with explicit float64 rank scores."""
    images, preds = [], {}
    for c in cases("irsr")["cases"][:limit]:
        ranks = dense_rank([g["gt_rank"] for g in c["gt"]])
        inst = [GTInstance(segmentation=g["rle"], rank=r, rank_value=g["gt_rank"], id=k) for k, (g, r) in enumerate(zip(c["gt"], ranks))]
        images.append(GTImage(image_id=c["id"], file_name=f"{c['id']}.jpg", height=c["height"], width=c["width"], instances=inst, coco_id=len(images) + 1))
        if c["preds"]:
            scores = np.array([p["score"] for p in c["preds"]], np.float64)
            r = RankedInstances.from_rles([p["rle"] for p in c["preds"]], image_name=c["id"], height=c["height"], width=c["width"], saliency=scores)
            r.extras["explicit_rank_scores"] = True
            r.extras["rank_scores"] = scores
            preds[c["id"]] = r
    return SORDataset(images=images, name="golden", format="irsr", split="test"), preds


def assr_dataset(limit: int | None = None) -> SORDataset:
    images = []
    for c in cases("assr")["cases"][:limit]:
        salient = [(k, o) for k, o in enumerate(c["objects"]) if o["rank_order"] > 0.5]
        ranks = dense_rank([o["rank_order"] for _, o in salient])
        inst = [GTInstance(segmentation=o["rle"], rank=r, rank_value=o["rank_order"], id=k) for (k, o), r in zip(salient, ranks)]
        inst.sort(key=lambda i: i.rank)
        unranked = [GTInstance(segmentation=o["rle"], rank=None, rank_value=o["rank_order"], id=k) for k, o in enumerate(c["objects"]) if o["rank_order"] <= 0.5]
        images.append(GTImage(image_id=c["id"], file_name=f"{c['id']}.jpg", height=480, width=640, instances=inst, unranked=unranked))
    return SORDataset(images=images, name="golden", format="assr", split="test")


def write_assr_maps(folder: Path, which: str, limit: int | None = None) -> Path:
    """Copy the golden ``pred_map`` or ``gt_map`` PNGs to ``folder/<id>.png``."""
    folder.mkdir(parents=True, exist_ok=True)
    for c in cases("assr")["cases"][:limit]:
        shutil.copyfile(DATA / "assr" / c[which], folder / f"{c['id']}.png")
    return folder


def write_assr_layout(root: Path, limit: int | None = None) -> Path:
    """The golden assr cases as an original ASSR folder (split ``test``), the way the official code reads it."""
    (root / "rank_order" / "test").mkdir(parents=True, exist_ok=True)
    objects = []
    for c in cases("assr")["cases"][:limit]:
        objects.append({"img": c["id"], "object_data": [{"bbox": [0, 0, 1, 1], "segmentation": o["rle"]} for o in c["objects"]]})
        with open(root / "rank_order" / "test" / f"{c['id']}.json", "w", encoding="utf-8") as fh:
            json.dump({"rank_order": [o["rank_order"] for o in c["objects"]]}, fh)
    with open(root / "obj_seg_data_test.json", "w", encoding="utf-8") as fh:
        json.dump(objects, fh)
    (root / "test_images.txt").write_text("".join(f"{c['id']}\n" for c in cases("assr")["cases"][:limit]), encoding="utf-8")
    write_assr_maps(root / "gt" / "test", "gt_map", limit)
    return root


def write_posesor_json(path: Path, dataset: SORDataset) -> Path:
    """A PoseSOR-style COCO JSON keeping the RLE segmentations (category_id = rank, ties kept; annotations in
    instance order, so the reader's stable sort gives back the same order)."""
    images, anns = [], []
    for img in dataset.images:
        images.append({"id": img.coco_id, "file_name": img.file_name, "height": img.height, "width": img.width})
        for inst in sorted(img.instances, key=lambda i: i.rank):
            anns.append({"id": len(anns) + 1, "image_id": img.coco_id, "category_id": inst.rank, "segmentation": inst.segmentation, "iscrowd": 0})
    with open(path, "w", encoding="utf-8") as fh:
        json.dump({"images": images, "annotations": anns, "categories": [{"id": 1, "name": "object"}]}, fh)
    return path


def expected_aggregate(protocol: str, name: str = "all") -> dict:
    return cases(protocol)["aggregates"][name]
