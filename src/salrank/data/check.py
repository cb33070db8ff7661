"""``salrank data check``: validate a ground-truth dataset and summarise it.

:func:`check_dataset` reads a dataset with a collecting :class:`~salrank.data.formats.Reporter` (so
one bad annotation does not hide the next) and then looks at every image and object:

========================================= ========
check                                      severity
========================================= ========
file unreadable / not a known format       error
image file missing or unreadable           error
image size differs from the annotation     error
duplicate image / duplicate annotation id  error
polygon with < 3 points or odd length      error
polygon vertex > 1 px outside the image    error
mask size differs from the image           error
empty mask                                 error
rank value out of range (ASSR > 1.0,
PoseSOR visiting order < 1, IRSR < 0)      error
two objects with identical masks           warning
PoseSOR visiting orders not 1..n           warning
image without any salient object           warning
labelled keypoint outside the image        warning
========================================= ========

The result is a :class:`CheckReport` with a :class:`DatasetSummary` and every :class:`Problem`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from salrank.data.formats import annotation_file, detect_dataset, read_source
from salrank.data.formats._common import ERROR, WARNING, Problem, Reporter, image_size
from salrank.errors import InputError
from salrank.structures import GTImage, GTInstance, SORDataset

#: Vertices may lie this many pixels outside the image before a polygon is reported.
POLYGON_TOLERANCE = 1.0


@dataclass
class DatasetSummary:
    """Counts that describe a dataset."""

    format: str
    split: str | None
    images: int
    instances: int
    """Salient (ranked) objects."""
    unranked: int
    """Annotated objects that are not salient."""
    instances_per_image_min: int
    instances_per_image_mean: float
    instances_per_image_max: int
    rank_histogram: dict[int, int]
    """Rank (1 = most salient) -> number of objects with that rank."""
    images_without_gt: int
    """Images with no salient object."""
    image_root: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def summarize(dataset: SORDataset) -> DatasetSummary:
    """Count images, objects per image and ranks."""
    counts = [len(img.instances) for img in dataset.images]
    hist: Counter[int] = Counter(inst.rank for img in dataset.images for inst in img.instances if inst.rank is not None)
    return DatasetSummary(
        format=dataset.format,
        split=dataset.split,
        images=len(dataset.images),
        instances=sum(counts),
        unranked=sum(len(img.unranked) for img in dataset.images),
        instances_per_image_min=min(counts, default=0),
        instances_per_image_mean=float(np.mean(counts)) if counts else 0.0,
        instances_per_image_max=max(counts, default=0),
        rank_histogram=dict(sorted(hist.items())),
        images_without_gt=sum(1 for c in counts if c == 0),
        image_root=None if dataset.image_root is None else str(dataset.image_root),
    )


@dataclass
class CheckReport:
    """The outcome of :func:`check_dataset`."""

    path: str
    summary: DatasetSummary | None
    """``None`` when the dataset could not be read at all."""
    problems: list[Problem] = field(default_factory=list)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == ERROR]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == WARNING]

    @property
    def ok(self) -> bool:
        """No problem of severity ``error``."""
        return not self.errors

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "summary": None if self.summary is None else self.summary.to_dict(),
            "errors": len(self.errors),
            "warnings": len(self.warnings),
            "problems": [p.to_dict() for p in self.problems],
        }


def _item(dataset: SORDataset, inst: GTInstance) -> str:
    return f"{'object' if dataset.format == 'assr' else 'annotation'} {inst.id}"


def _check_polygons(inst: GTInstance, img: GTImage, add: Any, item: str) -> None:
    seg = inst.segmentation
    if isinstance(seg, dict):
        return
    if not seg:
        add(ERROR, "segmentation has no polygon", item)
        return
    for k, poly in enumerate(seg):
        label = f"polygon {k}" if len(seg) > 1 else "polygon"
        if len(poly) % 2:
            add(ERROR, f"{label} has an odd number of coordinates ({len(poly)})", item)
            continue
        if len(poly) < 6:
            add(ERROR, f"{label} is degenerate: {len(poly) // 2} points (a polygon needs at least 3)", item)
            continue
        xy = np.asarray(poly, np.float64).reshape(-1, 2)
        outside = (
            (xy[:, 0] < -POLYGON_TOLERANCE)
            | (xy[:, 0] > img.width + POLYGON_TOLERANCE)
            | (xy[:, 1] < -POLYGON_TOLERANCE)
            | (xy[:, 1] > img.height + POLYGON_TOLERANCE)
        )
        if outside.any():
            x, y = xy[np.argmax(outside)]
            add(
                ERROR,
                f"{label} has {int(outside.sum())} vertices outside the {img.width}x{img.height} image (e.g. x={x:g}, y={y:g})",
                item,
            )


def _check_keypoints(inst: GTInstance, img: GTImage, add: Any, item: str) -> None:
    kp = inst.keypoints
    if kp is None:
        return
    labelled = kp[:, 2] > 0
    outside = labelled & (
        (kp[:, 0] < -POLYGON_TOLERANCE)
        | (kp[:, 0] > img.width + POLYGON_TOLERANCE)
        | (kp[:, 1] < -POLYGON_TOLERANCE)
        | (kp[:, 1] > img.height + POLYGON_TOLERANCE)
    )
    if outside.any():
        add(WARNING, f"{int(outside.sum())} labelled keypoints lie outside the image", item)


def check_loaded(dataset: SORDataset, ann_file: Path | str, *, check_images: bool = True, progress: bool = False) -> list[Problem]:
    """The per-image checks of :func:`check_dataset` on an already loaded dataset."""
    from salrank.utils.masks import segmentation_to_mask

    problems: list[Problem] = []
    file = str(ann_file)

    # duplicates over the whole dataset
    for image_id, n in Counter(img.image_id for img in dataset.images).items():
        if n > 1:
            problems.append(Problem(ERROR, f"duplicate image: it appears {n} times", file, image_id))
    if dataset.format == "posesor":
        ids = Counter(inst.id for img in dataset.images for inst in img.instances + img.unranked if inst.id is not None)
        for ann_id, n in ids.items():
            if n > 1:
                problems.append(Problem(ERROR, f"duplicate annotation id (used {n} times)", file, None, f"annotation {ann_id}"))

    if check_images and dataset.image_root is None:
        problems.append(Problem(WARNING, "image folder not found next to the annotations, so image files were not checked (use --no-images to skip this check)", file))

    iterator: Any = dataset.images
    if progress:
        from tqdm import tqdm

        iterator = tqdm(dataset.images, desc="checking", unit="image")
    for img in iterator:

        def add(severity: str, message: str, item: str | None = None, _img: GTImage = img) -> None:
            problems.append(Problem(severity, message, file, _img.image_id, item))

        if check_images and dataset.image_root is not None:
            path = dataset.image_root / img.file_name
            if not path.is_file():
                problems.append(Problem(ERROR, f"image file not found: {path}", file, img.image_id))
            else:
                size = image_size(path)
                if size is None:
                    problems.append(Problem(ERROR, "image file is not a readable image", str(path), img.image_id))
                elif size != (img.height, img.width):
                    add(ERROR, f"annotated size {img.height}x{img.width} differs from the image file's {size[0]}x{size[1]}")

        if not img.instances:
            add(WARNING, "no salient object (the SeqRank protocol cannot score an image without GT)")

        by_area: dict[int, list[tuple[GTInstance, np.ndarray]]] = {}
        for inst in img.instances + img.unranked:
            item = _item(dataset, inst)
            _check_polygons(inst, img, add, item)
            _check_keypoints(inst, img, add, item)
            try:
                mask = segmentation_to_mask(inst.segmentation, img.height, img.width)
            except ValueError as exc:  # RLE of another size (normally caught while reading)
                add(ERROR, str(exc), item)
                continue
            area = int(np.count_nonzero(mask))
            if area == 0:
                add(ERROR, "empty mask (the segmentation covers no pixel)", item)
                continue
            same_area = by_area.setdefault(area, [])
            twin = next((other for other, m in same_area if np.array_equal(m, mask)), None)
            if twin is not None:
                add(WARNING, f"mask identical to that of {_item(dataset, twin)}", item)
            else:
                same_area.append((inst, mask))

        if dataset.format == "posesor" and img.instances:
            orders = sorted(inst.rank_value for inst in img.instances if inst.rank_value is not None)  # type: ignore[type-var]
            expected = list(range(1, len(img.instances) + 1))
            if orders != expected:
                shown = ", ".join(f"{v:g}" for v in orders[:10]) + (", ..." if len(orders) > 10 else "")
                add(WARNING, f"visiting orders (category_id) are {shown}; expected 1..{len(img.instances)}")
    return problems


def check_dataset(
    path: str | Path,
    split: str | None = None,
    format: str | None = None,
    *,
    check_images: bool = True,
    progress: bool = False,
) -> CheckReport:
    """Validate the dataset at ``path`` and summarise it (see the module docstring for the checks).

    Problems that stop the dataset from being read at all (an unknown format, a truncated file) are
    returned as a single error with no summary; nothing is raised for problems in the data.
    """
    reporter = Reporter(collect=True)
    try:
        source = detect_dataset(path, split, format)
        dataset = read_source(source, reporter)
    except InputError as exc:
        problem = Problem(ERROR, exc.message, exc.path, exc.image, None if exc.item is None else str(exc.item))
        return CheckReport(path=str(path), summary=None, problems=reporter.problems + [problem])
    problems = reporter.problems + check_loaded(dataset, annotation_file(source), check_images=check_images, progress=progress)
    return CheckReport(path=str(path), summary=summarize(dataset), problems=problems)
