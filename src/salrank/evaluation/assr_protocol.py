"""The ``assr`` protocol: Siris et al. (ASSR, CVPR'20) ``evaluate.py``, as PPA uses it.

Official code: EricFH/SOR ``sor_ppa/centermask/evaluation/sor_eval.py`` (``eval_sor``: MAE, images
used, SOR; ``eval_mae_binary_mask``) and SirisAvishek/Attention_Shift_Ranks
``evaluation/evaluate.py``. Used for the SOR and MAE numbers of ASSR and PPA (and OCOR, PSR). The
prediction is a **grey rank map** (0 = background, brighter = more salient), not instances.

Per image, with the salient GT objects (ASSR ``rank_order > 0.5``) and the map ``P``:

* for each object with mask ``M`` and area ``A``: the pixels of ``M`` where ``P > 0``; if there are
  **more than** ``int(0.5 * A)``, the object's predicted value is the **mode** of those grey values
  (the smallest wins ties, as ``scipy.stats.mode``), else 0. No IoU, no instance matching; map values
  on background or non-salient objects are ignored;
* objects with predicted value 0 are dropped ("agreed" objects); with k objects left:
  k >= 2 -> ``spearmanr(gt values, predicted values)`` (NaN when a side is constant), k = 1 -> 1,
  k = 0 -> none;
* the image is *used* for SOR when its value is 1 or a non-NaN Spearman; SOR = (mean over used
  images + 1) / 2 (NaN when none is used), reported with the number of images used;
* ``mae`` = mean ``|gt/255 - P/255|`` over all pixels in **float32** (bit-exact with the official
  sklearn call), averaged over **all** images; ``mae_binary`` the same after setting every value > 0
  to 1 in both maps (the official ``eval_mae_binary_mask``).

The official code decodes GT polygons/RLE with pycocotools at a fixed 480x640 (every ASSR image has
that size); salrank decodes at the image's own size, which is the same for ASSR.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

from salrank.evaluation.correlation import scipy_spearman
from salrank.evaluation.overlaps import MaskInput, MaskSet, rle_foreground_indices

COVERAGE = 0.5
"""``SEG_THRESHOLD``: fraction of an object's pixels the map must cover (strictly more than ``int(0.5 A)``)."""
SALIENT_THRESHOLD = 0.5
"""``SAL_VAL_THRESH``: ASSR ``rank_order`` values above it are salient."""

_UNIT = np.arange(256, dtype=np.float32) / np.float32(255.0)  # grey / 255.0 in float32, as the official loader


@dataclass(frozen=True)
class AssrImageResult:
    """The assr protocol's record of one image."""

    spr: float | None
    """Spearman statistic (k >= 2), 1.0 (k = 1), or ``None`` (k = 0 or NaN)."""
    spr_kind: str
    """``spearman``, ``single_object`` or ``none``."""
    spr_is_nan: bool
    used: bool
    """Whether the image counts for SOR."""
    use_indices: list[int] = field(default_factory=list)
    """Positions (in the given object order) of the objects kept for the correlation."""
    pred_values: list[int] = field(default_factory=list)
    """Predicted grey value of each salient object (0 = not covered)."""
    mae: float | None = None
    mae_binary: float | None = None

    @property
    def sor(self) -> float:
        """``(spr + 1) / 2`` for a used image, NaN otherwise (``eval_sor`` on this image alone)."""
        return (self.spr + 1) / 2 if self.used else math.nan  # type: ignore[operator]


def _check_map(pred_map: np.ndarray, name: str) -> np.ndarray:
    m = np.asarray(pred_map)
    if m.ndim != 2:
        raise ValueError(f"the {name} must be a single-channel (H, W) map; got shape {m.shape}")
    if m.dtype != np.uint8:
        raise ValueError(f"the {name} must be uint8 grey values; got {m.dtype}")
    return m


def _value_of(vals: np.ndarray, area: int) -> int:
    """Predicted value of one object from the map values inside it."""
    covered = vals[vals > 0]
    if len(covered) > int(area * COVERAGE):
        return int(np.bincount(covered, minlength=256).argmax())  # first maximum = smallest mode
    return 0


