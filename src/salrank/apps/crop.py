"""Content-aware cropping: cut a photo to a target aspect ratio or size and keep its most salient objects.

This is the application the PPA paper names for salient object ranking: a crop should keep what
people look at first. :func:`plan_crop` decides the rectangle from a ranked result; :func:`crop_file`
applies it to the original file, keeping its format.

How the rectangle is chosen (``plan_crop``):

1. **Size.** ``mode="fit"`` (default): the largest rectangle of the target aspect ratio inside the
   photo (one side is the photo's full width or height), so as few pixels as possible are lost.
   ``mode="tight"``: the smallest rectangle of the aspect ratio around the kept objects and their
   margins (a zoom on them), never smaller than the requested output size when one is given, never
   larger than the ``fit`` one.
2. **What is kept.** The ``top_k`` most salient objects are taken in rank order; each joins the kept
   set if the box around all kept objects (plus a margin of ``margin`` x the crop's shorter side,
   reduced when only a smaller one fits) still fits in the crop; an object that does not fit is
   dropped and the next rank is tried, so the crop keeps the most salient objects that can be kept
   together. Rank 1 is always aimed at: when it is larger than the crop, the crop covers as much of it
   as possible.
3. **Where.** Among the positions that contain the kept objects with their margins, the crop
   minimises a cost: objects that are not kept should not be cut in half (cost: the rank score x the
   smaller of the parts inside and outside), and the kept objects should sit in the middle (cost:
   the squared distance between the crop's centre and the kept objects' mask centroid, weighted by
   rank score, relative to the crop size).
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from salrank.errors import InputError
from salrank.structures import RankedInstances

logger = logging.getLogger(__name__)

MODES = ("fit", "tight")
_SAVE_FORMATS = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp", "BMP": ".bmp", "TIFF": ".tif"}


def parse_aspect(text: str) -> float:
    """``"16:9"``, ``"4/5"``, ``"1.91"`` or ``"1"`` -> width / height."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(?:[:/x]\s*(\d+(?:\.\d+)?))?\s*", text)
    if not match:
        raise InputError(f"not an aspect ratio: {text!r} (use W:H such as 16:9, or a number such as 1.5)")
    w = float(match.group(1))
    h = float(match.group(2)) if match.group(2) else 1.0
    if w <= 0 or h <= 0 or not (0.05 <= w / h <= 20):
        raise InputError(f"aspect ratio {text!r} is out of range (between 1:20 and 20:1)")
    return w / h


def parse_size(text: str) -> tuple[int, int]:
    """``"1080x1350"`` -> ``(1080, 1350)`` (width, height)."""
    match = re.fullmatch(r"\s*(\d+)\s*[x*]\s*(\d+)\s*", text.lower())
    if not match:
        raise InputError(f"not a size: {text!r} (use WIDTHxHEIGHT such as 1080x1080)")
    w, h = int(match.group(1)), int(match.group(2))
    if not (1 <= w <= 20000 and 1 <= h <= 20000):
        raise InputError(f"size {text!r} is out of range")
    return w, h


