"""The SeqRank/PoseSOR result file: ``torch.save`` of ``{image_name: entry}``.

What the official evaluators write (``OUTPUT_DIR/<dataset>_coco_format.pth``) and their evaluation tools
read::

    {"COCO_val2014_000000000192": {
        "image_name": "COCO_val2014_000000000192",
        "masks":    [pycocotools RLE {"size": [H, W], "counts": b"..."}],   # rank order, rank 1 first
        "bboxes":   [[x1, y1, x2, y2]],         # pixels (SeqRank; PoseSOR leaves it out)
        "scores":   [objectness, ...],
        "saliency": [rank score, ...],
        "num":      n,
        "joints":   [(17, 3) [x / W, y / H, visibility prob]],   # PoseSOR only
    }}

salrank writes exactly these keys, plus ``height``, ``width`` and ``model`` (ignored by the official
tools; they keep the size of images with no prediction). Values are plain Python lists and floats (the
official files hold numpy arrays for ``joints``), so the file loads with ``torch.load(...,
weights_only=True)`` everywhere. Keypoints are pixels in :class:`RankedInstances` and normalised in the
file. Reading uses :func:`~salrank.utils.io.safe_torch_load` with numpy's array/scalar reconstruction
functions allow-listed (official files contain numpy arrays), never an unrestricted unpickle.
"""

from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from salrank.errors import InputError
from salrank.structures import NUM_KEYPOINTS, RankedInstances
from salrank.utils.masks import rle_to_bytes_counts, validate_rles

logger = logging.getLogger(__name__)


def _numpy_safe_globals() -> list[Any]:
    """numpy functions/classes that rebuild plain arrays and scalars, under both module names numpy used."""
    try:
        from numpy._core import multiarray  # numpy >= 2
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core import multiarray  # type: ignore[no-redef]
    out: list[Any] = [np.ndarray, np.dtype, multiarray._reconstruct, multiarray.scalar]
    out += [(multiarray._reconstruct, "numpy.core.multiarray._reconstruct"), (multiarray.scalar, "numpy.core.multiarray.scalar")]
    out += [(multiarray._reconstruct, "numpy._core.multiarray._reconstruct"), (multiarray.scalar, "numpy._core.multiarray.scalar")]
    out += [type(np.dtype(code)) for code in "?bBhHiIlLqQefdgFDGSU"]
    return out


@contextlib.contextmanager
def _allow_numpy() -> Iterator[None]:
    import torch

    with torch.serialization.safe_globals(_numpy_safe_globals()):
        yield


def _plain_data_globals() -> dict[tuple[str, str], Any]:
    """What a result file may reference: plain numpy arrays/scalars (PoseSOR's joints) and OrderedDict."""
    import collections

    allowed: dict[tuple[str, str], Any] = {("collections", "OrderedDict"): collections.OrderedDict}
    for item in _numpy_safe_globals():
        if isinstance(item, tuple):
            obj, dotted = item
            module, _, name = dotted.rpartition(".")
            allowed[(module, name)] = obj
        else:
            allowed[(item.__module__, item.__name__)] = item
    allowed[("numpy", "ndarray")] = np.ndarray
    allowed[("numpy", "dtype")] = np.dtype
    return allowed


def load_result_file(path: str | Path) -> dict[str, Any]:
    """The raw content of a result ``.pth`` (``{image_name: entry}``), loaded safely.

    Plain-data files go through a restricted C unpickler (:func:`salrank.utils.io.load_torch_plain_data`);
    files that store tensors through ``torch.load(weights_only=True)``.
    """
    from salrank.utils.io import load_torch_plain_data

    p = Path(path)
    with _allow_numpy():
        data = load_torch_plain_data(p, _plain_data_globals())
    if isinstance(data, list | tuple) and all(isinstance(e, dict) and "image_name" in e for e in data):
        data = {str(e["image_name"]): e for e in data}
    if not isinstance(data, dict):
        raise InputError(f"not a SeqRank/PoseSOR result file: expected {{image_name: {{'masks': [...], ...}}}}, got {type(data).__name__}", p)
    if data and not all(isinstance(v, dict) for v in data.values()):
        if any(hasattr(v, "shape") for v in data.values()):
            raise InputError("this looks like a model checkpoint (a state dict), not a result file", p)
        raise InputError("not a SeqRank/PoseSOR result file: every value must be a dict with 'masks'", p)
    return data


