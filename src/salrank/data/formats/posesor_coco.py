"""The PoseSOR annotation JSON: COCO style with visiting orders and 17 keypoints.

Layout (PoseSOR ``ECCV24_PoseSOR_dataset/{assr,irsr}/{assr,irsr}_{split}.json``)::

    {"images": [{"id": 192, "file_name": "COCO_val2014_000000000192.jpg", "height": 480, "width": 640, ...}],
     "annotations": [{"id": 545132, "image_id": 192,
                      "category_id": 1,            # visiting order: 1 = looked at first
                      "class_id": 1,               # COCO class (1 = person)
                      "segmentation": [[x, y, ...]], "bbox": [x, y, w, h],
                      "keypoints": [x, y, v] * 17, "num_keypoints": 17, "visiting_order": 1,
                      "iscrowd": 0, "area": ...}]}

How salrank reads it: annotations are grouped by ``image_id`` in file order (as PoseSOR's register
does); every annotation is a GT object (PoseSOR has no "not salient" filter) with rank = dense rank of
``category_id`` ascending. :attr:`GTImage.instances` is the stable sort by rank. PoseSOR's evaluation
uses the *file* order and assumes it is ascending visiting order; when a file breaks that assumption
salrank warns (``salrank data check`` lists it) and uses the visiting order. An annotation with
``category_id <= 0`` cannot be a visiting order: it is reported and kept in :attr:`GTImage.unranked`.

Kept for lossless round trips: ``category_id`` (``rank_value``), ``class_id`` (``category``), ``bbox``,
``keypoints``, annotation ``id`` and image ``id`` (``coco_id``). Not kept (re-created on writing):
``area``, ``iscrowd``, ``num_keypoints``, ``visiting_order`` (= ``category_id``) and the image's
``license``/``coco_url``/``flickr_url``/``date_captured``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from salrank.data.formats._common import (
    Reporter,
    check_rle_size,
    coco_number,
    dense_ranks,
    image_id_from_file_name,
    image_size,
    is_number,
    order_instances,
    parse_bbox,
    parse_keypoints,
    parse_segmentation,
    plain_number,
    polygons_for_official_loader,
)
from salrank.data.formats.seqrank_json import default_image_root, split_from_name
from salrank.errors import InputError
from salrank.structures import NUM_KEYPOINTS, GTImage, GTInstance, SORDataset
from salrank.utils.masks import mask_to_box, rle_area, segmentation_to_mask

FORMAT = "posesor"


def read(path: Path, data: Any, split: str | None, reporter: Reporter) -> SORDataset:
    """Build a :class:`SORDataset` from the parsed PoseSOR/COCO JSON ``data`` of the file ``path``."""
    if not isinstance(data, dict) or not isinstance(data.get("images"), list) or not isinstance(data.get("annotations"), list):
        raise InputError("not a PoseSOR (COCO-style) annotation file: expected {'images': [...], 'annotations': [...]}", path)
    split = split or split_from_name(path)
    image_root = default_image_root(path, split)

    images: list[GTImage] = []
    by_coco_id: dict[Any, GTImage] = {}
    for idx, entry in enumerate(data["images"]):
        if not isinstance(entry, dict) or not isinstance(entry.get("file_name"), str) or "id" not in entry:
            reporter.fatal("image entry without 'id' and 'file_name'", path, None, f"images[{idx}]")
            continue
        coco_id = entry["id"]
        image_id = image_id_from_file_name(entry["file_name"])
        if coco_id in by_coco_id:
            reporter.error(f"duplicate image id {coco_id!r} (also used by {by_coco_id[coco_id].image_id}); this entry is ignored", path, image_id)
            continue
        height, width = entry.get("height"), entry.get("width")
        if not (is_number(height) and is_number(width) and int(height) > 0 and int(width) > 0):
            size = image_size(image_root / entry["file_name"]) if image_root is not None else None
            if size is None:
                reporter.fatal("no valid 'height'/'width' and the image file cannot be read for its size", path, image_id)
                continue
            reporter.warning(f"no valid 'height'/'width'; using the image file's size {size[0]}x{size[1]}", path, image_id)
            height, width = size
        img = GTImage(
            image_id=image_id,
            file_name=entry["file_name"].replace("\\", "/"),  # relative to images/<split>, as PoseSOR joins it
            height=int(height),
            width=int(width),
            instances=[],
            coco_id=int(coco_id) if is_number(coco_id) else coco_id,
        )
        by_coco_id[coco_id] = img
        images.append(img)

    grouped: dict[int, list[tuple[GTInstance, float]]] = {id(img): [] for img in images}
    for idx, ann in enumerate(data["annotations"]):
        if not isinstance(ann, dict):
            reporter.fatal("annotation is not an object", path, None, f"annotations[{idx}]")
            continue
        item = f"annotation {ann.get('id', f'#{idx}')}"
        img = by_coco_id.get(ann.get("image_id"))
        if img is None:
            reporter.fatal(f"refers to image_id {ann.get('image_id')!r}, which is not in 'images'", path, None, item)
            continue
        cat = ann.get("category_id")
        if not is_number(cat):
            reporter.fatal(f"'category_id' must be a number (the visiting order), got {cat!r}", path, img.image_id, item)
            continue
        seg = parse_segmentation(ann.get("segmentation"), reporter, path, img.image_id, item, from_json=True)
        if seg is None:
            continue
        inst = GTInstance(
            segmentation=seg,
            rank=None,
            rank_value=plain_number(cat),
            bbox=parse_bbox(ann.get("bbox"), reporter, path, img.image_id, item),
            keypoints=parse_keypoints(ann.get("keypoints"), reporter, path, img.image_id, item),
            category=int(ann["class_id"]) if is_number(ann.get("class_id")) else None,
            id=plain_number(ann["id"]) if is_number(ann.get("id")) else ann.get("id"),
        )
        if not check_rle_size(inst, img, reporter, path, item):
            continue
        if "visiting_order" in ann and ann["visiting_order"] != cat:
            reporter.warning(f"'visiting_order' {ann['visiting_order']!r} differs from 'category_id' {cat!r}; salrank uses category_id", path, img.image_id, item)
        grouped[id(img)].append((inst, plain_number(cat)))

    for img in images:
        members = grouped[id(img)]
        ranked = [(inst, v) for inst, v in members if v > 0]
        for inst, v in members:
            if v <= 0:
                reporter.error(f"category_id {v} is not a visiting order (must be >= 1); kept as not salient", path, img.image_id, f"annotation {inst.id}")
                img.unranked.append(inst)
        for (inst, _), r in zip(ranked, dense_ranks([v for _, v in ranked], descending=False)):
            inst.rank = r
        values = [v for _, v in ranked]
        if values != sorted(values):
            reporter.warning(
                "annotations are not in ascending visiting order; PoseSOR's evaluation takes the file order as the "
                "rank order, salrank sorts by category_id",
                path,
                img.image_id,
            )
        img.instances = order_instances([inst for inst, _ in ranked])
    reporter.finish()
    name = path.stem.rsplit("_", 1)[0] if "_" in path.stem else path.stem
    return SORDataset(images=images, name=name, format=FORMAT, image_root=image_root, split=split)


def _image_coco_ids(dataset: SORDataset) -> list[int]:
    """Integer image ids: the dataset's own when all are unique ints, else the COCO number in the name
    when those are unique, else 1..N."""
    own = [img.coco_id for img in dataset.images]
    if all(isinstance(i, int) for i in own) and len(set(own)) == len(own):
        return own  # type: ignore[return-value]
    numbers = [coco_number(img.image_id) for img in dataset.images]
    if all(n is not None for n in numbers) and len(set(numbers)) == len(numbers):
        return numbers  # type: ignore[return-value]
    return list(range(1, len(dataset.images) + 1))


def to_json(dataset: SORDataset, notes: list[str]) -> dict[str, Any]:
    """The PoseSOR JSON of a dataset.

    ``category_id`` = ``visiting_order`` = the rank (the file's own value when re-writing a PoseSOR
    dataset). Unranked objects cannot be expressed (every PoseSOR annotation is a GT object) and are
    left out, with a note. Segmentations are written as integer polygons; missing ``bbox`` is the
    mask's box and missing ``keypoints`` are 51 zeros, because PoseSOR's mapper reads both for every
    annotation.
    """
    same = dataset.format == FORMAT
    image_ids = _image_coco_ids(dataset)
    all_instances = [inst for img in dataset.images for inst in img.instances]
    own_ann_ids = [inst.id for inst in all_instances]
    keep_ann_ids = same and all(is_number(i) for i in own_ann_ids) and len(set(own_ann_ids)) == len(own_ann_ids)
    images_out: list[dict[str, Any]] = []
    anns_out: list[dict[str, Any]] = []
    dropped = converted = 0
    next_ann = 1
    for img, coco_id in zip(dataset.images, image_ids):
        file_name = img.file_name if same else (Path(img.file_name).name or f"{img.image_id}.jpg")
        images_out.append({"id": coco_id, "file_name": file_name, "height": img.height, "width": img.width})
        dropped += len(img.unranked)
        for inst in img.instances:
            polys, was_converted = polygons_for_official_loader(inst, img)
            converted += was_converted
            if same and inst.rank_value is not None and inst.rank_value > 0:
                order = inst.rank_value
            else:
                order = int(inst.rank)  # type: ignore[arg-type]
            if inst.bbox is not None:
                bbox = [plain_number(v) for v in inst.bbox]
            else:
                x1, y1, x2, y2 = (float(v) for v in mask_to_box(segmentation_to_mask(inst.segmentation, img.height, img.width)))
                bbox = [x1, y1, x2 - x1, y2 - y1]
            kps = inst.keypoints if inst.keypoints is not None else np.zeros((NUM_KEYPOINTS, 3), np.float32)
            flat = [plain_number(v) for v in np.asarray(kps, np.float64).reshape(-1)]
            flat = [int(v) if float(v).is_integer() else v for v in flat]
            if isinstance(inst.segmentation, dict):
                area = rle_area(inst.segmentation)
            else:
                area = int(segmentation_to_mask(inst.segmentation, img.height, img.width).sum())
            if keep_ann_ids:
                ann_id = inst.id
            else:
                ann_id = next_ann
                next_ann += 1
            anns_out.append(
                {
                    "image_id": coco_id,
                    "id": ann_id,
                    "category_id": order,
                    "class_id": int(inst.category) if inst.category is not None else 0,
                    "segmentation": polys,
                    "bbox": bbox,
                    "keypoints": flat,
                    "num_keypoints": int(np.count_nonzero(np.asarray(kps)[:, 2] > 0)),
                    "visiting_order": order,
                    "iscrowd": 0,
                    "area": area,
                }
            )
    if dropped:
        notes.append(f"{dropped} objects that are not salient (unranked) cannot be expressed in the PoseSOR format and were left out")
    if converted:
        notes.append(
            f"{converted} segmentations were RLE or had non-integer vertices and were written as integer polygons "
            "(PoseSOR's loader fills int polygons with cv2.fillPoly); their masks may differ slightly"
        )
    return {"images": images_out, "annotations": anns_out}