def object_pred_values(object_masks: MaskInput | MaskSet, pred_map: np.ndarray) -> np.ndarray:
    """Predicted grey value of each object (0 = covered by at most half of its pixels)."""
    pmap = _check_map(pred_map, "prediction map")
    h, w = pmap.shape
    masks = MaskSet.from_any(object_masks, h, w)
    if (masks.height, masks.width) != (h, w):
        raise ValueError(f"object masks are {masks.height}x{masks.width} but the map is {h}x{w}")
    out = np.zeros(len(masks), dtype=np.int64)
    if len(masks) == 0:
        return out
    if masks.kind == "rle":
        fortran = cv2.transpose(pmap).reshape(-1)  # RLE runs are column-major
        for i, rle in enumerate(masks.rles):
            idx = rle_foreground_indices(rle)
            out[i] = _value_of(fortran[idx], len(idx))
    else:
        flat = pmap.reshape(-1)
        for i, m in enumerate(masks.dense()):
            idx = np.flatnonzero(m.reshape(-1))
            out[i] = _value_of(flat[idx], len(idx))
    return out


def map_mae(gt_map: np.ndarray, pred_map: np.ndarray) -> tuple[float, float]:
    """``(mae, mae_binary)`` of one image: float32 mean absolute error of ``map / 255``."""
    g = _check_map(gt_map, "GT map")
    p = _check_map(pred_map, "prediction map")
    if g.shape != p.shape:
        raise ValueError(f"the GT map is {g.shape[0]}x{g.shape[1]} but the prediction map {p.shape[0]}x{p.shape[1]}")
    # |g/255 - p/255| in float32 (cv2's table look-up and absdiff are exact), then numpy's pairwise float32 mean.
    diff = cv2.absdiff(cv2.LUT(g, _UNIT), cv2.LUT(p, _UNIT))
    mae = np.mean(diff.reshape(-1))
    # Binary maps hold 0/1, so the float32 sum is the exact XOR count and the mean one float32 division.
    xor = np.count_nonzero((g > 0) != (p > 0))
    mae_binary = np.float32(xor) / np.float32(g.size)
    return float(mae), float(mae_binary)


def assr_image_metrics(
    object_masks: MaskInput | MaskSet,
    gt_values: Sequence[float] | np.ndarray,
    pred_map: np.ndarray,
    gt_map: np.ndarray | None = None,
) -> AssrImageResult:
    """The official ``calculate_spr`` record (and MAE when ``gt_map`` is given) of one image.

    Args:
        object_masks: masks of the **salient** GT objects (any order; RLEs are fastest).
        gt_values: one value per object, higher = more salient (ASSR ``rank_order``; only their
            order and ties matter).
        pred_map: ``uint8`` ``(H, W)`` predicted grey rank map (channel 0 of the PNG).
        gt_map: ``uint8`` ``(H, W)`` GT grey rank map, for MAE.
    """
    values = np.asarray(gt_values, dtype=np.float64).reshape(-1)
    pred_values = object_pred_values(object_masks, pred_map)
    if len(pred_values) != len(values):
        raise ValueError(f"{len(pred_values)} object masks but {len(values)} GT values")
    keep = [i for i in range(len(values)) if values[i] != 0 and pred_values[i] != 0]
    if len(keep) > 1:
        spr = scipy_spearman(values[keep], pred_values[keep].astype(np.uint8))
        nan = math.isnan(spr)
        kind, value, used = "spearman", (None if nan else float(spr)), not nan
    elif len(keep) == 1:
        kind, value, used, nan = "single_object", 1.0, True, False
    else:
        kind, value, used, nan = "none", None, False, False
    mae = mae_binary = None
    if gt_map is not None:
        mae, mae_binary = map_mae(gt_map, pred_map)
    return AssrImageResult(
        spr=value, spr_kind=kind, spr_is_nan=nan, used=used, use_indices=keep,
        pred_values=pred_values.tolist(), mae=mae, mae_binary=mae_binary,
    )  # fmt: skip


@dataclass(frozen=True)
class AssrAggregate:
    """The assr protocol's set values (``eval_sor`` and ``eval_mae_binary_mask``)."""

    sor: float
    """(mean Spearman over used images + 1) / 2; NaN when no image is used."""
    images_used: int
    images: int
    mae: float | None
    """Mean per-image MAE over **all** images (``None`` without GT maps)."""
    mae_binary: float | None
    spr_mean: float


def aggregate_assr(results: Sequence[AssrImageResult]) -> AssrAggregate:
    """Set values from per-image records in evaluation order."""
    used = [r.spr for r in results if r.used]
    if used:
        avg = float(np.average(np.array(used, dtype=np.float64)))
    else:
        avg = math.nan
    sor = (avg - (-1)) / (1 - (-1))
    maes = [r.mae for r in results if r.mae is not None]
    bins = [r.mae_binary for r in results if r.mae_binary is not None]
    mae = sum(maes) / len(maes) if maes and len(maes) == len(results) else None
    mae_binary = sum(bins) / len(bins) if bins and len(bins) == len(results) else None
    return AssrAggregate(sor=sor, images_used=len(used), images=len(results), mae=mae, mae_binary=mae_binary, spr_mean=avg)