def _to_list(value: Any) -> list[Any] | None:
    """A sequence of per-instance values as a list; ``None`` for a missing or scalar value."""
    if value is None:
        return None
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    if isinstance(value, np.ndarray):
        return None if value.ndim == 0 else list(value)
    if isinstance(value, list | tuple):
        return list(value)
    return None


def _as_float_array(values: list[Any], shape_tail: tuple[int, ...], path: Path, image: str, what: str) -> np.ndarray:
    try:
        items = [v.detach().cpu().numpy() if hasattr(v, "detach") else v for v in values]
        arr = np.asarray(items, dtype=np.float64)
        return arr.reshape((len(values), *shape_tail))
    except (TypeError, ValueError) as exc:
        raise InputError(f"'{what}' must hold {'x'.join(map(str, shape_tail)) or 'one'} numbers per instance ({exc})", path, image) from None


def entry_to_instances(entry: Mapping[str, Any], image_name: str, path: Path, size: tuple[int, int] | None = None) -> RankedInstances:
    """One result-file entry to :class:`RankedInstances` (``size`` = the GT image size, when known)."""
    raw_masks = entry.get("masks")
    if raw_masks is None:
        raise InputError("entry has no 'masks'", path, image_name)
    masks_list = _to_list(raw_masks)
    if masks_list is None:
        raise InputError("'masks' must be a list of RLEs", path, image_name)
    n = len(masks_list)
    rles: list[dict[str, Any]] = []
    dense: list[np.ndarray] = []
    for k, m in enumerate(masks_list):
        if isinstance(m, dict) and "size" in m and "counts" in m:
            rles.append(m)
        elif hasattr(m, "shape") and len(m.shape) == 2:
            dense.append(np.asarray(m.detach().cpu().numpy() if hasattr(m, "detach") else m) > 0.5)
        else:
            raise InputError(f"mask {k} is neither a COCO RLE nor a 2-D array", path, image_name)
    if rles and dense:
        raise InputError("'masks' mixes RLEs and arrays", path, image_name)
    sizes = {(int(r["size"][0]), int(r["size"][1])) for r in rles} | {m.shape for m in dense}
    if len(sizes) > 1:
        raise InputError(f"masks of different sizes {sorted(sizes)}", path, image_name)
    h = entry.get("height")
    w = entry.get("width")
    declared = (int(h), int(w)) if isinstance(h, int | np.integer) and isinstance(w, int | np.integer) else None
    mask_size = next(iter(sizes)) if sizes else None
    if mask_size is not None and declared is not None and mask_size != declared:
        raise InputError(f"mask size {mask_size[0]}x{mask_size[1]} differs from the entry's height/width {declared[0]}x{declared[1]}", path, image_name)
    hw = mask_size or declared or size
    if mask_size is not None and size is not None and mask_size != size:
        raise InputError(f"mask size {mask_size[0]}x{mask_size[1]} differs from the image size {size[0]}x{size[1]}", path, image_name)
    if hw is None:
        hw = (0, 0)
    # RLEs are kept as they are (decoded lazily by RankedInstances), after a cheap validity check.
    stored: dict[str, Any]
    if rles:
        try:
            validate_rles(rles)
        except ValueError as exc:
            raise InputError(f"a mask is not a valid RLE ({exc})", path, image_name) from None
        stored = {"rles": rles}
    elif dense:
        stored = {"masks": np.stack(dense)}
    else:
        stored = {"masks": np.zeros((0, *hw), bool)}

    def per_instance(key: str) -> np.ndarray | None:
        values = _to_list(entry.get(key))
        if values is None:
            return None
        if len(values) != n:
            logger.warning("%s: image %s: '%s' has %d values for %d masks; ignored", path, image_name, key, len(values), n)
            return None
        return _as_float_array(values, (), path, image_name, key)

    scores = per_instance("scores")
    saliency = per_instance("saliency")
    boxes = None
    box_values = _to_list(entry.get("bboxes"))
    if box_values is not None and len(box_values) == n and n:
        boxes = _as_float_array(box_values, (4,), path, image_name, "bboxes")
    elif box_values:
        logger.warning("%s: image %s: 'bboxes' has %d boxes for %d masks; using the masks' boxes", path, image_name, len(box_values), n)
    keypoints = None
    joints = _to_list(entry.get("joints"))
    if joints is not None and len(joints) == n and n:
        kp = _as_float_array(joints, (NUM_KEYPOINTS, 3), path, image_name, "joints")
        kp[:, :, 0] *= hw[1]
        kp[:, :, 1] *= hw[0]
        keypoints = kp
    elif joints:
        logger.warning("%s: image %s: 'joints' has %d entries for %d masks; ignored", path, image_name, len(joints), n)
    num = entry.get("num")
    if isinstance(num, int | np.integer) and int(num) != n:
        logger.warning("%s: image %s: 'num' is %d but there are %d masks", path, image_name, int(num), n)
    model = entry.get("model")
    return RankedInstances(
        image_name,
        hw[0],
        hw[1],
        **stored,
        scores=scores,
        saliency=saliency,
        boxes=boxes,
        keypoints=keypoints,
        model=model if isinstance(model, str) else None,
    )


