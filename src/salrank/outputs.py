"""The files of a ``salrank predict`` run: where each picture goes, writing them, and the run manifest.

Two layouts (``OutputOptions.layout``):

``by-kind`` (default): one folder per kind of output, one file per image in each, so that a folder is
    directly what other tools read (``salrank eval --pred OUT/json`` or ``--pred OUT/rank_maps``)::

        OUT/manifest.json             the run: model, its source, settings, every image and its outputs
        OUT/json/<name>.json          the per-image salrank JSON (COCO RLE, rank, scores, boxes, keypoints)
        OUT/colormaps/<name>.png      the official rank colour map, at the image's size
        OUT/overlays/<name>.jpg       the photo with rank colours, outlines, numbers and the model's name
        OUT/rank_maps/<name>.png      the ASSR grey rank map (255/229/204/178/153 for ranks 1-5)
        OUT/skeletons/<name>.png      colour map + predicted skeletons (models with keypoints)
        OUT/masks/<name>/rank<r>.png  per-object binary masks (0/255), on request

``per-image``: one folder per image, handy for a few photos::

        OUT/<name>/result.json, colormap.png, overlay.jpg, rank_map.png, skeleton.png, masks/rank<r>.png

Every file is written atomically. Nothing that exists is replaced unless ``overwrite`` is set:
:func:`existing_outputs` lists what a run would replace, and the ``predict`` command refuses to start
when that list is not empty. The manifest is the exception: a second run into the same folder adds its
images and its run record to the existing manifest (so ``salrank report`` shows both).
"""

from __future__ import annotations

import datetime as _dt
import logging
import os
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from salrank.errors import InputError
from salrank.structures import RankedInstances
from salrank.utils.io import read_json, write_bytes, write_json

logger = logging.getLogger(__name__)

MANIFEST_NAME = "manifest.json"
MANIFEST_FORMAT = "salrank-predict-run/1"
LAYOUTS = ("by-kind", "per-image")
OUTPUT_KINDS = ("json", "colormap", "overlay", "rank_map", "skeleton", "masks")
"""Kinds of per-image output, in the order they are written."""

_BY_KIND_FOLDERS = {
    "json": "json",
    "colormap": "colormaps",
    "overlay": "overlays",
    "rank_map": "rank_maps",
    "skeleton": "skeletons",
    "masks": "masks",
}


@dataclass
class OutputOptions:
    """Which outputs a run writes, and how."""

    json: bool = True
    """The per-image salrank JSON."""
    colormap: bool = True
    """The official rank colour map."""
    overlay: bool = True
    """The photo with rank colours, outlines and numbers."""
    rank_map: bool = True
    """The grey rank map."""
    skeleton: bool = True
    """Colour map + skeletons; written only for results with keypoints."""
    masks: bool = False
    """One binary PNG per object."""
    layout: str = "by-kind"
    """``"by-kind"`` or ``"per-image"`` (see the module docstring)."""
    rank_map_style: str = "assr"
    """``"assr"`` (top 5, ASSR grey levels) or ``"seqrank"`` (every object)."""
    overlay_format: str = "jpg"
    """``"jpg"`` (small) or ``"png"`` (lossless)."""
    show_scores: bool = False
    """Write each object's rank score under its number in the overlay."""
    caption: bool = True
    """A band under the overlay naming the model."""
    overwrite: bool = False

    def __post_init__(self) -> None:
        if self.layout not in LAYOUTS:
            raise InputError(f"unknown output layout {self.layout!r}; choose one of {', '.join(LAYOUTS)}")
        if self.overlay_format not in ("jpg", "png"):
            raise InputError(f"overlay format must be jpg or png, not {self.overlay_format!r}")
        if self.rank_map_style not in ("assr", "seqrank"):
            raise InputError(f"rank map style must be assr or seqrank, not {self.rank_map_style!r}")

    def kinds(self) -> list[str]:
        """The kinds switched on, in :data:`OUTPUT_KINDS` order."""
        return [k for k in OUTPUT_KINDS if getattr(self, k)]


def _extension(kind: str, options: OutputOptions) -> str:
    if kind == "json":
        return ".json"
    if kind == "overlay":
        return "." + options.overlay_format
    return ".png"


def output_paths(out_dir: str | os.PathLike[str], name: str, options: OutputOptions) -> dict[str, Path]:
    """Where each output kind of image ``name`` goes (``masks`` is a folder).

    Every kind switched on is listed, ``skeleton`` too (it is only written for results with keypoints).
    """
    root = Path(out_dir)
    paths: dict[str, Path] = {}
    for kind in options.kinds():
        if options.layout == "by-kind":
            folder = root / _BY_KIND_FOLDERS[kind]
            paths[kind] = folder / name if kind == "masks" else folder / f"{name}{_extension(kind, options)}"
        else:
            stem = "result" if kind == "json" else kind
            paths[kind] = root / name / ("masks" if kind == "masks" else f"{stem}{_extension(kind, options)}")
    return paths