@dataclass
class CropPlan:
    """Where to crop one photo, and what the crop keeps."""

    box: tuple[int, int, int, int]
    """``(x0, y0, x1, y1)`` in pixels of the upright photo (EXIF orientation applied); x1/y1 exclusive."""
    image_size: tuple[int, int]
    """``(width, height)`` of the upright photo."""
    kept: list[int] = field(default_factory=list)
    """Ranks (1 = most salient) wholly inside the crop, among the top ``k``."""
    dropped: list[int] = field(default_factory=list)
    """Ranks among the top ``k`` that could not be kept together with the more salient ones."""
    cut: list[int] = field(default_factory=list)
    """Ranks among the top ``k`` that the crop cuts (only rank 1, when it is larger than the crop)."""
    output_size: tuple[int, int] | None = None
    """``(width, height)`` the crop is resized to, when a size was asked for."""
    margin: float = 0.0
    """The margin used, as a fraction of the crop's shorter side."""

    @property
    def width(self) -> int:
        return self.box[2] - self.box[0]

    @property
    def height(self) -> int:
        return self.box[3] - self.box[1]

    def to_dict(self) -> dict[str, Any]:
        return {
            "box": list(self.box),
            "image_size": list(self.image_size),
            "crop_size": [self.width, self.height],
            "output_size": None if self.output_size is None else list(self.output_size),
            "kept": self.kept,
            "dropped": self.dropped,
            "cut": self.cut,
            "margin": round(self.margin, 4),
        }

    def describe(self) -> str:
        """One line for people: size, position and what is kept."""
        parts = [f"{self.width}x{self.height} at ({self.box[0]}, {self.box[1]})"]
        if self.output_size and self.output_size != (self.width, self.height):
            parts.append(f"resized to {self.output_size[0]}x{self.output_size[1]}")
        parts.append("keeps rank " + ", ".join(map(str, self.kept)) if self.kept else "keeps no object whole")
        if self.dropped:
            parts.append(
                "rank " + ", ".join(map(str, self.dropped)) + (" does" if len(self.dropped) == 1 else " do") + " not fit"
            )
        if self.cut:
            parts.append("rank " + ", ".join(map(str, self.cut)) + " is larger than the crop")
        return "; ".join(parts)


def _crop_dims(width: int, height: int, aspect: float) -> tuple[int, int]:
    """The largest ``(w, h)`` of ``aspect`` inside ``width x height``."""
    if width / height >= aspect:
        return max(1, min(width, int(round(height * aspect)))), height
    return width, max(1, min(height, int(round(width / aspect))))


def _union(boxes: np.ndarray) -> np.ndarray:
    return np.array([boxes[:, 0].min(), boxes[:, 1].min(), boxes[:, 2].max(), boxes[:, 3].max()], np.float64)


def _padded(box: np.ndarray, pad: float, width: int, height: int) -> np.ndarray:
    return np.array([max(0.0, box[0] - pad), max(0.0, box[1] - pad), min(width, box[2] + pad), min(height, box[3] + pad)])


def _fits(box: np.ndarray, cw: int, ch: int) -> bool:
    return box[2] - box[0] <= cw + 1e-6 and box[3] - box[1] <= ch + 1e-6


def _range(lo_needed: float, hi_needed: float, size: int, total: int) -> tuple[int, int]:
    """Offsets ``o`` with ``o <= lo_needed`` and ``o + size >= hi_needed`` inside ``[0, total - size]``."""
    lo = max(0, int(np.ceil(hi_needed - size - 1e-6)))
    hi = min(total - size, int(np.floor(lo_needed + 1e-6)))
    return (lo, hi) if lo <= hi else (0, total - size)


def _integral(mask: np.ndarray) -> np.ndarray:
    sat = np.zeros((mask.shape[0] + 1, mask.shape[1] + 1), np.int64)
    sat[1:, 1:] = mask.astype(np.int64).cumsum(0).cumsum(1)
    return sat


def _inside(sat: np.ndarray, xs: np.ndarray, ys: np.ndarray, cw: int, ch: int) -> np.ndarray:
    """Pixels of a mask inside the crop at every ``(ys[i], xs[j])`` offset, ``(len(ys), len(xs))``."""
    y0, x0 = ys[:, None], xs[None, :]
    return sat[y0 + ch, x0 + cw] - sat[y0, x0 + cw] - sat[y0 + ch, x0] + sat[y0, x0]


