"""The original IRSR dataset layout (Liu et al., TPAMI 2021), as IRSR and QAGNet read it.

::

    IRSR/
      Annotations/{train,test}.pkl   pickle: [{"file_name": ".../COCO_val2014_000000000192.jpg",
                                               "annotations": [{"bbox": [x, y, w, h], "segmentation": ...,
                                                                "is_person": 0 | 1}, ...],
                                               "rank": [3, 1, 2, ...]}, ...]      # one level per annotation
      Images/{split}/rgb/*.jpg  (QAGNet; the IRSR README says Images/{split}/image)
      Images/{split}/gt/*.png   grey rank maps

Rank direction, from the official code: IRSR's ``metric/readme.md`` says "the higher integer stands for
the higher salient level", its evaluation (``tools/evaluation/spearman_correlation.py``) ranks GT by the
ascending position of these values, and QAGNet passes them on unchanged as ``gt_rank``. Neither filters
on the value: **every annotation is a salient GT object** and 0 is simply the lowest level, not "not
salient". salrank therefore ranks all annotations by ``rank`` descending (dense; equal levels tie) and
leaves :attr:`GTImage.unranked` empty. ``file_name`` is an absolute path of the authors' machine; only
its base name is used (as QAGNet does).

The file is a pickle. It is read with :class:`PlainDataUnpickler`, which builds only plain data
(containers, numbers, strings, numpy arrays) and refuses every other class, so a malicious file cannot
run code.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from salrank.data.formats._common import (
    Reporter,
    check_rle_size,
    dense_ranks,
    find_file,
    first_existing_dir,
    image_id_from_file_name,
    image_size,
    is_number,
    order_instances,
    parse_bbox,
    parse_segmentation,
    plain_number,
    refuse_overwrite,
    segmentation_size,
    transfer_images,
)
from salrank.errors import InputError
from salrank.structures import GTImage, GTInstance, SORDataset
from salrank.utils.io import write_bytes
from salrank.utils.masks import RLE, encode_rle, mask_to_box, segmentation_to_mask

FORMAT = "irsr"

# ---------------------------------------------------------------------------------------------- safe unpickling
_SAFE_BUILTINS = {"set", "frozenset", "list", "dict", "tuple", "bytes", "bytearray", "complex", "slice", "range", "str", "int", "float", "bool"}
_NUMPY_SAFE = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"),  # protocol 5 arrays
    ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
}


def _box_mode_stand_in(value: Any) -> int:
    """detectron2's ``BoxMode`` enum pickles as ``BoxMode(<int>)``; we keep the int."""
    if not isinstance(value, int):
        raise pickle.UnpicklingError("BoxMode with a non-integer value")
    return value


_STAND_INS = {
    ("detectron2.structures.boxes", "BoxMode"): _box_mode_stand_in,
}


def _numpy_multiarray() -> Any:
    try:
        from numpy._core import multiarray  # numpy >= 2
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core import multiarray  # type: ignore[no-redef]
    return multiarray


def _numpy_frombuffer() -> Any:
    try:
        from numpy._core.numeric import _frombuffer  # numpy >= 2
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core.numeric import _frombuffer  # type: ignore[no-redef]
    return _frombuffer


class PlainDataUnpickler(pickle.Unpickler):
    """An unpickler for data files: only containers, scalars, strings and numpy arrays/scalars.

    Every other global is refused with ``UnpicklingError("refusing to unpickle <module.name>")`` before
    anything is called, so ``os.system`` and friends never run. ``collections.OrderedDict`` and
    ``_codecs.encode`` (how protocol-2 pickles store bytes) are allowed; detectron2's ``BoxMode`` is
    replaced by its integer value without importing detectron2.
    """

    def find_class(self, module: str, name: str) -> Any:
        if module in ("builtins", "__builtin__") and name in _SAFE_BUILTINS:
            import builtins

            return getattr(builtins, name)
        if (module, name) == ("collections", "OrderedDict"):
            from collections import OrderedDict

            return OrderedDict
        if (module, name) == ("_codecs", "encode"):
            import codecs

            return codecs.encode
        if (module, name) in _NUMPY_SAFE:
            if name in ("_reconstruct", "scalar"):
                return getattr(_numpy_multiarray(), name)
            if name == "_frombuffer":
                return _numpy_frombuffer()
            return getattr(np, name)
        if module == "numpy.dtypes" and name.endswith("DType") and name != "ObjectDType":
            import numpy.dtypes

            return getattr(numpy.dtypes, name)
        if (module, name) in _STAND_INS:
            return _STAND_INS[(module, name)]
        raise pickle.UnpicklingError(f"refusing to unpickle {module}.{name}")


