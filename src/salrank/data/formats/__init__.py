"""Readers and writers of the field's ground-truth formats, one module per format.

* :mod:`.posesor_coco`: PoseSOR's COCO-style JSON (visiting orders, keypoints);
* :mod:`.seqrank_json`: SeqRank's ``{"data": [...]}`` JSON;
* :mod:`.assr`: the original ASSR folder (``obj_seg_data``, ``rank_order``, ``gt`` maps);
* :mod:`.irsr`: the original IRSR folder (``Annotations/{split}.pkl``, read without unsafe unpickling);
* :mod:`.detect`: which of these a path holds.

:func:`read_dataset` and :func:`write_dataset` dispatch to them; most code uses
:func:`salrank.data.load_dataset` / :func:`salrank.data.save_dataset` instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from salrank.data.formats._common import Problem, Reporter
from salrank.data.formats.detect import DATASET_FORMATS, DatasetSource, detect_dataset
from salrank.errors import InputError
from salrank.structures import SORDataset

__all__ = [
    "DATASET_FORMATS",
    "DatasetSource",
    "Problem",
    "Reporter",
    "WriteResult",
    "annotation_file",
    "detect_dataset",
    "read_dataset",
    "read_source",
    "write_dataset",
]


def read_dataset(path: str | Path, split: str | None, format: str | None, reporter: Reporter) -> SORDataset:
    """Detect and read a ground-truth dataset, sending problems to ``reporter``."""
    return read_source(detect_dataset(path, split, format), reporter)


def annotation_file(source: DatasetSource) -> Path:
    """The file that holds the annotations of a detected dataset (for messages)."""
    if source.format == "assr":
        return source.path / f"obj_seg_data_{source.split}.json"
    return source.path


def read_source(source: DatasetSource, reporter: Reporter) -> SORDataset:
    """Read what :func:`detect_dataset` found."""
    from salrank.data.formats import assr, irsr, posesor_coco, seqrank_json
    from salrank.utils.io import read_json

    if source.format == "posesor":
        data = source.data if source.data is not None else read_json(source.path)
        return posesor_coco.read(source.path, data, source.split, reporter)
    if source.format == "seqrank":
        data = source.data if source.data is not None else read_json(source.path)
        return seqrank_json.read(source.path, data, source.split, reporter)
    if source.format == "assr":
        return assr.read(source.path, source.split or "test", reporter)
    return irsr.read(source.path, source.split or source.path.stem, reporter)


@dataclass
class WriteResult:
    """What :func:`write_dataset` wrote, and what the conversion could not keep."""

    files: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def json_target(path: Path, dataset: SORDataset, split: str) -> Path:
    """``path`` itself when it names a ``.json`` file, else ``path/<name>_<split>.json``."""
    return path if path.suffix.lower() == ".json" else path / f"{dataset.name}_{split}.json"


def write_dataset(
    dataset: SORDataset,
    path: str | Path,
    format: str,
    *,
    split: str | None = None,
    overwrite: bool = False,
    images: str = "none",
) -> WriteResult:
    """Write ``dataset`` in ``format`` at ``path`` (atomic writes; existing files only with ``overwrite``).

    ``path`` is the JSON file (or a folder to put ``<name>_<split>.json`` in) for ``posesor`` and
    ``seqrank``, and the dataset's root folder for ``assr`` and ``irsr``. ``images`` = ``"copy"`` or
    ``"link"`` also copies/symlinks the image files to where the layout expects them.
    """
    from salrank.data.formats import assr, irsr, posesor_coco, seqrank_json
    from salrank.data.formats._common import refuse_overwrite, transfer_images, write_json_compact

    if format not in DATASET_FORMATS:
        raise InputError(f"unknown dataset format {format!r}; choose one of {', '.join(DATASET_FORMATS)}")
    p = Path(path)
    split = split or dataset.split or "test"
    result = WriteResult()
    if format in ("posesor", "seqrank"):
        target = json_target(p, dataset, split)
        refuse_overwrite([target], overwrite)
        module = posesor_coco if format == "posesor" else seqrank_json
        content = module.to_json(dataset, result.notes)
        write_json_compact(target, content)
        flat = not (format == "posesor" and dataset.format == "posesor")
        transfer_images(dataset.images, dataset.image_root, target.parent / "images" / split, images, result.notes, flat=flat)
        result.files = [target]
    elif format == "assr":
        result.files = assr.write(dataset, p, split, result.notes, overwrite=overwrite, images=images)
    else:
        result.files = irsr.write(dataset, p, split, result.notes, overwrite=overwrite, images=images)
    return result