def existing_outputs(out_dir: str | os.PathLike[str], names: Iterable[str], options: OutputOptions) -> list[Path]:
    """The outputs of ``names`` that already exist (a non-empty masks folder counts)."""
    found = []
    for name in names:
        for kind, path in output_paths(out_dir, name, options).items():
            if kind == "masks":
                if path.is_dir() and any(path.iterdir()):
                    found.append(path)
            elif path.exists():
                found.append(path)
    return found


def encode_image(image: np.ndarray, suffix: str, quality: int = 92) -> bytes:
    """PNG or JPEG bytes of an RGB ``(H, W, 3)`` or grey ``(H, W)`` ``uint8`` array."""
    array = np.ascontiguousarray(image)
    if array.ndim == 3:
        array = cv2.cvtColor(array, cv2.COLOR_RGB2BGR)
    params = [cv2.IMWRITE_JPEG_QUALITY, quality] if suffix in (".jpg", ".jpeg") else [cv2.IMWRITE_PNG_COMPRESSION, 3]
    ok, buf = cv2.imencode(suffix, array, params)
    if not ok:  # pragma: no cover - only for arrays cv2 cannot encode
        raise ValueError(f"could not encode an array of shape {array.shape} as {suffix}")
    return buf.tobytes()


def write_image(path: str | os.PathLike[str], image: np.ndarray) -> None:
    """Write an RGB or grey ``uint8`` array as PNG/JPEG (by the suffix), atomically."""
    p = Path(path)
    write_bytes(p, encode_image(image, p.suffix.lower()))


def write_outputs(
    result: RankedInstances,
    image: np.ndarray | None,
    out_dir: str | os.PathLike[str],
    options: OutputOptions | None = None,
    *,
    name: str | None = None,
    source: str | None = None,
) -> dict[str, Path | list[Path]]:
    """Write the outputs of one image; returns ``{kind: path}`` (``masks``: the list of mask files).

    Args:
        result: the image's ranked objects.
        image: the RGB photo (needed for the overlay; without it the overlay is skipped).
        out_dir: the run's output folder.
        options: what to write (:class:`OutputOptions`).
        name: the output name (default: ``result.image_name``).
        source: the input file, recorded in the JSON as ``"source"``.

    Raises:
        InputError: an output exists and ``options.overwrite`` is not set.
    """
    from salrank.viz.render import render, skeleton_composite

    options = options or OutputOptions()
    name = name or result.image_name
    paths = output_paths(out_dir, name, options)
    if not options.overwrite:
        existing = existing_outputs(out_dir, [name], options)
        if existing:
            raise InputError("refusing to overwrite an existing output; pass overwrite=True (--overwrite)", existing[0])
    written: dict[str, Path | list[Path]] = {}
    for kind, path in paths.items():
        if kind == "json":
            data = result.to_dict()
            data["image"] = name
            if source is not None:
                data["source"] = source
            write_json(path, data, indent=None)
        elif kind == "colormap":
            write_image(path, render(result, kind="colormap"))
        elif kind == "overlay":
            if image is None:
                continue
            write_image(path, render(result, image, "overlay", caption=options.caption, show_scores=options.show_scores))
        elif kind == "rank_map":
            from salrank.io.rank_maps import render_rank_map

            write_image(path, render_rank_map(result, options.rank_map_style))
        elif kind == "skeleton":
            composite = skeleton_composite(result, image)
            if composite is None:
                continue
            write_image(path, composite)
        elif kind == "masks":
            written[kind] = write_masks(result, path)
            continue
        written[kind] = path
    return written


def write_masks(result: RankedInstances, folder: str | os.PathLike[str]) -> list[Path]:
    """``folder/rank<r>.png``: each object's mask as a 0/255 grey PNG (stale ``rank*.png`` files are removed)."""
    root = Path(folder)
    root.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(len(result)):
        path = root / f"rank{i + 1}.png"
        write_image(path, result.mask(i).astype(np.uint8) * 255)
        paths.append(path)
    keep = {p.name for p in paths}
    for stale in root.glob("rank*.png"):
        if stale.name not in keep:
            stale.unlink()
    return paths


# ----------------------------------------------------------------------------------------------------
# Names
# ----------------------------------------------------------------------------------------------------


