"""Tiny synthetic datasets in every ground-truth format, for the data and io tests.

Every builder writes the same three images (small JPEGs of different sizes) with the same objects, in
the layout of one format, so tests can compare formats object by object. Coordinates are integers
(what the SeqRank/PoseSOR loaders need) except where a test asks otherwise.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from salrank.utils.masks import encode_rle, polygons_to_mask

# image id -> (height, width, objects); object = (polygons, salrank rank or None)
SCENES: dict[str, tuple[int, int, list[tuple[list[list[int]], int | None]]]] = {
    "COCO_val2014_000000000192": (
        48,
        64,
        [
            ([[4, 4, 30, 4, 30, 40, 4, 40]], 2),  # big rectangle
            ([[34, 6, 60, 6, 47, 30]], 1),  # triangle
            ([[10, 10, 20, 10, 20, 20, 10, 20]], 3),  # small square inside the rectangle
            ([[40, 34, 62, 34, 62, 46, 40, 46]], None),  # not salient
        ],
    ),
    "COCO_val2014_000000000164": (
        40,
        50,
        [
            ([[2, 2, 20, 2, 20, 20, 2, 20]], 1),
            ([[25, 5, 45, 5, 45, 35, 25, 35]], 2),
            ([[5, 25, 18, 25, 18, 38, 5, 38]], 2),  # tie with the previous object
        ],
    ),
    "COCO_val2014_000000000042": (30, 40, [([[5, 5, 30, 5, 30, 25, 5, 25]], 1)]),
}

PERSON_KEYPOINTS = np.array([[10 + i, 12 + i, 2 if i % 3 else 0] for i in range(17)], np.float32)


def write_image(path: Path, height: int, width: int, seed: int = 0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 255, (height, width, 3), dtype=np.uint8)).save(path)


def scene_mask(image_id: str, k: int) -> np.ndarray:
    h, w, objects = SCENES[image_id]
    return polygons_to_mask(objects[k][0], h, w)


def write_images(folder: Path) -> None:
    for i, (image_id, (h, w, _)) in enumerate(SCENES.items()):
        write_image(folder / f"{image_id}.jpg", h, w, seed=i)


def build_posesor(root: Path, split: str = "test") -> Path:
    """``root/assr/assr_<split>.json`` + ``root/assr/images/<split>/``; not-salient objects are left out."""
    ds = root / "assr"
    write_images(ds / "images" / split)
    images, anns = [], []
    ann_id = 1000
    for image_id, (h, w, objects) in SCENES.items():
        coco_id = int(image_id.rsplit("_", 1)[1])
        images.append({"license": 3, "file_name": f"{image_id}.jpg", "height": h, "width": w, "id": coco_id})
        salient = sorted([(r, polys) for polys, r in objects if r is not None], key=lambda t: t[0])
        for r, polys in salient:
            kp = PERSON_KEYPOINTS if r == 1 else np.zeros((17, 3), np.float32)
            x = np.asarray(polys[0]).reshape(-1, 2)
            anns.append(
                {
                    "image_id": coco_id,
                    "id": ann_id,
                    "category_id": r,
                    "class_id": 1 if r == 1 else 3,
                    "segmentation": polys,
                    "bbox": [float(x[:, 0].min()), float(x[:, 1].min()), float(np.ptp(x[:, 0])), float(np.ptp(x[:, 1]))],
                    "keypoints": [int(v) for v in kp.reshape(-1)],
                    "num_keypoints": int((kp[:, 2] > 0).sum()),
                    "visiting_order": r,
                    "iscrowd": 0,
                    "area": 1,
                }
            )
            ann_id += 1
    path = ds / f"assr_{split}.json"
    path.write_text(json.dumps({"images": images, "annotations": anns}))
    return path


def build_seqrank(root: Path, split: str = "test") -> Path:
    """SeqRank JSON: category_id = 4 - rank (larger = more salient); not salient = 0."""
    ds = root / "irsr"
    write_images(ds / "images" / split)
    data = []
    for image_id, (h, w, objects) in SCENES.items():
        anns = [{"category_id": 0 if r is None else 4 - r, "segmentation": polys} for polys, r in objects]
        data.append({"image_name": image_id, "height": h, "width": w, "annotations": anns})
    path = ds / f"irsr_{split}.json"
    path.write_text(json.dumps({"__comment__": "test", "data": data}))
    return path


def assr_value(rank: int | None) -> float:
    return 0.0 if rank is None else round(1.0 - 0.1 * (rank - 1), 10)


def build_assr(root: Path, split: str = "test", *, rle_object: bool = True) -> Path:
    """ASSR root: the triangle of the first image is stored as an RLE; not-salient values vary (0, -0.3)."""
    root.mkdir(parents=True, exist_ok=True)
    write_images(root / "images" / split)
    entries = []
    for image_id, (h, w, objects) in SCENES.items():
        objs, values = [], []
        for k, (polys, r) in enumerate(objects):
            x = np.asarray(polys[0]).reshape(-1, 2)
            seg: Any = polys
            if rle_object and image_id.endswith("192") and k == 1:
                seg = encode_rle(polygons_to_mask(polys, h, w))
            objs.append({"bbox": [int(x[:, 0].min()), int(x[:, 1].min()), int(x[:, 0].max()), int(x[:, 1].max())], "segmentation": seg})
            values.append(assr_value(r) if r is not None else (-0.3 if k == 3 else 0.0))
        entries.append({"img": image_id, "object_data": objs})
        (root / "rank_order" / split).mkdir(parents=True, exist_ok=True)
        (root / "rank_order" / split / f"{image_id}.json").write_text(json.dumps({"rank_order": values}))
    (root / f"obj_seg_data_{split}.json").write_text(json.dumps(entries))
    (root / f"{split}_images.txt").write_text("".join(f"{i}\n" for i in SCENES))
    return root


def build_irsr(root: Path, split: str = "test") -> Path:
    """IRSR root: rank levels are higher = more salient (4 - rank); not-salient objects are left out."""
    write_images(root / "Images" / split / "rgb")
    out = []
    for image_id, (_h, _w, objects) in SCENES.items():
        anns, ranks = [], []
        for polys, r in objects:
            if r is None:
                continue
            x = np.asarray(polys[0]).reshape(-1, 2)
            anns.append({"bbox": [int(x[:, 0].min()), int(x[:, 1].min()), int(np.ptp(x[:, 0])), int(np.ptp(x[:, 1]))], "segmentation": polys, "is_person": int(r == 1)})
            ranks.append(np.int64(4 - r))  # numpy scalars, as numpy-made pickles have
        out.append({"file_name": f"/data/authors/IRSR/Images/{split}/{image_id}.jpg", "annotations": anns, "rank": ranks})
    (root / "Annotations").mkdir(parents=True, exist_ok=True)
    (root / "Annotations" / f"{split}.pkl").write_bytes(pickle.dumps(out, protocol=4))
    return root


def gt_order(image_id: str) -> list[int]:
    """Indices (into SCENES objects) of the salient objects, most salient first, ties in file order."""
    _, _, objects = SCENES[image_id]
    salient = [(r, k) for k, (_, r) in enumerate(objects) if r is not None]
    return [k for _, k in sorted(salient, key=lambda t: t[0])]
