"""Work out which ground-truth format a path holds, and which split to read.

Rules (in order):

* a ``.pkl`` file: IRSR (``Annotations/{split}.pkl``; the split is the file's stem);
* a JSON file, by its content: ``{"images", "annotations"}`` = PoseSOR, ``{"data": [...]}`` = SeqRank,
  a list of ``{"img", "object_data"}`` = an ASSR ``obj_seg_data_{split}.json`` (its folder is the root);
* a folder with ``obj_seg_data_*.json``: ASSR; with ``Annotations/*.pkl``: IRSR; with
  ``<name>_<split>.json`` files: the SeqRank/PoseSOR layout (the file of the requested split).

A layout with several splits needs ``split`` unless it has only one; the error lists those available.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from salrank.errors import InputError
from salrank.utils.io import read_json

DATASET_FORMATS = ("posesor", "seqrank", "assr", "irsr")


@dataclass
class DatasetSource:
    """What :func:`detect_dataset` found."""

    format: str
    path: Path
    """The JSON file (PoseSOR, SeqRank), the ASSR root folder or the IRSR ``.pkl``."""
    split: str | None
    data: Any = None
    """The parsed JSON, for the JSON formats (so the file is read once)."""


def choose_split(available: list[str], split: str | None, where: Path) -> str:
    """The split to read from a layout that has ``available`` splits."""
    if not available:
        raise InputError("no split found", where)
    if split is not None:
        if split not in available:
            raise InputError(f"split {split!r} not found; available: {', '.join(available)}", where)
        return split
    if len(available) == 1:
        return available[0]
    raise InputError(f"holds several splits ({', '.join(available)}); choose one with split=... / --split", where)


def format_of_json(data: Any) -> str | None:
    """``posesor``, ``seqrank``, ``assr`` or ``None`` for parsed JSON content."""
    if isinstance(data, dict):
        if isinstance(data.get("images"), list) and isinstance(data.get("annotations"), list):
            return "posesor"
        if isinstance(data.get("data"), list):
            return "seqrank"
        return None
    if isinstance(data, list) and data and isinstance(data[0], dict) and "img" in data[0] and "object_data" in data[0]:
        return "assr"
    return None


def _describe(data: Any) -> str:
    if isinstance(data, dict):
        keys = list(data)[:8]
        if "instances" in data and "height" in data:
            return f"an object with keys {keys} (this looks like a salrank prediction, not ground truth)"
        return f"an object with keys {keys}"
    if isinstance(data, list):
        if not data:
            return "an empty list"
        first = data[0]
        if isinstance(first, dict):
            if "image_id" in first and ("score" in first or "segmentation" in first):
                return "a list of per-instance results (this looks like a COCO results file of predictions, not ground truth)"
            return f"a list of objects with keys {list(first)[:8]}"
        return f"a list of {type(first).__name__}"
    return f"a JSON {type(data).__name__}"


UNKNOWN_JSON = (
    "unknown annotation format: expected a PoseSOR COCO JSON ({{'images': [...], 'annotations': [...]}}), a SeqRank "
    "JSON ({{'data': [...]}}) or an ASSR obj_seg_data_<split>.json (a list of {{'img', 'object_data'}}); found {found}"
)


def _assr_split_from_file(path: Path, split: str | None) -> str:
    stem = path.stem
    if stem.startswith("obj_seg_data_"):
        return stem[len("obj_seg_data_") :]
    if split:
        return split
    raise InputError("an ASSR object file should be named obj_seg_data_<split>.json (or pass split=...)", path)


def detect_dataset(path: str | Path, split: str | None = None, format: str | None = None) -> DatasetSource:
    """Find the format, the file to read and the split of a ground-truth path (see the module docstring)."""
    from salrank.data.formats import assr, irsr

    p = Path(path)
    if format is not None and format not in DATASET_FORMATS:
        raise InputError(f"unknown dataset format {format!r}; choose one of {', '.join(DATASET_FORMATS)}")
    if not p.exists():
        raise InputError("no such file or folder", p)

    if p.is_file():
        suffix = p.suffix.lower()
        if suffix == ".pkl" or format == "irsr":
            if format not in (None, "irsr"):
                raise InputError(f"a .pkl file is an IRSR annotation pickle, not the {format} format", p)
            return DatasetSource("irsr", p, p.stem)
        if suffix in (".pth", ".pt"):
            raise InputError("a PyTorch file holds predictions, not a ground-truth dataset", p)
        data = read_json(p)
        found = format_of_json(data)
        fmt = format or found
        if fmt is None:
            raise InputError(UNKNOWN_JSON.format(found=_describe(data)), p)
        if format is not None and found is not None and found != format:
            raise InputError(f"this file is in the {found} format, not {format}", p)
        if fmt == "assr":
            return DatasetSource("assr", p.parent, _assr_split_from_file(p, split))
        return DatasetSource(fmt, p, split, data)

    # a folder
    assr_splits = assr.available_splits(p)
    irsr_root = p.parent if p.name == "Annotations" else p
    irsr_splits = irsr.available_splits(irsr_root)
    if assr_splits and format in (None, "assr"):
        return DatasetSource("assr", p, choose_split(assr_splits, split, p))
    if irsr_splits and format in (None, "irsr"):
        chosen = choose_split(irsr_splits, split, irsr_root / "Annotations")
        return DatasetSource("irsr", irsr_root / "Annotations" / f"{chosen}.pkl", chosen)
    json_files = {f.stem.rsplit("_", 1)[1]: f for f in sorted(p.glob("*_*.json")) if not f.name.startswith("obj_seg_data_")}
    if json_files and format in (None, "posesor", "seqrank"):
        chosen = choose_split(sorted(json_files), split, p)
        return detect_dataset(json_files[chosen], chosen, format)
    nested = sorted(
        str(sub) for sub in p.iterdir() if sub.is_dir() and (assr.available_splits(sub) or irsr.available_splits(sub) or list(sub.glob("*_*.json")))
    )
    hint = f"; datasets found in sub-folders: {', '.join(nested)}" if nested else ""
    wanted = f"an {format} dataset" if format else "a dataset"
    raise InputError(
        f"not {wanted} folder: expected obj_seg_data_<split>.json (ASSR), Annotations/<split>.pkl (IRSR) or "
        f"<name>_<split>.json (SeqRank/PoseSOR){hint}",
        p,
    )