def read_result_file(path: str | Path, sizes: Mapping[str, tuple[int, int]] | None = None) -> dict[str, RankedInstances]:
    """Read a SeqRank/PoseSOR result file into ``{image_name: RankedInstances}`` (keys as in the file).

    ``sizes`` (image id -> ``(H, W)``, from the GT) fills the size of empty entries and is checked
    against the masks' size.
    """
    p = Path(path)
    data = load_result_file(p)
    out: dict[str, RankedInstances] = {}
    for key, entry in data.items():
        name = str(key)
        declared = entry.get("image_name")
        if isinstance(declared, str) and declared != name:
            logger.warning("%s: entry %s has image_name %r; using the key", p, name, declared)
        out[name] = entry_to_instances(entry, name, p, None if sizes is None else sizes.get(name))
    return out


def result_entry(result: RankedInstances) -> dict[str, Any]:
    """The result-file entry of one image (see the module docstring)."""
    h, w = result.height, result.width
    entry: dict[str, Any] = {
        "image_name": result.image_name,
        "masks": [rle_to_bytes_counts(r) for r in result.to_rles()],
        "bboxes": [[float(v) for v in box] for box in result.boxes],
        "scores": [float(v) for v in result.scores],
        "saliency": [float(v) for v in result.saliency],
        "num": len(result),
        "height": int(h),
        "width": int(w),
    }
    if result.keypoints is not None:
        kp = result.keypoints.astype(np.float64)
        entry["joints"] = [[[x / w, y / h, v] for x, y, v in person.tolist()] for person in kp]
    if result.model is not None:
        entry["model"] = result.model
    return entry


def save_result_file(preds: Mapping[str, RankedInstances] | Sequence[RankedInstances], path: str | Path) -> None:
    """Write predictions as an official result ``.pth`` (atomically)."""
    import torch

    from salrank.utils.io import write_bytes

    items = list(preds.items()) if isinstance(preds, Mapping) else [(r.image_name, r) for r in preds]
    content: dict[str, Any] = {}
    for name, result in items:
        if name in content:
            raise InputError(f"two predictions for image {name}")
        entry = result_entry(result)
        entry["image_name"] = name
        content[name] = entry
    buf = io.BytesIO()
    torch.save(content, buf)
    write_bytes(path, buf.getvalue())
