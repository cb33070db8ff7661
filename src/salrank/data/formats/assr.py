"""The original ASSR dataset layout (Siris et al., CVPR 2020), as PPA and the ASSR evaluation read it.

::

    ASSR/
      obj_seg_data_{split}.json    [{"img": "COCO_val2014_000000000192",
                                     "object_data": [{"bbox": [x1, y1, x2, y2], "segmentation": polygons | RLE}]}]
      rank_order/{split}/<img>.json  {"rank_order": [1.0, 0.0, 0.8, -0.3, ...]}   # one value per object
      gt/{split}/<img>.png         grey rank map: 255/229/204/178/153 for ranks 1-5, 0 = background
      images/{split}/<img>.jpg
      {split}_images.txt           the image ids of the split, one a line (the official evaluation's list)

How salrank reads it: objects with ``rank_order > 0.5`` are the salient ones (``SAL_VAL_THRESH``), ranked
by ``rank_order`` descending (dense ranks; equal values are ties; odd values such as 0.52 are kept as
they are in ``rank_value``). The others (0 = never looked at, 0.5 and below, negative) are
:attr:`GTImage.unranked`, in file order. Each object's ``id`` is its index in ``object_data``.

The JSON has no image sizes. salrank reads the size from the image file's header when it is there, else
from ``gt/{split}/<img>.png``, else from an RLE's ``size``, else assumes 480x640 (the size the official
evaluation hard-codes) and warns; the log says how many sizes came from where.

When ``{split}_images.txt`` exists its ids (in its order) are the split, like the official evaluation;
entries of ``obj_seg_data`` not listed there are reported and left out (PPA's loader would use them).
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from salrank.data.formats._common import (
    ASSR_DEFAULT_SIZE,
    Reporter,
    check_rle_size,
    dense_ranks,
    find_file,
    image_size,
    is_number,
    order_instances,
    parse_segmentation,
    plain_number,
    refuse_overwrite,
    segmentation_size,
    transfer_images,
    write_file,
    write_json_compact,
)
from salrank.errors import InputError
from salrank.structures import GTImage, GTInstance, SORDataset
from salrank.utils.io import read_json, write_bytes
from salrank.utils.masks import mask_to_box, rle_to_str_counts, segmentation_to_mask

logger = logging.getLogger("salrank.data")

FORMAT = "assr"
SAL_VAL_THRESH = 0.5
RANK_STEP_VALUES = (1.0, 0.9, 0.8, 0.7, 0.6)
"""``rank_order`` of ranks 1-5 in the ASSR files (values > 0.5 are the five ranked objects)."""


def available_splits(root: Path) -> list[str]:
    """Splits that have an ``obj_seg_data_{split}.json``."""
    return sorted(p.stem[len("obj_seg_data_") :] for p in root.glob("obj_seg_data_*.json"))


def split_paths(root: Path, split: str) -> dict[str, Path]:
    return {
        "objects": root / f"obj_seg_data_{split}.json",
        "ranks": root / "rank_order" / split,
        "gt": root / "gt" / split,
        "images": root / "images" / split,
        "list": root / f"{split}_images.txt",
    }


def read(root: Path, split: str, reporter: Reporter) -> SORDataset:
    """Read split ``split`` of the ASSR folder ``root``."""
    paths = split_paths(root, split)
    obj_file = paths["objects"]
    data = read_json(obj_file)
    if not isinstance(data, list):
        raise InputError("not an ASSR obj_seg_data file: expected a list of {'img', 'object_data'}", obj_file)
    entries: dict[str, tuple[int, dict[str, Any]]] = {}
    for idx, entry in enumerate(data):
        if not isinstance(entry, dict) or not isinstance(entry.get("img"), str) or not isinstance(entry.get("object_data"), list):
            reporter.fatal("entry without an 'img' string and an 'object_data' list", obj_file, None, f"entry {idx}")
            continue
        if entry["img"] in entries:
            reporter.error(f"duplicate image (entries {entries[entry['img']][0]} and {idx}); the later one is ignored", obj_file, entry["img"])
            continue
        entries[entry["img"]] = (idx, entry)

    list_file = paths["list"]
    if list_file.is_file():
        try:
            listed = [line.strip() for line in list_file.read_text(encoding="utf-8").splitlines() if line.strip()]
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"cannot read the image list ({exc})", list_file) from None
        dup = [k for k, n in Counter(listed).items() if n > 1]
        for image_id in dup:
            reporter.error("listed more than once", list_file, image_id)
        listed = list(dict.fromkeys(listed))
        for image_id in listed:
            if image_id not in entries:
                reporter.error(f"listed in {list_file.name} but has no entry in {obj_file.name}", list_file, image_id)
        unlisted = [k for k in entries if k not in set(listed)]
        if unlisted:
            reporter.warning(
                f"{len(unlisted)} images of {obj_file.name} are not listed in {list_file.name} and are left out "
                f"(first: {', '.join(unlisted[:3])})",
                obj_file,
            )
        order = [k for k in listed if k in entries]
    else:
        reporter.warning(f"{list_file.name} not found; using every image of {obj_file.name}", list_file)
        order = list(entries)

    image_dir = paths["images"] if paths["images"].is_dir() else None
    gt_dir = paths["gt"] if paths["gt"].is_dir() else None
    sources: Counter[str] = Counter()
    images: list[GTImage] = []
    for image_id in order:
        _, entry = entries[image_id]
        objects = entry["object_data"]
        rank_file = paths["ranks"] / f"{image_id}.json"
        if not rank_file.is_file():
            reporter.fatal("rank_order file not found", rank_file, image_id)
            continue
        try:
            rank_data = read_json(rank_file)
        except InputError as exc:
            reporter.fatal(exc.message, rank_file, image_id)
            continue
        values = rank_data.get("rank_order") if isinstance(rank_data, dict) else None
        if not isinstance(values, list) or not all(is_number(v) for v in values):
            reporter.fatal("expected {'rank_order': [numbers]}", rank_file, image_id)
            continue
        if len(values) != len(objects):
            reporter.fatal(f"{len(values)} rank_order values for {len(objects)} objects in {obj_file.name}", rank_file, image_id)
            continue

        segs: list[Any] = []
        bad = False
        for k, obj in enumerate(objects):
            seg = parse_segmentation(obj.get("segmentation") if isinstance(obj, dict) else None, reporter, obj_file, image_id, f"object {k}", from_json=True)
            if seg is None:
                bad = True
            segs.append(seg)
        if bad:
            continue

        size, source = _image_size(image_id, image_dir, gt_dir, segs)
        sources[source] += 1
        if source == "assumed":
            reporter.warning(
                f"image size unknown (no image file, no gt PNG, no RLE); assuming {ASSR_DEFAULT_SIZE[0]}x{ASSR_DEFAULT_SIZE[1]} as the official evaluation does",
                obj_file,
                image_id,
            )
        img = GTImage(image_id=image_id, file_name=f"{image_id}.jpg", height=size[0], width=size[1], instances=[])
        salient: list[GTInstance] = []
        sal_values: list[float] = []
        for k, (obj, seg, value) in enumerate(zip(objects, segs, values)):
            item = f"object {k}"
            value = plain_number(value)
            bbox = None
            raw_box = obj.get("bbox")
            if isinstance(raw_box, list | tuple) and len(raw_box) == 4 and all(is_number(v) for v in raw_box):
                x1, y1, x2, y2 = (plain_number(v) for v in raw_box)
                bbox = [x1, y1, x2 - x1, y2 - y1]
            elif raw_box is not None:
                reporter.warning(f"bbox {raw_box!r} is not [x1, y1, x2, y2]; ignored", obj_file, image_id, item)
            inst = GTInstance(
                segmentation=seg,
                rank=None,
                rank_value=value,
                bbox=bbox,
                category=int(obj["category_id"]) if is_number(obj.get("category_id")) else None,
                id=k,
            )
            if not check_rle_size(inst, img, reporter, obj_file, item):
                bad = True
                continue
            if value > 1.0:
                reporter.error(f"rank_order {value} is above 1.0 (ranks 1-5 are 1.0, 0.9, ..., 0.6)", rank_file, image_id, item)
            if value > SAL_VAL_THRESH:
                salient.append(inst)
                sal_values.append(value)
            else:
                img.unranked.append(inst)
        if bad:
            continue
        if len(salient) > 5:
            reporter.warning(f"{len(salient)} objects have rank_order > 0.5 (ASSR ranks at most 5)", rank_file, image_id)
        for inst, r in zip(salient, dense_ranks(sal_values, descending=True)):
            inst.rank = r
        img.instances = order_instances(salient)
        images.append(img)
    reporter.finish()
    if sources:
        logger.info(
            "%s: image sizes read from %s",
            obj_file,
            ", ".join(f"{n} {what}" for what, n in sources.items()),
        )
    return SORDataset(images=images, name="assr", format=FORMAT, image_root=image_dir, split=split)


def _image_size(image_id: str, image_dir: Path | None, gt_dir: Path | None, segs: list[Any]) -> tuple[tuple[int, int], str]:
    """``(H, W)`` and where it came from: ``image files``, ``gt PNGs``, ``RLE sizes`` or ``assumed``."""
    for folder, what in ((image_dir, "image files"), (gt_dir, "gt PNGs")):
        path = find_file(folder, image_id, (".jpg", ".jpeg", ".png") if what == "image files" else (".png",))
        if path is not None:
            size = image_size(path)
            if size is not None:
                return size, what
    for seg in segs:
        size = segmentation_size(seg)
        if size is not None:
            return size, "RLE sizes"
    return ASSR_DEFAULT_SIZE, "assumed"


# ---------------------------------------------------------------------------------------------- writing
def rank_order_values(image: GTImage, same_format: bool) -> dict[int, float]:
    """``rank_order`` of every object (keyed by ``id()``): the file's own value when re-writing an ASSR
    dataset, else 1.0, 0.9, ... by rank (ranks above 5 get values <= 0.5, i.e. not salient in ASSR) and
    0.0 for unranked objects."""
    out: dict[int, float] = {}
    for inst in image.instances:
        if same_format and inst.rank_value is not None and inst.rank_value > SAL_VAL_THRESH:
            out[id(inst)] = inst.rank_value
        else:
            out[id(inst)] = round(1.0 - 0.1 * (int(inst.rank or 1) - 1), 10)
    for inst in image.unranked:
        out[id(inst)] = inst.rank_value if (same_format and inst.rank_value is not None and inst.rank_value <= SAL_VAL_THRESH) else 0.0
    return out


def render_gt_map(image: GTImage, values: dict[int, float]) -> np.ndarray:
    """The ASSR GT rank map: ``int(255 * rank_order)`` on each salient object (255/229/204/178/153 for
    ranks 1-5), painted most salient first so that a less salient object overlapping a more salient
    one stays visible. That is the order of ASSR's own ``generate_saliency_map.py`` (each later rank
    overwrites); the released GT PNGs were drawn by a script that was not published."""
    canvas = np.zeros((image.height, image.width), np.uint8)
    salient = [inst for inst in image.instances + image.unranked if values[id(inst)] > SAL_VAL_THRESH]
    for inst in sorted(salient, key=lambda i: -values[id(i)]):  # stable: ties keep their order
        grey = int(255 * min(values[id(inst)], 1.0))
        canvas[segmentation_to_mask(inst.segmentation, image.height, image.width) > 0] = grey
    return canvas


def write(
    dataset: SORDataset, root: Path, split: str, notes: list[str], *, overwrite: bool = False, images: str = "none"
) -> list[Path]:
    """Write ``dataset`` as split ``split`` of an ASSR folder at ``root``; returns the files written."""
    from salrank.data.formats.seqrank_json import file_order
    from salrank.io.rank_maps import encode_png

    same = dataset.format == FORMAT
    paths = split_paths(root, split)
    targets = [paths["objects"], paths["list"]]
    targets += [paths["ranks"] / f"{img.image_id}.json" for img in dataset.images]
    targets += [paths["gt"] / f"{img.image_id}.png" for img in dataset.images]
    refuse_overwrite(targets, overwrite)

    src_gt = None
    if same and dataset.image_root is not None and dataset.split:
        src_gt = dataset.image_root.parent.parent / "gt" / dataset.split

    objects_out = []
    demoted = copied = 0
    for img in dataset.images:
        values = rank_order_values(img, same)
        demoted += sum(1 for inst in img.instances if values[id(inst)] <= SAL_VAL_THRESH)
        objs = []
        rank_list = []
        for inst in file_order(img, same):
            if inst.bbox is not None:
                x, y, w, h = (float(v) for v in inst.bbox)
                box = [round(x, 10), round(y, 10), round(x + w, 10), round(y + h, 10)]
            else:
                box = [float(v) for v in mask_to_box(segmentation_to_mask(inst.segmentation, img.height, img.width))]
            seg = inst.segmentation
            if isinstance(seg, dict) and not isinstance(seg.get("counts"), list):
                seg = rle_to_str_counts(seg)
            obj: dict[str, Any] = {"bbox": box, "segmentation": seg}
            if inst.category is not None:
                obj["category_id"] = int(inst.category)
            objs.append(obj)
            rank_list.append(values[id(inst)])
        objects_out.append({"img": img.image_id, "object_data": objs})
        write_file(paths["ranks"] / f"{img.image_id}.json", json.dumps({"rank_order": rank_list}).encode("utf-8"))
        gt_src = src_gt / f"{img.image_id}.png" if src_gt is not None else None
        if gt_src is not None and gt_src.is_file():
            write_file(paths["gt"] / f"{img.image_id}.png", gt_src.read_bytes())
            copied += 1
        else:
            write_file(paths["gt"] / f"{img.image_id}.png", encode_png(render_gt_map(img, values)))
    write_json_compact(paths["objects"], objects_out)
    write_bytes(paths["list"], "".join(f"{img.image_id}\n" for img in dataset.images).encode("utf-8"))
    transfer_images(dataset.images, dataset.image_root, paths["images"], images, notes)
    if demoted:
        notes.append(f"{demoted} objects ranked below 5th get rank_order <= 0.5, which ASSR treats as not salient")
    rendered = len(dataset.images) - copied
    if rendered:
        notes.append(
            f"{rendered} GT rank maps were rendered by salrank (int(255*rank_order), most salient painted first); "
            "the official ones were drawn by the ASSR authors' own script"
        )
    return targets
