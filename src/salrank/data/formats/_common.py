"""Pieces shared by the dataset readers and writers.

* :class:`Problem` and :class:`Reporter`: how a reader says what is wrong with a file. ``load_dataset``
  uses a reporter that raises :class:`~salrank.errors.InputError` for problems that make the data
  unusable and logs the others; ``salrank data check`` uses one that collects everything.
* Helpers to validate segmentations, bounding boxes and keypoints as they come out of JSON/pickle.
* :func:`dense_ranks`: the field's rank values to salrank ranks (1 = most salient, ties stay ties).
* Image-size look-ups from file headers and the atomic/overwrite-safe file writing the writers share.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from salrank.errors import InputError
from salrank.structures import NUM_KEYPOINTS, GTImage, GTInstance
from salrank.utils.masks import RLE, Polygons

logger = logging.getLogger("salrank.data")

ERROR = "error"
WARNING = "warning"

#: Default image size of the ASSR evaluation code (``HEIGHT = 480``, ``WIDTH = 640``).
ASSR_DEFAULT_SIZE = (480, 640)


# ---------------------------------------------------------------------------------------------- problems
@dataclass
class Problem:
    """One thing wrong with a dataset, located as precisely as the file allows."""

    severity: str
    """``"error"`` (the data is wrong or unusable) or ``"warning"`` (suspicious, or lossy)."""
    message: str
    file: str | None = None
    image: str | int | None = None
    item: str | None = None
    """A finer location, e.g. ``"annotation 545132"`` or ``"object 3"``."""

    def __str__(self) -> str:
        parts = []
        if self.file:
            parts.append(self.file)
        if self.image is not None:
            parts.append(f"image {self.image}")
        if self.item:
            parts.append(self.item)
        parts.append(self.message)
        return ": ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {"severity": self.severity, "file": self.file, "image": self.image, "item": self.item, "message": self.message}


class Reporter:
    """Receives the problems a reader finds.

    Args:
        collect: ``True`` (``salrank data check``): keep every problem in :attr:`problems` and let the
            reader skip what it cannot represent. ``False`` (``load_dataset``): raise
            :class:`InputError` at the first *fatal* problem and log the others as warnings.
        max_logged: in logging mode, how many problems are logged one by one before they are only counted.
    """

    def __init__(self, collect: bool = False, max_logged: int = 20) -> None:
        self.collect = collect
        self.max_logged = max_logged
        self.problems: list[Problem] = []
        self._logged = 0
        self._not_logged = 0

    def _add(self, problem: Problem) -> None:
        if self.collect:
            self.problems.append(problem)
            return
        if self._logged < self.max_logged:
            logger.warning("%s: %s", problem.severity, problem)
            self._logged += 1
        else:
            self._not_logged += 1

    def fatal(self, message: str, file: Any = None, image: str | int | None = None, item: str | None = None) -> None:
        """A problem that leaves the item unusable: raised in loading mode, recorded (and skipped) in check mode."""
        if not self.collect:
            raise InputError(message, file, image, item)
        self.problems.append(Problem(ERROR, message, _s(file), image, item))

    def error(self, message: str, file: Any = None, image: str | int | None = None, item: str | None = None) -> None:
        """Wrong data that can still be represented (logged when loading)."""
        self._add(Problem(ERROR, message, _s(file), image, item))

    def warning(self, message: str, file: Any = None, image: str | int | None = None, item: str | None = None) -> None:
        """Suspicious data (logged when loading)."""
        self._add(Problem(WARNING, message, _s(file), image, item))

    def finish(self) -> None:
        """Log how many problems were not logged one by one."""
        if self._not_logged:
            logger.warning(
                "... and %d more problems; run 'salrank data check' to list them all", self._not_logged
            )
            self._not_logged = 0

    @property
    def num_errors(self) -> int:
        return sum(p.severity == ERROR for p in self.problems)


def _s(path: Any) -> str | None:
    return None if path is None else str(path)


# ---------------------------------------------------------------------------------------------- values
def is_number(value: Any) -> bool:
    """A finite int/float (numpy scalars included), not a bool."""
    if isinstance(value, bool | np.bool_):
        return False
    if isinstance(value, int | np.integer):
        return True
    if isinstance(value, float | np.floating):
        return math.isfinite(float(value))
    return False


def plain_number(value: Any) -> int | float:
    """A numpy scalar as a Python int/float (ints stay ints)."""
    if isinstance(value, int | np.integer):
        return int(value)
    return float(value)


def dense_ranks(values: Sequence[float], descending: bool) -> list[int]:
    """Rank values to ranks 1..k (1 = most salient); equal values share a rank (dense ranking).

    ``descending=True`` when a larger value means more salient (SeqRank ``category_id``, ASSR
    ``rank_order``, IRSR ``rank``), ``False`` when smaller means earlier (PoseSOR visiting order).
    """
    levels = sorted(set(values), reverse=descending)
    index = {v: i + 1 for i, v in enumerate(levels)}
    return [index[v] for v in values]


def order_instances(instances: list[GTInstance]) -> list[GTInstance]:
    """Stable sort by rank: most salient first, ties keep file order (what the SeqRank mapper does)."""
    return sorted(instances, key=lambda inst: inst.rank if inst.rank is not None else math.inf)


def image_id_from_file_name(file_name: str) -> str:
    """``"a/b/COCO_val2014_000000000192.jpg"`` -> ``"COCO_val2014_000000000192"`` (any path separator)."""
    base = file_name.replace("\\", "/").rsplit("/", 1)[-1]
    stem, dot, ext = base.rpartition(".")
    return stem if dot and stem and "/" not in ext else base


def coco_number(image_id: str) -> int | None:
    """The number at the end of a COCO-style name (``COCO_val2014_000000000192`` -> 192), if any."""
    digits = ""
    for ch in reversed(image_id):
        if not ch.isdigit():
            break
        digits = ch + digits
    return int(digits) if digits else None


# ---------------------------------------------------------------------------------------------- segmentation
def parse_segmentation(
    seg: Any, reporter: Reporter, file: Any, image: str | int | None, item: str | None, *, from_json: bool = False
) -> Polygons | RLE | None:
    """Validate a COCO ``segmentation`` from a file and return it in a form salrank rasterises.

    Accepts polygons ``[[x, y, ...], ...]``, a single flat polygon ``[x, y, ...]`` (warned, wrapped),
    compressed RLE (``str``/``bytes`` counts) and uncompressed RLE (list counts). Returns ``None``
    (after a fatal report) when it is none of these. ``from_json``: the value comes from JSON, so its
    numbers are plain Python numbers and polygon lists can be kept without copying.
    """
    if isinstance(seg, dict):
        size = seg.get("size")
        counts = seg.get("counts")
        ok_size = isinstance(size, list | tuple) and len(size) == 2 and all(is_number(v) and int(v) >= 0 for v in size)
        ok_counts = isinstance(counts, str | bytes) or (
            isinstance(counts, list | tuple) and all(is_number(v) for v in counts)
        )
        if not (ok_size and ok_counts):
            reporter.fatal("segmentation is a dict but not a COCO RLE ({'size': [H, W], 'counts': ...})", file, image, item)
            return None
        rle = dict(seg)
        rle["size"] = [int(size[0]), int(size[1])]
        if isinstance(counts, tuple | list):
            rle["counts"] = [int(v) for v in counts]
        return rle
    if isinstance(seg, np.ndarray):
        seg = seg.tolist()
    if not isinstance(seg, list | tuple):
        reporter.fatal(f"segmentation must be polygons or an RLE, got {type(seg).__name__}", file, image, item)
        return None
    if len(seg) and all(is_number(v) for v in seg):
        reporter.warning("segmentation is one flat polygon instead of a list of polygons", file, image, item)
        seg = [seg]
    polygons: Polygons = []
    for k, poly in enumerate(seg):
        arr = np.asarray(poly) if isinstance(poly, list | tuple | np.ndarray) else None
        if arr is None or arr.ndim != 1 or arr.dtype.kind not in "iuf" or (arr.dtype.kind == "f" and not np.isfinite(arr).all()):
            reporter.fatal(f"polygon {k} is not a list of numbers", file, image, item)
            return None
        # a list parsed from JSON holds plain numbers and is kept as it is (ints stay ints); anything
        # from a pickle may hold numpy values and is converted
        polygons.append(poly if from_json and isinstance(poly, list) else arr.tolist())
    return polygons


def parse_bbox(bbox: Any, reporter: Reporter, file: Any, image: str | int | None, item: str | None) -> list[float] | None:
    """Four finite numbers, or ``None`` (with a warning when present but malformed)."""
    if bbox is None:
        return None
    if isinstance(bbox, np.ndarray):
        bbox = bbox.reshape(-1).tolist()
    if isinstance(bbox, list | tuple) and len(bbox) == 4 and all(is_number(v) for v in bbox):
        return [plain_number(v) for v in bbox]
    reporter.warning(f"bbox {bbox!r} is not 4 numbers; ignored", file, image, item)
    return None


def parse_keypoints(kp: Any, reporter: Reporter, file: Any, image: str | int | None, item: str | None) -> np.ndarray | None:
    """51 numbers (17 x [x, y, v]) -> ``float32`` ``(17, 3)``; ``None`` when absent or malformed (warned)."""
    if kp is None:
        return None
    arr = np.asarray(kp, dtype=object).reshape(-1)
    if arr.size != NUM_KEYPOINTS * 3 or not all(is_number(v) for v in arr):
        reporter.warning(f"keypoints must be {NUM_KEYPOINTS * 3} numbers (17 x [x, y, v]); ignored", file, image, item)
        return None
    return arr.astype(np.float32).reshape(NUM_KEYPOINTS, 3)


def segmentation_size(seg: Polygons | RLE) -> tuple[int, int] | None:
    """The ``(H, W)`` an RLE declares; ``None`` for polygons."""
    if isinstance(seg, dict):
        h, w = seg["size"]
        return int(h), int(w)
    return None


def check_rle_size(inst: GTInstance, image: GTImage, reporter: Reporter, file: Any, item: str) -> bool:
    """Report (fatal) an RLE whose size differs from the image; ``True`` when the size is fine."""
    size = segmentation_size(inst.segmentation)
    if size is not None and size != (image.height, image.width):
        reporter.fatal(
            f"mask size {size[0]}x{size[1]} differs from the image size {image.height}x{image.width}",
            file,
            image.image_id,
            item,
        )
        return False
    return True


# ---------------------------------------------------------------------------------------------- image files
def image_size(path: Path) -> tuple[int, int] | None:
    """``(H, W)`` from an image file's header (fast; no decoding); ``None`` when missing or unreadable.

    The stored pixel size is returned, without EXIF rotation, because that is what the field's
    annotation files and loaders (PIL ``Image.open``) use.
    """
    from PIL import Image

    try:
        with Image.open(path) as img:
            w, h = img.size
        return int(h), int(w)
    except (OSError, ValueError, SyntaxError):
        return None


def find_file(folder: Path | None, stem: str, extensions: Iterable[str] = (".jpg", ".jpeg", ".png")) -> Path | None:
    """The first ``folder/stem<ext>`` that exists."""
    if folder is None:
        return None
    for ext in extensions:
        p = folder / f"{stem}{ext}"
        if p.is_file():
            return p
    return None


def first_existing_dir(candidates: Iterable[Path]) -> Path | None:
    for c in candidates:
        if c.is_dir():
            return c
    return None


# ---------------------------------------------------------------------------------------------- writing
def write_file(path: Path, data: bytes) -> None:
    """Write one of many small files atomically (temp file + ``os.replace``) without an ``fsync`` per file.

    Layouts such as ASSR's have two files per image; an ``fsync`` each made writing a test split take
    minutes. A crash can leave a file missing or empty, never half-replaced under its final name.
    """
    import tempfile

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_json_compact(path: Path, data: Any) -> None:
    """Write a (large) JSON file atomically, encoded in one go by the C encoder (``json.dump`` to a file
    goes through the much slower pure-Python chunked encoder)."""
    import json

    from salrank.utils.io import write_bytes

    write_bytes(path, json.dumps(data).encode("utf-8"))


def refuse_overwrite(paths: Iterable[Path], overwrite: bool) -> None:
    """Raise :class:`InputError` listing the files that exist, unless ``overwrite``."""
    if overwrite:
        return
    existing = [p for p in paths if p.exists()]
    if existing:
        shown = ", ".join(str(p) for p in existing[:5]) + (f" and {len(existing) - 5} more" if len(existing) > 5 else "")
        raise InputError(f"refusing to overwrite existing files ({shown}); pass overwrite=True / --overwrite", existing[0])


def transfer_images(
    dataset_images: Sequence[GTImage], src_root: Path | None, dst_root: Path, mode: str, notes: list[str], *, flat: bool = True
) -> None:
    """Copy or symlink the images of a dataset into a new layout (``mode``: ``none``, ``copy``, ``link``).

    ``flat``: put every image directly in ``dst_root`` (the layouts that name images ``<id>.jpg``);
    otherwise keep a relative ``file_name``'s sub-folders (PoseSOR re-written as PoseSOR).
    """
    if mode == "none":
        return
    if mode not in ("copy", "link"):
        raise ValueError(f"images must be 'none', 'copy' or 'link', got {mode!r}")
    if src_root is None:
        raise InputError("the source dataset has no image folder, so its images cannot be copied or linked")
    missing = 0
    for img in dataset_images:
        src = src_root / img.file_name
        rel = Path(img.file_name)
        keep_folders = not flat and not rel.is_absolute() and ".." not in rel.parts
        dst = dst_root / (rel if keep_folders else rel.name)
        if not src.is_file():
            missing += 1
            continue
        dst.parent.mkdir(parents=True, exist_ok=True)
        if dst.exists() or dst.is_symlink():
            dst.unlink()
        if mode == "copy":
            shutil.copy2(src, dst)
        else:
            os.symlink(src.resolve(), dst)
    if missing:
        notes.append(f"{missing} image files were not found under {src_root} and were not {mode}ed")


def output_file_name(img: GTImage, new_stem_ext: str = ".jpg") -> str:
    """The image's file name without folders (layouts that fix the extension use ``<id>.jpg``)."""
    name = Path(img.file_name.replace("\\", "/")).name
    return name or f"{img.image_id}{new_stem_ext}"


def polygons_for_official_loader(inst: GTInstance, image: GTImage) -> tuple[Polygons, bool]:
    """Integer polygons for formats whose official loaders rasterise with ``cv2.fillPoly`` (SeqRank, PoseSOR).

    ``cv2.fillPoly`` rejects non-integer vertices, so float vertices are truncated toward zero, which
    is exactly what salrank's own rasteriser does (the salrank mask does not change). An RLE is
    traced into its outer contours (``cv2.findContours``), which loses holes. Returns the polygons and
    whether anything was changed.
    """
    from salrank.utils.masks import mask_to_polygons, segmentation_to_mask

    seg = inst.segmentation
    if isinstance(seg, dict):
        mask = segmentation_to_mask(seg, image.height, image.width)
        return [[int(v) for v in poly] for poly in mask_to_polygons(mask)], True
    changed = False
    out: Polygons = []
    for poly in seg:
        ints = []
        for v in poly:
            iv = int(v)
            changed |= iv != v
            ints.append(iv)
        out.append(ints)
    return out, changed