def safe_unpickle(path: Path) -> Any:
    """Read a pickle of plain data with :class:`PlainDataUnpickler`; problems are :class:`InputError`."""
    if not path.is_file():
        raise InputError("file not found", path)
    try:
        data = path.read_bytes()
        return PlainDataUnpickler(io.BytesIO(data), encoding="latin1").load()
    except pickle.UnpicklingError as exc:
        msg = str(exc)
        if msg.startswith("refusing"):
            raise InputError(f"{msg}: this pickle holds more than plain data, so salrank will not load it", path) from None
        raise InputError(f"not a readable pickle (truncated or corrupt: {msg})", path) from None
    except (EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError, MemoryError, OverflowError) as exc:
        raise InputError(f"not a readable pickle (truncated or corrupt: {exc.__class__.__name__}: {exc})", path) from None


# ---------------------------------------------------------------------------------------------- reading
def available_splits(root: Path) -> list[str]:
    return sorted(p.stem for p in (root / "Annotations").glob("*.pkl"))


def image_dir_candidates(root: Path, split: str) -> list[Path]:
    base = root / "Images" / split
    return [base / "rgb", base / "image", base / "images", base]


def _normalize_segmentation(seg: Any, reporter: Reporter, file: Path, image: str, item: str) -> Any:
    """IRSR/QAGNet allow a list mixing polygons and RLE dicts; merge such a list into one RLE."""
    if isinstance(seg, list | tuple) and any(isinstance(s, dict) for s in seg):
        parts = [parse_segmentation(s if isinstance(s, dict) else [s], reporter, file, image, item) for s in seg]
        if any(p is None for p in parts):
            return None
        sizes = {segmentation_size(p) for p in parts if isinstance(p, dict)}
        if len(sizes) != 1:
            reporter.fatal("segmentation mixes RLEs of different sizes", file, image, item)
            return None
        h, w = sizes.pop()  # type: ignore[misc]
        union = np.zeros((h, w), np.uint8)
        for p in parts:
            union |= segmentation_to_mask(p, h, w)  # type: ignore[arg-type]
        return encode_rle(union)
    return parse_segmentation(seg, reporter, file, image, item)


def read(pkl_path: Path, split: str, reporter: Reporter, root: Path | None = None) -> SORDataset:
    """Read ``Annotations/{split}.pkl`` (``pkl_path``) of the IRSR folder ``root``."""
    data = safe_unpickle(pkl_path)
    if isinstance(data, dict) and isinstance(data.get("data"), list):
        data = data["data"]
    if not isinstance(data, list | tuple):
        raise InputError(f"not an IRSR annotation pickle: expected a list of {{file_name, annotations, rank}}, got {type(data).__name__}", pkl_path)
    root = root if root is not None else (pkl_path.parent.parent if pkl_path.parent.name == "Annotations" else pkl_path.parent)
    image_dir = first_existing_dir(image_dir_candidates(root, split))
    gt_dir = root / "Images" / split / "gt"
    images: list[GTImage] = []
    for idx, entry in enumerate(data):
        if not isinstance(entry, dict) or not isinstance(entry.get("file_name"), str):
            reporter.fatal("entry without a 'file_name' string", pkl_path, None, f"entry {idx}")
            continue
        file_name = entry["file_name"].replace("\\", "/").rsplit("/", 1)[-1]
        image_id = image_id_from_file_name(file_name)
        anns = entry.get("annotations")
        ranks = entry.get("rank")
        if isinstance(ranks, np.ndarray):
            ranks = ranks.reshape(-1).tolist()
        if not isinstance(anns, list | tuple) or not isinstance(ranks, list | tuple):
            reporter.fatal("expected 'annotations' and 'rank' lists", pkl_path, image_id)
            continue
        if len(anns) != len(ranks):
            reporter.fatal(f"{len(ranks)} rank values for {len(anns)} annotations", pkl_path, image_id)
            continue
        if not all(is_number(r) for r in ranks):
            reporter.fatal(f"'rank' must hold numbers, got {ranks!r}", pkl_path, image_id)
            continue
        segs = []
        bad = False
        for k, ann in enumerate(anns):
            item = f"annotation {k}"
            if not isinstance(ann, dict):
                reporter.fatal("annotation is not a dict", pkl_path, image_id, item)
                bad = True
                continue
            seg = _normalize_segmentation(ann.get("segmentation"), reporter, pkl_path, image_id, item)
            bad |= seg is None
            segs.append(seg)
        if bad:
            continue
        size = _image_size(entry, image_id, file_name, image_dir, gt_dir, segs)
        if size is None:
            reporter.fatal("image size unknown: no 'height'/'width', no image file, no gt PNG and no RLE", pkl_path, image_id)
            continue
        img = GTImage(image_id=image_id, file_name=file_name, height=size[0], width=size[1], instances=[])
        members: list[GTInstance] = []
        values = [plain_number(r) for r in ranks]
        for k, (ann, seg, value) in enumerate(zip(anns, segs, values)):
            item = f"annotation {k}"
            is_person = ann.get("is_person")
            inst = GTInstance(
                segmentation=seg,
                rank=None,
                rank_value=value,
                bbox=parse_bbox(ann.get("bbox"), reporter, pkl_path, image_id, item),
                category=1 if (is_number(is_person) and int(is_person) == 1) else None,
                id=k,
            )
            if not check_rle_size(inst, img, reporter, pkl_path, item):
                bad = True
                continue
            if value < 0:
                reporter.error(f"rank level {value} is negative", pkl_path, image_id, item)
            members.append(inst)
        if bad:
            continue
        for inst, r in zip(members, dense_ranks([inst.rank_value for inst in members], descending=True)):  # type: ignore[misc]
            inst.rank = r
        img.instances = order_instances(members)
        images.append(img)
    reporter.finish()
    return SORDataset(images=images, name="irsr", format=FORMAT, image_root=image_dir, split=split)


