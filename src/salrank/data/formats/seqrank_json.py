"""The SeqRank annotation JSON (``{root}/{assr|irsr}/{assr|irsr}_{split}.json`` in SeqRank's ``assets/datasets``).

Layout::

    {"__comment__": "...",
     "data": [{"image_name": "COCO_val2014_000000000192",      # no extension; image = images/<split>/<name>.jpg
               "height": 480, "width": 640,
               "annotations": [{"category_id": 3,              # rank: larger = more salient, <= 0 = not salient
                                "segmentation": [[x, y, ...]]}]}]}   # integer polygons (cv2.fillPoly)

How salrank reads it (what SeqRank's test mapper does): objects with ``category_id > 0`` are the GT,
stable-sorted by ``category_id`` descending, so ties keep file order; that order is
:attr:`GTImage.instances`. Ranks are dense (equal ``category_id`` = equal rank). Objects with
``category_id <= 0`` go to :attr:`GTImage.unranked` (the official mapper drops them). Each annotation's
``id`` is its index in the file's list (the format has no ids), used in messages and to restore the file
order on writing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from salrank.data.formats._common import (
    Reporter,
    check_rle_size,
    dense_ranks,
    first_existing_dir,
    image_id_from_file_name,
    image_size,
    is_number,
    order_instances,
    parse_bbox,
    parse_segmentation,
    plain_number,
    polygons_for_official_loader,
)
from salrank.errors import InputError
from salrank.structures import GTImage, GTInstance, SORDataset

FORMAT = "seqrank"
COMMENT = "Salient object ranking annotations in the SeqRank format, written by salrank."


def split_from_name(path: Path) -> str | None:
    """``assr_test.json`` -> ``test``."""
    stem = path.stem
    return stem.rsplit("_", 1)[1] if "_" in stem else None


def default_image_root(json_path: Path, split: str | None) -> Path | None:
    """``<json dir>/images/<split>`` (the SeqRank/PoseSOR layout), else ``<json dir>/images``."""
    base = json_path.parent / "images"
    candidates = ([base / split] if split else []) + [base]
    return first_existing_dir(candidates)


def read(path: Path, data: Any, split: str | None, reporter: Reporter) -> SORDataset:
    """Build a :class:`SORDataset` from the parsed SeqRank JSON ``data`` of the file ``path``."""
    if not isinstance(data, dict) or not isinstance(data.get("data"), list):
        raise InputError("not a SeqRank annotation file: expected {'data': [ {image_name, height, width, annotations}, ... ]}", path)
    split = split or split_from_name(path)
    image_root = default_image_root(path, split)
    images: list[GTImage] = []
    for idx, entry in enumerate(data["data"]):
        where = f"entry {idx}"
        if not isinstance(entry, dict) or not isinstance(entry.get("image_name"), str):
            reporter.fatal("image entry without an 'image_name' string", path, None, where)
            continue
        name = entry["image_name"]
        image_id = image_id_from_file_name(name) if name.lower().endswith((".jpg", ".jpeg", ".png")) else name
        file_name = name if image_id != name else f"{name}.jpg"
        height, width = entry.get("height"), entry.get("width")
        if not (is_number(height) and is_number(width) and int(height) > 0 and int(width) > 0):
            size = image_size(image_root / file_name) if image_root is not None else None
            if size is None:
                reporter.fatal("no valid 'height'/'width' and the image file cannot be read for its size", path, image_id)
                continue
            reporter.warning(f"no valid 'height'/'width'; using the image file's size {size[0]}x{size[1]}", path, image_id)
            height, width = size
        anns = entry.get("annotations", [])
        if not isinstance(anns, list):
            reporter.fatal("'annotations' is not a list", path, image_id)
            continue
        img = GTImage(image_id=image_id, file_name=file_name, height=int(height), width=int(width), instances=[])
        salient: list[GTInstance] = []
        values: list[float] = []
        for k, ann in enumerate(anns):
            item = f"annotation {k}"
            if not isinstance(ann, dict):
                reporter.fatal("annotation is not an object", path, image_id, item)
                continue
            cat = ann.get("category_id")
            if not is_number(cat):
                reporter.fatal(f"'category_id' must be a number (the rank), got {cat!r}", path, image_id, item)
                continue
            seg = parse_segmentation(ann.get("segmentation"), reporter, path, image_id, item, from_json=True)
            if seg is None:
                continue
            cat = plain_number(cat)
            inst = GTInstance(
                segmentation=seg,
                rank=None,
                rank_value=cat,
                bbox=parse_bbox(ann.get("bbox"), reporter, path, image_id, item),
                category=int(ann["class_id"]) if is_number(ann.get("class_id")) else None,
                id=k,
            )
            if not check_rle_size(inst, img, reporter, path, item):
                continue
            if cat > 0:
                salient.append(inst)
                values.append(cat)
            else:
                img.unranked.append(inst)
        for inst, r in zip(salient, dense_ranks(values, descending=True)):
            inst.rank = r
        img.instances = order_instances(salient)
        images.append(img)
    reporter.finish()
    return SORDataset(images=images, name=path.stem.rsplit("_", 1)[0], format=FORMAT, image_root=image_root, split=split)


def category_ids(image: GTImage, same_format: bool) -> dict[int, float]:
    """``category_id`` of every instance (keyed by ``id()``): the file's own value when re-writing a
    SeqRank dataset, else ``max_rank + 1 - rank`` (larger = more salient) and 0 for unranked objects."""
    out: dict[int, float] = {}
    max_rank = max((inst.rank for inst in image.instances if inst.rank is not None), default=0)
    for inst in image.instances:
        if same_format and inst.rank_value is not None and inst.rank_value > 0:
            out[id(inst)] = inst.rank_value
        else:
            out[id(inst)] = max_rank + 1 - int(inst.rank or max_rank)
    for inst in image.unranked:
        out[id(inst)] = inst.rank_value if (same_format and inst.rank_value is not None and inst.rank_value <= 0) else 0
    return out


def file_order(image: GTImage, same_format: bool) -> list[GTInstance]:
    """Instances then unranked objects; the original file order when it is known (ids 0..k-1)."""
    everything = list(image.instances) + list(image.unranked)
    ids = [inst.id for inst in everything]
    if same_format and all(isinstance(i, int) for i in ids) and sorted(ids) == list(range(len(ids))):  # type: ignore[type-var]
        return sorted(everything, key=lambda inst: inst.id)  # type: ignore[arg-type,return-value]
    return everything


def to_json(dataset: SORDataset, notes: list[str]) -> dict[str, Any]:
    """The SeqRank JSON of a dataset (segmentations become integer polygons, see
    :func:`~salrank.data.formats._common.polygons_for_official_loader`)."""
    same = dataset.format == FORMAT
    converted = 0
    data = []
    for img in dataset.images:
        cats = category_ids(img, same)
        anns = []
        for inst in file_order(img, same):
            polys, was_converted = polygons_for_official_loader(inst, img)
            converted += was_converted
            ann: dict[str, Any] = {"category_id": cats[id(inst)], "segmentation": polys}
            if inst.bbox is not None:
                ann["bbox"] = [plain_number(v) for v in inst.bbox]
            if inst.category is not None:
                ann["class_id"] = int(inst.category)
            anns.append(ann)
        data.append({"image_name": img.image_id, "height": img.height, "width": img.width, "annotations": anns})
    if converted:
        notes.append(
            f"{converted} segmentations were RLE or had non-integer vertices and were written as integer polygons "
            "(the SeqRank loader fills int polygons with cv2.fillPoly); their masks may differ slightly"
        )
    return {"__comment__": COMMENT, "data": data}
