"""PoseSOR's keypoint metrics ``jacc`` and ``jae`` (``evaluation/metrics.py`` of ECCV24PoseSOR).

Both use the seqrank protocol's Hungarian pairs (all ``min(n, m)`` pairs, **no IoU threshold**):

* ``jacc`` -- of the joints visible in the GT (flag ``> 0.5``: labelled, occluded or not), the fraction
  predicted visible (probability ``> 0.5``): ``(sum(label * predicted) + 1e-6) / (sum(label) + 1e-6)``;
* ``jae`` -- mean over those joints of the L1 error ``|dx| + |dy|`` of normalised coordinates
  (x / W, y / H): ``sum(|gt_xy - pred_xy| * label) / (1e-6 + sum(label))``.

Both are ``None`` (skipped by the aggregate) when the matched GTs have no visible joint.

Coordinates are normalised as PoseSOR stores them: GT ``keypoints / [W, H, 1]`` and predicted
``x / W, y / H`` in float32. :func:`normalise_keypoints` converts salrank's pixel keypoints.

Deviation, documented: with no prediction the official code crashes (it indexes an empty joint
list with the substituted zero mask's pair). salrank scores that image as "no joint predicted":
``jacc`` by the formula with nothing predicted visible (about 0) and ``jae`` ``None`` (there is no
predicted location to measure).
"""

from __future__ import annotations

import numpy as np

NUM_KEYPOINTS = 17


def normalise_keypoints(keypoints: np.ndarray, height: int, width: int) -> np.ndarray:
    """Pixel keypoints ``(N, 17, 3)`` (x, y, visibility) -> ``x / W, y / H`` in float32, visibility kept."""
    kp = np.array(keypoints, dtype=np.float32, copy=True).reshape(-1, NUM_KEYPOINTS, 3)
    kp[..., 0] /= np.float32(width)
    kp[..., 1] /= np.float32(height)
    return kp


def joint_metrics(
    gt_keypoints: np.ndarray,
    pred_keypoints: np.ndarray | None,
    gt_ind: np.ndarray,
    pred_ind: np.ndarray,
) -> dict[str, float | None]:
    """``jacc`` and ``jae`` of one image.

    Args:
        gt_keypoints: ``(n, 17, 3)`` normalised GT keypoints (visibility flag in the last column), GT order.
        pred_keypoints: ``(m, 17, 3)`` normalised predicted keypoints (visibility probability), rank
            order; ``None`` when nothing was predicted.
        gt_ind, pred_ind: the Hungarian pairs of :func:`salrank.evaluation.seqrank_protocol.match`.
    """
    gt = np.asarray(gt_keypoints, dtype=np.float32).reshape(-1, NUM_KEYPOINTS, 3)[np.asarray(gt_ind, dtype=np.int64)]
    label = (gt.reshape(-1, 3)[:, -1] > 0.5).astype(float)
    visible = label.sum()
    if not visible > 0.5:
        return {"jacc": None, "jae": None}
    if pred_keypoints is None or len(pred_ind) == 0:
        return {"jacc": (0.0 + 1e-6) / (visible + 1e-6), "jae": None}
    pred_all = np.asarray(pred_keypoints, dtype=np.float32).reshape(-1, NUM_KEYPOINTS, 3)
    pred = pred_all[np.asarray(pred_ind, dtype=np.int64)]
    flat_gt = gt.reshape(-1, 3)
    flat_pred = pred.reshape(-1, 3)
    predicted = (flat_pred[:, -1] > 0.5).astype(float)
    jacc = ((label * predicted).sum() + 1e-6) / (visible + 1e-6)
    err = np.sum(np.abs(flat_gt[:, 0:2] - flat_pred[:, 0:2]) * label.reshape(-1, 1)) / (1e-6 + visible)
    return {"jacc": jacc, "jae": err}