def _image_size(
    entry: dict[str, Any], image_id: str, file_name: str, image_dir: Path | None, gt_dir: Path, segs: list[Any]
) -> tuple[int, int] | None:
    h, w = entry.get("height"), entry.get("width")
    if is_number(h) and is_number(w) and int(h) > 0 and int(w) > 0:
        return int(h), int(w)
    if image_dir is not None:
        size = image_size(image_dir / file_name)
        if size is not None:
            return size
    gt_png = find_file(gt_dir if gt_dir.is_dir() else None, image_id, (".png",))
    if gt_png is not None:
        size = image_size(gt_png)
        if size is not None:
            return size
    for seg in segs:
        size = segmentation_size(seg)
        if size is not None:
            return size
    return None


# ---------------------------------------------------------------------------------------------- writing
def rank_levels(image: GTImage, same_format: bool) -> dict[int, int | float]:
    """IRSR ``rank`` of every instance (keyed by ``id()``): the file's own level when re-writing an IRSR
    dataset, else ``max_rank + 1 - rank`` (higher = more salient, 1 = least salient)."""
    max_rank = max((inst.rank for inst in image.instances if inst.rank is not None), default=0)
    out: dict[int, int | float] = {}
    for inst in image.instances:
        if same_format and inst.rank_value is not None:
            out[id(inst)] = inst.rank_value
        else:
            out[id(inst)] = max_rank + 1 - int(inst.rank or max_rank)
    return out


def _pickle_segmentation(seg: Any) -> Any:
    if isinstance(seg, dict):
        out: RLE = {"size": [int(seg["size"][0]), int(seg["size"][1])], "counts": seg["counts"]}
        return out
    return [list(p) for p in seg]


def write(
    dataset: SORDataset, root: Path, split: str, notes: list[str], *, overwrite: bool = False, images: str = "none"
) -> list[Path]:
    """Write ``dataset`` as ``root/Annotations/{split}.pkl`` (plain data only, pickle protocol 4)."""
    from salrank.data.formats.seqrank_json import file_order

    same = dataset.format == FORMAT
    target = root / "Annotations" / f"{split}.pkl"
    refuse_overwrite([target], overwrite)
    out = []
    dropped = 0
    for img in dataset.images:
        levels = rank_levels(img, same)
        dropped += len(img.unranked)
        anns = []
        rank = []
        salient = {id(inst) for inst in img.instances}
        for inst in file_order(img, same):
            if id(inst) not in salient:
                continue
            if inst.bbox is not None:
                bbox = [plain_number(v) for v in inst.bbox]
            else:
                x1, y1, x2, y2 = (float(v) for v in mask_to_box(segmentation_to_mask(inst.segmentation, img.height, img.width)))
                bbox = [x1, y1, x2 - x1, y2 - y1]
            anns.append({"bbox": bbox, "segmentation": _pickle_segmentation(inst.segmentation), "is_person": int(inst.category == 1)})
            rank.append(levels[id(inst)])
        out.append({"file_name": Path(img.file_name).name, "height": img.height, "width": img.width, "annotations": anns, "rank": rank})
    write_bytes(target, pickle.dumps(out, protocol=4))
    transfer_images(dataset.images, dataset.image_root, root / "Images" / split / "rgb", images, notes)
    if dropped:
        notes.append(f"{dropped} objects that are not salient (unranked) cannot be expressed in the IRSR format and were left out")
    return [target]
