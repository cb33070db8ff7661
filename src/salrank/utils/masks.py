"""Binary-mask utilities shared by data readers, evaluation, models and visualisation.

Masks are ``numpy`` arrays of shape ``(H, W)`` (or ``(N, H, W)``) with dtype ``bool`` or ``uint8``.
RLEs are the pycocotools compressed form ``{"size": [H, W], "counts": str}``; functions accept
``bytes`` counts too (as pycocotools itself and the official result files produce them).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np
from pycocotools import mask as mask_utils

RLE = dict[str, Any]
Polygons = list[list[float]]


def _rle_for_coco(rle: RLE) -> RLE:
    """Return an RLE whose counts are ``bytes`` (what pycocotools' C functions need)."""
    counts = rle["counts"]
    if isinstance(counts, str):
        return {"size": list(rle["size"]), "counts": counts.encode("ascii")}
    if isinstance(counts, list):  # uncompressed RLE
        h, w = rle["size"]
        return mask_utils.frPyObjects(rle, h, w)
    return rle


def encode_rle(mask: np.ndarray) -> RLE:
    """Encode one binary mask ``(H, W)`` as a compressed RLE with ``str`` counts (JSON-ready)."""
    if mask.ndim != 2:
        raise ValueError(f"encode_rle expects an (H, W) mask, got shape {mask.shape}")
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8, copy=False)))
    return {"size": [int(rle["size"][0]), int(rle["size"][1])], "counts": rle["counts"].decode("ascii")}


def encode_rles(masks: np.ndarray) -> list[RLE]:
    """Encode ``(N, H, W)`` binary masks as a list of compressed RLEs with ``str`` counts."""
    if masks.ndim != 3:
        raise ValueError(f"encode_rles expects (N, H, W) masks, got shape {masks.shape}")
    if len(masks) == 0:
        return []
    # pycocotools wants (H, W, N) in Fortran order, i.e. each mask transposed in memory: cv2.transpose
    # does that ~10x faster than numpy's strided copy.
    n, h, w = masks.shape
    transposed = np.empty((n, w, h), np.uint8)
    for i, m in enumerate(masks.astype(np.uint8, copy=False)):
        transposed[i] = cv2.transpose(m) if h > 0 and w > 0 else m.T
    out = []
    for rle in mask_utils.encode(transposed.transpose(2, 1, 0)):
        out.append({"size": [int(rle["size"][0]), int(rle["size"][1])], "counts": rle["counts"].decode("ascii")})
    return out


def rle_counts(rle: RLE) -> np.ndarray:
    """Run lengths of an RLE (column-major runs, starting with a run of zeros), as ``int64``.

    Decodes pycocotools' compressed string with numpy: 5-bit groups with a continuation bit (0x20) and
    sign extension (0x10) of the last group; every count after the second is stored as a difference to
    the count two places before. Uncompressed RLEs (``counts`` a list) are returned as they are.
    """
    counts = rle["counts"]
    if isinstance(counts, list):
        return np.asarray(counts, dtype=np.int64)
    raw = counts.encode("ascii") if isinstance(counts, str) else bytes(counts)
    if not raw:
        return np.zeros(0, dtype=np.int64)
    c = np.frombuffer(raw, dtype=np.uint8).astype(np.int64) - 48
    if c.min() < 0 or c.max() > 63:
        raise ValueError("RLE counts string has characters outside the compressed-RLE alphabet")
    more = (c & 0x20) != 0
    last = np.flatnonzero(~more)  # last group of each number
    if len(last) == 0 or last[-1] != len(c) - 1:
        raise ValueError("RLE counts string ends inside a number")
    first = np.r_[0, last[:-1] + 1]
    group = np.repeat(np.arange(len(last)), last - first + 1)
    shift = 5 * (np.arange(len(c)) - first[group])
    x = np.add.reduceat((c & 0x1F) << shift, first)
    negative = (c[last] & 0x10) != 0
    x[negative] -= np.left_shift(1, 5 * (last[negative] - first[negative] + 1))
    if len(x) > 3:  # counts[i] += counts[i - 2] for i > 2
        x[3::2] = np.cumsum(x[1::2])[1:]
    if len(x) > 4:
        x[4::2] = np.cumsum(x[2::2])[1:]
    return x


def validate_rle(rle: RLE) -> None:
    """Raise ``ValueError`` unless ``rle`` is a well-formed RLE of its declared size (without decoding it)."""
    try:
        h, w = (int(v) for v in rle["size"])
    except (KeyError, TypeError, ValueError):
        raise ValueError("an RLE needs 'size': [height, width] and 'counts'") from None
    _check_counts(rle_counts(rle), h, w)