def _candidates(lo: int, hi: int, max_steps: int = 160) -> np.ndarray:
    if hi <= lo:
        return np.array([lo], np.int64)
    step = max(1, (hi - lo) // max_steps)
    values = np.arange(lo, hi + 1, step, dtype=np.int64)
    return values if values[-1] == hi else np.append(values, hi)


def plan_crop(
    result: RankedInstances,
    aspect: float | None = None,
    size: tuple[int, int] | None = None,
    *,
    top_k: int = 3,
    margin: float = 0.05,
    mode: str = "fit",
) -> CropPlan:
    """Choose the crop of a photo from its ranked objects (see the module docstring).

    Args:
        result: the photo's ranked objects (at the photo's size).
        aspect: target width / height (see :func:`parse_aspect`); taken from ``size`` when not given.
        size: ``(width, height)`` the crop is to be resized to; sets the aspect ratio.
        top_k: how many of the most salient objects to try to keep.
        margin: space kept around the objects, as a fraction of the crop's shorter side.
        mode: ``"fit"`` (largest crop) or ``"tight"`` (smallest crop around the kept objects).
    """
    if mode not in MODES:
        raise InputError(f"unknown crop mode {mode!r}; choose one of {', '.join(MODES)}")
    if aspect is None:
        if size is None:
            raise InputError("give a target aspect ratio or a size")
        aspect = size[0] / size[1]
    if top_k < 0 or not (0.0 <= margin < 0.5):
        raise InputError("top_k must be >= 0 and margin in [0, 0.5)")
    W, H = result.width, result.height
    fit_w, fit_h = _crop_dims(W, H, aspect)
    k = min(top_k, len(result))
    boxes = result.boxes[:k].astype(np.float64)
    boxes[:, [0, 2]] = np.clip(boxes[:, [0, 2]], 0, W)
    boxes[:, [1, 3]] = np.clip(boxes[:, [1, 3]], 0, H)

    # 1-2. the crop size and the kept set
    cw, ch = fit_w, fit_h
    kept: list[int] = []
    dropped: list[int] = []
    if mode == "fit":
        pad = margin * min(cw, ch)
        for i in range(k):
            trial = _union(boxes[kept + [i]])
            if i == 0 or _fits(trial, cw, ch):
                kept.append(i)
            else:
                dropped.append(i)
    else:
        for i in range(k):
            trial = _union(boxes[kept + [i]])
            tw, th = _aspect_box(trial, aspect, margin)
            if i == 0 or (tw <= fit_w and th <= fit_h):
                kept.append(i)
            else:
                dropped.append(i)
        if kept:
            tw, _ = _aspect_box(_union(boxes[kept]), aspect, margin)
            min_w = size[0] if size is not None else 16  # no enlarging when an output size is asked for
            cw = int(np.clip(round(max(tw, min_w)), min(16, fit_w), fit_w))
            ch = int(np.clip(round(cw / aspect), 1, fit_h))
            cw = min(fit_w, max(1, int(round(ch * aspect))))
        pad = margin * min(cw, ch)
    union = _union(boxes[kept]) if kept else np.array([0.0, 0.0, W, H])
    cut: list[int] = [] if not kept or _fits(union, cw, ch) else [1]

    # the margin that fits: the asked one, else less
    used_margin = 0.0
    padded = union
    for factor in (1.0, 0.5, 0.25, 0.0):
        candidate = _padded(union, pad * factor, W, H)
        if _fits(candidate, cw, ch):
            padded, used_margin = candidate, margin * factor
            break

    # 3. where: positions keeping the padded union, lowest cost
    if cut:
        x_lo, x_hi, y_lo, y_hi = 0, W - cw, 0, H - ch
    else:
        x_lo, x_hi = _range(padded[0], padded[2], cw, W)
        y_lo, y_hi = _range(padded[1], padded[3], ch, H)
    xs, ys = _candidates(x_lo, x_hi), _candidates(y_lo, y_hi)
    cost = np.zeros((len(ys), len(xs)))
    weights = np.clip(result.saliency, 0.05, None).astype(np.float64)
    if cut:  # rank 1 is larger than the crop: cover as much of it as possible
        mask = result.mask(0)
        cost -= 10.0 * _inside(_integral(mask), xs, ys, cw, ch) / max(1, int(mask.sum()))
    kept_set = set(kept)
    for j in range(min(len(result), 12)):
        if j in kept_set:
            continue
        mask = result.mask(j)
        area = int(mask.sum())
        if area == 0:
            continue
        frac = _inside(_integral(mask), xs, ys, cw, ch) / area
        cost += weights[j] * np.minimum(frac, 1.0 - frac)
    cx, cy = _weighted_centroid(result, kept, weights) if kept else (W / 2, H / 2)
    off_x = (xs[None, :] + cw / 2 - cx) / cw
    off_y = (ys[:, None] + ch / 2 - cy) / ch
    cost += 0.5 * (off_x**2 + off_y**2)
    iy, ix = np.unravel_index(int(np.argmin(cost)), cost.shape)
    x0, y0 = int(xs[ix]), int(ys[iy])
    box = (x0, y0, x0 + cw, y0 + ch)
    inside = [i for i in kept if not cut or i != 0]
    return CropPlan(
        box=box,
        image_size=(W, H),
        kept=[i + 1 for i in inside],
        dropped=[i + 1 for i in dropped],
        cut=cut,
        output_size=size,
        margin=used_margin,
    )


def _aspect_box(union: np.ndarray, aspect: float, margin: float) -> tuple[float, float]:
    """Width and height of the smallest ``aspect`` rectangle holding ``union`` with a margin around it."""
    w, h = union[2] - union[0], union[3] - union[1]
    w, h = max(w, h * aspect), max(h, w / aspect)
    grow = 1.0 / max(1e-6, 1.0 - 2.0 * margin)
    return w * grow, h * grow


def _weighted_centroid(result: RankedInstances, indices: list[int], weights: np.ndarray) -> tuple[float, float]:
    total, sx, sy = 0.0, 0.0, 0.0
    for i in indices:
        ys, xs = np.nonzero(result.mask(i))
        if len(xs) == 0:
            b = result.boxes[i]
            xs, ys = np.array([(b[0] + b[2]) / 2]), np.array([(b[1] + b[3]) / 2])
        w = float(weights[i])
        total += w
        sx += w * float(xs.mean())
        sy += w * float(ys.mean())
    return sx / total, sy / total


# ----------------------------------------------------------------------------------------------------
# Files
# ----------------------------------------------------------------------------------------------------


def crop_output_path(source: Path, out_dir: Path, name: str | None = None) -> Path:
    """``out_dir/<name><ext>`` with the source's extension (unknown formats become ``.png``)."""
    suffix = source.suffix.lower()
    if suffix not in (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"):
        suffix = ".png"
    return out_dir / f"{name or source.stem}{suffix}"


def crop_file(source: str | os.PathLike[str], plan: CropPlan, target: str | os.PathLike[str], *, quality: int = 95) -> Path:
    """Cut ``plan.box`` out of the file ``source`` and write it to ``target`` (atomically).

    The photo is turned upright first (EXIF orientation, as the ranking saw it) and written without
    an orientation tag; the file format, colour mode (alpha included), ICC profile and the rest of
    the EXIF data are kept. With ``plan.output_size`` the crop is resized (Lanczos).
    """
    import io

    from PIL import Image, ImageOps

    from salrank.utils.io import write_bytes

    src = Path(source)
    try:
        with Image.open(src) as opened:
            opened.load()
            fmt = opened.format or "PNG"
            upright = ImageOps.exif_transpose(opened)
    except (OSError, ValueError, SyntaxError) as exc:
        raise InputError(f"not a readable image ({exc})", src) from None
    if upright.size != plan.image_size:
        raise InputError(
            f"the image is {upright.size[0]}x{upright.size[1]} but the plan is for {plan.image_size[0]}x{plan.image_size[1]}", src
        )
    piece = upright.crop(plan.box)
    if plan.output_size is not None and plan.output_size != piece.size:
        if plan.output_size[0] > piece.size[0]:
            logger.info("%s: the crop is %dx%d and is enlarged to %dx%d", src, *piece.size, *plan.output_size)
        piece = piece.resize(plan.output_size, Image.Resampling.LANCZOS)
    out = Path(target)
    save_format = {
        ".jpg": "JPEG",
        ".jpeg": "JPEG",
        ".png": "PNG",
        ".webp": "WEBP",
        ".bmp": "BMP",
        ".tif": "TIFF",
        ".tiff": "TIFF",
    }.get(out.suffix.lower(), fmt)
    params: dict[str, Any] = {}
    if "icc_profile" in upright.info:
        params["icc_profile"] = upright.info["icc_profile"]
    if save_format in ("JPEG", "WEBP"):
        params["quality"] = quality
        exif = upright.getexif()
        if len(exif):
            params["exif"] = exif.tobytes()
        if save_format == "JPEG" and piece.mode not in ("RGB", "L", "CMYK"):
            piece = piece.convert("RGB")
    elif save_format == "BMP" and piece.mode not in ("RGB", "L", "P", "1"):
        piece = piece.convert("RGB")
    buffer = io.BytesIO()
    piece.save(buffer, format=save_format, **params)
    write_bytes(out, buffer.getvalue())
    return out


@dataclass
class CropOutcome:
    """What :func:`crop_files` did with one file."""

    source: Path
    target: Path | None = None
    preview: Path | None = None
    plan: CropPlan | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def crop_targets(files: list[Path], out_dir: Path, names: list[str], show: bool) -> list[tuple[Path, Path | None]]:
    """``(crop, preview)`` paths of each file."""
    return [(crop_output_path(f, out_dir, n), out_dir / f"{n}_preview.jpg" if show else None) for f, n in zip(files, names)]


def crop_files(
    ranker: Any,
    files: list[Path],
    out_dir: str | os.PathLike[str],
    *,
    aspect: float | None = None,
    size: tuple[int, int] | None = None,
    top_k: int = 3,
    margin: float = 0.05,
    mode: str = "fit",
    show: bool = False,
    overwrite: bool = False,
    names: list[str] | None = None,
) -> Any:
    """Rank and crop each file; yields a :class:`CropOutcome` per file, in order.

    Crops go to ``out_dir/<name><ext>`` (the source's format), previews (``show``) to
    ``out_dir/<name>_preview.jpg``. Existing files are an :class:`InputError` before anything is
    done, unless ``overwrite``. A file that fails is reported in its outcome and the others go on.
    """
    from salrank.outputs import output_names, write_image
    from salrank.viz.crop_preview import crop_preview

    out = Path(out_dir)
    names = names or output_names(files)
    targets = crop_targets(files, out, names, show)
    if not overwrite:
        existing = [p for pair in targets for p in pair if p is not None and p.exists()]
        if existing:
            raise InputError(
                f"refusing to overwrite {len(existing)} existing file(s) (e.g. {existing[0]}); pass --overwrite or choose another --out"
            )
    if aspect is None and size is None:
        raise InputError("give a target aspect ratio (--aspect 16:9) or size (--size 1080x1080)")
    for outcome, (target, preview) in zip(ranker.rank_files(files, names), targets):
        if not outcome.ok or outcome.result is None:
            yield CropOutcome(outcome.path, error=outcome.error)
            continue
        try:
            plan = plan_crop(outcome.result, aspect, size, top_k=top_k, margin=margin, mode=mode)
            crop_file(outcome.path, plan, target)
            if preview is not None:
                write_image(preview, crop_preview(outcome.image, outcome.result, plan))
        except InputError as exc:
            yield CropOutcome(outcome.path, error=exc.message)
            continue
        except OSError as exc:
            yield CropOutcome(outcome.path, error=f"cannot write the crop ({exc})")
            continue
        yield CropOutcome(outcome.path, target, preview, plan)
