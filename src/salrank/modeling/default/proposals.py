"""Instance proposals: people from the pose model, other objects from the foreground map.

Non-person objects are found as in classic salient-object segmentation: the foreground map (see
:mod:`salrank.modeling.default.ranking`) is cut at several thresholds relative to its maximum; every
connected component of every cut is a candidate, scored by how much it stands out from a ring
around it (mean inside minus mean in the ring) and by its size. Greedy mask suppression keeps the
best candidate of each nested family; when no cut yields a candidate (everything stands out),
higher cuts are tried. Large components that run along the bottom edge into a side
edge are ground (road, snow, floor, lawn) and are skipped. Person pixels are removed first, so a person is never also
proposed as a region; masks are then upsampled to the image size with a guided filter so that they
follow the photo's edges.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from salrank.modeling.default.saliency import guided_filter


@dataclass
class Proposal:
    """One candidate object at the working resolution."""

    mask: np.ndarray
    """``bool`` ``(h, w)`` at the working resolution."""
    score: float
    """Objectness in [0, 1]."""
    kind: str = "region"
    """``"person"`` (from the pose model) or ``"region"`` (from the foreground map)."""
    keypoints: np.ndarray | None = None
    """``(17, 3)`` COCO keypoints in full-image pixels, for people."""
    full_mask: np.ndarray | None = None
    """``bool`` ``(H, W)`` at the image size when already known (people)."""
    cues: dict[str, float] = field(default_factory=dict)
    """The ranking cues computed for it (kept for inspection in ``RankedInstances.extras``)."""


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    inter = np.logical_and(a, b).sum()
    union = np.logical_or(a, b).sum()
    return float(inter) / float(union) if union else 0.0


def _ring(mask: np.ndarray, width: int) -> np.ndarray:
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * width + 1, 2 * width + 1))
    return cv2.dilate(mask.astype(np.uint8), kernel).astype(bool) & ~mask


def region_proposals(
    foreground: np.ndarray,
    exclude: np.ndarray | None = None,
    thresholds: tuple[float, ...] = (0.2, 0.35, 0.5, 0.65, 0.8),
    min_area: float = 0.002,
    max_area: float = 0.2,
    min_contrast: float = 0.12,
    max_proposals: int = 12,
) -> list[Proposal]:
    """Object candidates from a foreground map in [0, 1] at the working resolution.

    Args:
        foreground: ``(h, w)`` float map, higher = more likely part of a salient object.
        exclude: ``bool`` ``(h, w)`` pixels already explained (people); they are removed from the cuts.
        thresholds: cut levels, as fractions of the map's maximum.
        min_area, max_area: component size limits as fractions of the image.
        min_contrast: minimum (mean inside - mean of the surrounding ring) to keep a candidate.
        max_proposals: at most this many candidates, best first.
    """
    h, w = foreground.shape
    fmax = float(foreground.max())
    if fmax <= 1e-6:
        return []
    allowed = np.ones((h, w), bool) if exclude is None else ~exclude
    ring_width = max(2, int(round(0.03 * max(h, w))))
    open_kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))

    def cuts(levels: tuple[float, ...], skip_ground: bool, min_contrast: float) -> list[tuple[float, float, np.ndarray]]:
        found = []
        for t in levels:
            cut = ((foreground >= t * fmax) & allowed).astype(np.uint8)
            cut = cv2.morphologyEx(cut, cv2.MORPH_OPEN, open_kernel)
            n, labels, stats, _ = cv2.connectedComponentsWithStats(cut, connectivity=8)
            for lab in range(1, n):
                area = stats[lab, cv2.CC_STAT_AREA] / float(h * w)
                if area < min_area or area > max_area:
                    continue
                m = labels == lab
                # ground-like stuff: a large component along the bottom edge reaching a side edge
                if skip_ground and area > 0.06 and m[-3:].any() and (m[:, :3].any() or m[:, -3:].any()):
                    continue
                m = cv2.morphologyEx(m.astype(np.uint8), cv2.MORPH_CLOSE, open_kernel).astype(bool) & allowed
                ring = _ring(m, ring_width) & allowed
                inside = float(foreground[m].mean())
                outside = float(foreground[ring].mean()) if ring.any() else 0.0
                contrast = inside - outside
                if contrast < min_contrast:
                    continue
                # prefer components that stand out, are not tiny, and do not run along the image border
                border = np.concatenate([m[0], m[-1], m[:, 0], m[:, -1]]).mean()
                quality = contrast * (0.6 + 0.4 * min(1.0, np.sqrt(area / 0.03))) * (1.0 - border)
                found.append((quality, inside, m))
        return found

    candidates = cuts(thresholds, True, min_contrast)
    if not candidates:  # a busy scene where everything stands out (a market stall): cut higher, keep all
        candidates = cuts((0.85, 0.9, 0.95), False, min_contrast / 3)
    candidates.sort(key=lambda c: -c[0])
    kept: list[Proposal] = []
    for quality, inside, m in candidates:
        duplicate = False
        for k in kept:
            inter = np.logical_and(m, k.mask).sum()
            if inter / max(1, min(m.sum(), k.mask.sum())) > 0.6:
                duplicate = True
                break
        if duplicate:
            continue
        kept.append(Proposal(mask=m, score=float(np.clip(inside, 0.0, 1.0)), kind="region", cues={"contrast": float(quality)}))
        if len(kept) >= max_proposals:
            break
    return kept


def upsample_mask(mask: np.ndarray, soft: np.ndarray | None, guide_grey: np.ndarray, radius: int = 4, eps: float = 1e-3) -> np.ndarray:
    """A working-resolution mask at the size of ``guide_grey`` (float in [0, 1]), snapped to its edges.

    ``soft`` (same size as ``mask``) modulates the mask's inside so that weak parts fade; the result
    is bilinearly upsampled, guided-filtered with the grey image and thresholded at 0.5. The filter
    runs only on the mask's box (plus a margin), so large photos stay fast.
    """
    H, W = guide_grey.shape
    src = mask.astype(np.float32)
    if soft is not None:
        src = src * np.clip(0.5 + soft, 0.0, 1.0)
    up = cv2.resize(src, (W, H), interpolation=cv2.INTER_LINEAR)
    ys, xs = np.nonzero(up > 0.05)
    if len(xs) == 0:
        return up > 0.5
    margin = 3 * radius + 2
    x0, x1 = max(0, xs.min() - margin), min(W, xs.max() + 1 + margin)
    y0, y1 = max(0, ys.min() - margin), min(H, ys.max() + 1 + margin)
    refined = guided_filter(guide_grey[y0:y1, x0:x1], up[y0:y1, x0:x1], radius, eps)
    out = np.zeros((H, W), bool)
    out[y0:y1, x0:x1] = refined > 0.5
    if not out.any():
        out = up > 0.5
    return out


def refine_with_grabcut(image: np.ndarray, guess: np.ndarray, max_side: int = 140, iterations: int = 2) -> np.ndarray:
    """Snap a rough full-size object mask to the photo's colours with GrabCut (Rother et al., 2004).

    GrabCut runs on the object's box enlarged by 25 %, downscaled to at most ``max_side`` pixels:
    the rough mask is "probably foreground", a ring around it "probably background" and the rest of
    the box "background". OpenCV's random generator is re-seeded first, so the result is
    deterministic. If GrabCut shrinks the object below 40 % or grows it above 180 % of the rough
    mask, the rough mask is kept (GrabCut has then latched onto the background).
    """
    H, W = guess.shape
    ys, xs = np.nonzero(guess)
    if len(xs) < 16:
        return guess
    x0, x1, y0, y1 = xs.min(), xs.max() + 1, ys.min(), ys.max() + 1
    mx, my = int(0.25 * (x1 - x0)) + 2, int(0.25 * (y1 - y0)) + 2
    x0, y0, x1, y1 = max(0, x0 - mx), max(0, y0 - my), min(W, x1 + mx), min(H, y1 + my)
    crop = image[y0:y1, x0:x1]
    g = guess[y0:y1, x0:x1].astype(np.uint8)
    ch, cw = g.shape
    s = min(1.0, max_side / float(max(ch, cw)))
    sw, sh = max(8, int(round(cw * s))), max(8, int(round(ch * s)))
    crop_s = cv2.resize(crop, (sw, sh), interpolation=cv2.INTER_AREA)
    g_s = cv2.resize(g, (sw, sh), interpolation=cv2.INTER_NEAREST)
    ring = max(2, int(round(0.06 * max(sw, sh))))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * ring + 1, 2 * ring + 1))
    near = cv2.dilate(g_s, kernel)
    gc = np.full((sh, sw), cv2.GC_BGD, np.uint8)
    gc[near > 0] = cv2.GC_PR_BGD
    gc[g_s > 0] = cv2.GC_PR_FGD
    if not (gc == cv2.GC_PR_FGD).any() or not np.isin(gc, (cv2.GC_BGD, cv2.GC_PR_BGD)).any():
        return guess
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    cv2.setRNGSeed(0)
    try:
        cv2.grabCut(cv2.cvtColor(crop_s, cv2.COLOR_RGB2BGR), gc, None, bgd, fgd, iterations, cv2.GC_INIT_WITH_MASK)
    except cv2.error:
        return guess
    fg = np.isin(gc, (cv2.GC_FGD, cv2.GC_PR_FGD)).astype(np.float32)
    fg = cv2.resize(fg, (cw, ch), interpolation=cv2.INTER_LINEAR) > 0.5
    ratio = fg.sum() / max(1, g.sum())
    if ratio < 0.4 or ratio > 1.8:
        return guess
    out = np.zeros_like(guess)
    out[y0:y1, x0:x1] = fg
    return out