def validate_rles(rles: Sequence[RLE]) -> None:
    """:func:`validate_rle` for several RLEs in one vectorised pass; the error names the first bad index."""
    sizes = []
    for i, rle in enumerate(rles):
        try:
            sizes.append(tuple(int(v) for v in rle["size"]))
        except (KeyError, TypeError, ValueError):
            raise ValueError(f"RLE {i} needs 'size': [height, width] and 'counts'") from None
    try:
        parsed = rle_counts_many(rles)
    except ValueError:
        for i, rle in enumerate(rles):  # find which one
            try:
                rle_counts(rle)
            except ValueError as exc:
                raise ValueError(f"RLE {i}: {exc}") from None
        raise
    for i, (counts, (h, w)) in enumerate(zip(parsed, sizes)):
        try:
            _check_counts(counts, h, w)
        except ValueError as exc:
            raise ValueError(f"RLE {i}: {exc}") from None


def rle_counts_many(rles: Sequence[RLE]) -> list[np.ndarray]:
    """Run lengths of several RLEs at once: :func:`rle_counts` with one vectorised pass over all strings.

    Per-call numpy overhead dominates the parsing of short count strings, so a whole image's masks are
    parsed together; the "difference to the count two places before" decoding becomes a segmented
    cumulative sum.
    """
    out: list[np.ndarray | None] = [None] * len(rles)
    raws: list[bytes] = []
    slots: list[int] = []
    for i, rle in enumerate(rles):
        counts = rle["counts"]
        if isinstance(counts, list):
            out[i] = np.asarray(counts, dtype=np.int64)
            continue
        raw = counts.encode("ascii") if isinstance(counts, str) else bytes(counts)
        if not raw:
            out[i] = np.zeros(0, dtype=np.int64)
            continue
        raws.append(raw)
        slots.append(i)
    if raws:
        lengths = np.fromiter((len(r) for r in raws), dtype=np.int64, count=len(raws))
        c = np.frombuffer(b"".join(raws), dtype=np.uint8).astype(np.int64) - 48
        if c.min() < 0 or c.max() > 63:
            raise ValueError("RLE counts string has characters outside the compressed-RLE alphabet")
        more = (c & 0x20) != 0
        ends = np.cumsum(lengths) - 1
        if more[ends].any():
            raise ValueError("RLE counts string ends inside a number")
        last = np.flatnonzero(~more)  # last group of each number (numbers never straddle two strings)
        first = np.r_[0, last[:-1] + 1]
        group = np.repeat(np.arange(len(last)), last - first + 1)
        shift = 5 * (np.arange(len(c)) - first[group])
        x = np.add.reduceat((c & 0x1F) << shift, first)
        negative = (c[last] & 0x10) != 0
        x[negative] -= np.left_shift(1, 5 * (last[negative] - first[negative] + 1))
        # numbers per string, and each number's index within its string
        bounds = np.searchsorted(last, ends, side="right")
        starts = np.r_[0, bounds[:-1]]
        local = np.arange(len(x)) - np.repeat(starts, bounds - starts)
        # counts[j] += counts[j - 2] for j > 2 (within each string): segmented cumulative sums of the
        # odd positions (from j = 1) and of the even positions from j = 2
        for parity, begin in ((1, 1), (0, 2)):
            member = (local % 2 == parity) & (local >= begin)
            cs = np.cumsum(np.where(member, x, 0))
            before = np.where(starts > 0, cs[np.maximum(starts - 1, 0)], 0)
            x = np.where(member, cs - np.repeat(before, bounds - starts), x)
        for k, (a, b) in enumerate(zip(starts, bounds)):
            out[slots[k]] = x[a:b]
    return out  # type: ignore[return-value]


def _check_counts(counts: np.ndarray, h: int, w: int) -> None:
    if (len(counts) and counts.min() < 0) or int(counts.sum()) != h * w:
        raise ValueError(f"RLE counts do not describe a {h}x{w} mask")


def _runs_to_mask(counts: np.ndarray, out: np.ndarray) -> None:
    """Fill the C-ordered ``uint8`` ``(H, W)`` array ``out`` from column-major run lengths (first run = zeros)."""
    h, w = out.shape
    if h == 0 or w == 0:
        return
    runs = np.zeros(len(counts), np.uint8)
    runs[1::2] = 1
    column_major = np.repeat(runs, counts).reshape(w, h)  # the mask transposed, C order
    out[...] = cv2.transpose(column_major)


def decode_rle(rle: RLE) -> np.ndarray:
    """Decode one RLE (``str`` or ``bytes`` counts, compressed or not) to a ``uint8`` ``(H, W)`` mask.

    Same values as ``pycocotools.mask.decode`` (C order), ~4x faster; a corrupt RLE raises ``ValueError``
    (pycocotools writes past its buffer on corrupt counts).
    """
    h, w = (int(v) for v in rle["size"])
    out = np.empty((h, w), np.uint8)
    counts = rle_counts(rle)
    _check_counts(counts, h, w)
    _runs_to_mask(counts, out)
    return out