def output_names(files: list[Path], roots: Mapping[Path, Path] | None = None) -> list[str]:
    """A unique output name for each input file: its stem, or, where stems collide, its path.

    Two ``photo.jpg`` in different folders (or ``photo.jpg`` and ``photo.png``) would overwrite each
    other's outputs; they get ``<folder>__photo`` (the path below the input folder they were found in,
    ``/`` replaced by ``__``), extended until the names differ. Names are what predictions are matched
    to ground truth on, so a collision is logged.
    """
    stems = [f.stem for f in files]
    counts: dict[str, int] = {}
    for s in stems:
        counts[s] = counts.get(s, 0) + 1
    names = []
    taken: set[str] = {s for s in stems if counts[s] == 1}
    for f, stem in zip(files, stems):
        if counts[stem] == 1:
            names.append(stem)
            continue
        base = roots.get(f) if roots else None
        try:
            rel = f.relative_to(base) if base is not None else f
        except ValueError:
            rel = f
        parts = [p for p in rel.with_suffix("").parts if p not in ("/", "\\", "..", ".")]
        suffix = f.suffix.lower().lstrip(".")
        candidate = "__".join(parts) or stem
        if candidate in taken:
            candidate = f"{candidate}__{suffix}" if suffix else candidate
        n = 2
        unique = candidate
        while unique in taken:
            unique = f"{candidate}~{n}"
            n += 1
        taken.add(unique)
        names.append(unique)
        logger.warning("%s: another input has the same name %r; its outputs are named %r", f, stem, unique)
    return names


# ----------------------------------------------------------------------------------------------------
# The run manifest
# ----------------------------------------------------------------------------------------------------


@dataclass
class ImageRecord:
    """One input image of a run, as the manifest records it."""

    name: str
    source: str
    status: str = "ok"
    """``"ok"`` or ``"failed"``."""
    error: str | None = None
    height: int | None = None
    width: int | None = None
    objects: int | None = None
    ranks: list[dict[str, Any]] = field(default_factory=list)
    """Per object: ``rank``, ``saliency``, ``score`` and, when the model gives it, ``kind``."""
    outputs: dict[str, Any] = field(default_factory=dict)
    """``{kind: path relative to the output folder}``."""
    seconds: float | None = None
    model: str | None = None
    run: int = 0
    """Index of the run (in the manifest's ``runs``) that produced it."""

    @classmethod
    def from_result(
        cls, name: str, source: str, result: RankedInstances, outputs: Mapping[str, Any], out_dir: Path, seconds: float | None
    ) -> ImageRecord:
        kinds = result.extras.get("kinds")
        ranks = []
        for i, inst in enumerate(result):
            item: dict[str, Any] = {"rank": inst.rank, "saliency": round(inst.saliency, 4), "score": round(inst.score, 4)}
            if isinstance(kinds, list) and i < len(kinds):
                item["kind"] = str(kinds[i])
            ranks.append(item)
        return cls(
            name=name,
            source=source,
            height=result.height,
            width=result.width,
            objects=len(result),
            ranks=ranks,
            outputs={k: _relative(v, out_dir) for k, v in outputs.items()},
            seconds=None if seconds is None else round(seconds, 4),
            model=result.model,
        )


def _relative(value: Any, root: Path) -> Any:
    if isinstance(value, list):
        return [_relative(v, root) for v in value]
    try:
        return Path(value).relative_to(root).as_posix()
    except ValueError:
        return str(value)


def now_iso() -> str:
    """The local time as ISO 8601 with its UTC offset, to the second."""
    return _dt.datetime.now().astimezone().isoformat(timespec="seconds")


@dataclass
class RunRecord:
    """One ``salrank predict`` invocation: the model, where it came from, and the settings."""

    model: dict[str, Any]
    """:meth:`salrank.ranker.Ranker.describe` of the model."""
    settings: dict[str, Any]
    started: str = field(default_factory=lambda: now_iso())
    finished: str | None = None
    command: list[str] | None = None
    salrank_version: str = ""
    summary: dict[str, Any] = field(default_factory=dict)


def read_manifest(out_dir: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The manifest of a predict run folder, or ``None`` when there is none."""
    path = Path(out_dir) / MANIFEST_NAME
    if not path.is_file():
        return None
    data = read_json(path)
    if not isinstance(data, dict) or data.get("format") != MANIFEST_FORMAT:
        raise InputError(f"not a salrank predict manifest (expected format {MANIFEST_FORMAT!r})", path)
    return data


def write_manifest(out_dir: str | os.PathLike[str], run: RunRecord, images: list[ImageRecord], options: OutputOptions) -> Path:
    """Write (or extend) ``OUT/manifest.json`` with this run and its images.

    Images of earlier runs into the same folder are kept unless this run produced them again.
    """
    from salrank import __version__

    root = Path(out_dir)
    previous = None
    try:
        previous = read_manifest(root)
    except InputError as exc:
        logger.warning("%s; it is replaced", exc)
    runs: list[dict[str, Any]] = list(previous.get("runs", [])) if previous else []
    old_images: list[dict[str, Any]] = list(previous.get("images", [])) if previous else []
    run.salrank_version = run.salrank_version or __version__
    index = len(runs)
    runs.append(asdict(run))
    new_names = {img.name for img in images}
    merged = [img for img in old_images if img.get("name") not in new_names]
    for img in images:
        img.run = index
        merged.append(asdict(img))
    data = {
        "format": MANIFEST_FORMAT,
        "layout": options.layout,
        "outputs": options.kinds(),
        "runs": runs,
        "images": merged,
    }
    path = root / MANIFEST_NAME
    write_json(path, data)
    return path