def decode_rles(rles: Sequence[RLE], height: int | None = None, width: int | None = None) -> np.ndarray:
    """Decode several RLEs of one size to a ``uint8`` ``(N, H, W)`` array (``(0, H, W)`` when empty and a size is given)."""
    if len(rles) == 0:
        if height is None or width is None:
            raise ValueError("decode_rles needs height and width to build an empty mask stack")
        return np.zeros((0, height, width), dtype=np.uint8)
    h, w = (int(v) for v in rles[0]["size"])
    out = np.empty((len(rles), h, w), np.uint8)
    for i, rle in enumerate(rles):
        if (int(rle["size"][0]), int(rle["size"][1])) != (h, w):
            raise ValueError(f"RLE {i} has size {rle['size']}, the first one {h}x{w}")
    for i, counts in enumerate(rle_counts_many(rles)):
        _check_counts(counts, h, w)
        _runs_to_mask(counts, out[i])
    return out


def rle_area(rle: RLE) -> int:
    """Number of foreground pixels of an RLE mask."""
    return int(mask_utils.area(_rle_for_coco(rle)))


def rle_to_bytes_counts(rle: RLE) -> RLE:
    """Copy of an RLE with ``bytes`` counts, as the official SeqRank/PoseSOR result files store them."""
    return _rle_for_coco(rle)


def rle_to_str_counts(rle: RLE) -> RLE:
    """Copy of an RLE with ``str`` counts (JSON-serialisable)."""
    fixed = _rle_for_coco(rle)
    return {"size": [int(fixed["size"][0]), int(fixed["size"][1])], "counts": fixed["counts"].decode("ascii")}


def polygons_to_mask(polygons: Polygons, height: int, width: int, *, integer_vertices: bool = True) -> np.ndarray:
    """Rasterise COCO polygons (``[[x0, y0, x1, y1, ...], ...]``) to a ``uint8`` ``(H, W)`` mask.

    With ``integer_vertices`` (the default) every polygon is filled with ``cv2.fillPoly`` on vertices
    truncated to int32, exactly as the SeqRank/PoseSOR mappers rasterise their GT; otherwise the
    pycocotools rasteriser is used (the COCO convention, what the ASSR/PPA code uses for polygons).
    """
    if integer_vertices:
        mask = np.zeros((height, width), dtype=np.uint8)
        pts = [np.asarray(p, dtype=np.float64).reshape(-1, 2).astype(np.int32) for p in polygons if len(p) >= 2]
        if pts:
            cv2.fillPoly(mask, pts, 1)
        return mask
    valid = [list(map(float, p)) for p in polygons if len(p) >= 6]
    if not valid:
        return np.zeros((height, width), dtype=np.uint8)
    rles = mask_utils.frPyObjects(valid, height, width)
    return mask_utils.decode(mask_utils.merge(rles))


def segmentation_to_mask(segmentation: Polygons | RLE, height: int, width: int) -> np.ndarray:
    """Rasterise a COCO ``segmentation`` (polygons, compressed or uncompressed RLE) to ``uint8`` ``(H, W)``."""
    if isinstance(segmentation, dict):
        mask = decode_rle(segmentation)
        if mask.shape != (height, width):
            raise ValueError(f"RLE of size {mask.shape[0]}x{mask.shape[1]} for an image of {height}x{width}")
        return mask
    return polygons_to_mask(segmentation, height, width)


def mask_to_box(mask: np.ndarray) -> np.ndarray:
    """Tight ``[x1, y1, x2, y2]`` box (pixel edges, float32) of a binary mask; zeros if the mask is empty."""
    ys = np.flatnonzero(mask.any(axis=1))
    xs = np.flatnonzero(mask.any(axis=0))
    if len(ys) == 0:
        return np.zeros(4, dtype=np.float32)
    return np.array([xs[0], ys[0], xs[-1] + 1, ys[-1] + 1], dtype=np.float32)


def masks_to_boxes(masks: np.ndarray) -> np.ndarray:
    """Tight boxes ``(N, 4)`` of ``(N, H, W)`` binary masks (see :func:`mask_to_box`)."""
    return np.stack([mask_to_box(m) for m in masks]) if len(masks) else np.zeros((0, 4), dtype=np.float32)


def rles_to_boxes(rles: Sequence[RLE]) -> np.ndarray:
    """Tight ``[x1, y1, x2, y2]`` boxes ``(N, 4)`` of RLE masks without decoding them (as :func:`mask_to_box`)."""
    if len(rles) == 0:
        return np.zeros((0, 4), dtype=np.float32)
    xywh = np.asarray(mask_utils.toBbox([_rle_for_coco(r) for r in rles]), dtype=np.float64).reshape(-1, 4)
    boxes = np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], axis=1)
    boxes[xywh[:, 2] <= 0] = 0.0  # empty masks: zeros, as mask_to_box
    return boxes.astype(np.float32)


def mask_to_polygons(mask: np.ndarray, min_points: int = 3) -> Polygons:
    """Outer contours of a binary mask as COCO polygons (lossy; used only to write polygon formats)."""
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    return [c.reshape(-1).astype(float).tolist() for c in contours if len(c) >= min_points]
