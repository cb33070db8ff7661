"""Pixel saliency cues computed with OpenCV, NumPy and SciPy (no learned weights).

* :func:`geodesic_saliency`: the **background connectivity** prior (Wei et al., ECCV 2012; Zhu et al.,
  CVPR 2014). Background regions connect to the image border through similar colours; objects are
  separated from it by colour edges. Each pixel's saliency is its geodesic (colour-path) distance to
  the border. A distance is computed to each of the four sides separately and the **second smallest**
  is kept, so that an object cut by one side (a person at the bottom edge) stays salient while sky or
  ground, which touch several sides, do not.
* :func:`colour_contrast`: the Lab distance of each (blurred) pixel from the image's mean colour
  (frequency-tuned saliency, Achanta et al., CVPR 2009): colour pop-out.
* :func:`center_prior`: a Gaussian of the distance to the image centre (photographers centre subjects).
* :func:`guided_filter`: the edge-preserving guided filter (He et al., ECCV 2010), used to upsample
  coarse maps so that they follow the photo's edges.
"""

from __future__ import annotations

import cv2
import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import dijkstra


def to_lab(image: np.ndarray) -> np.ndarray:
    """RGB ``uint8`` to CIE Lab ``float32`` (L in [0, 100], a/b roughly [-127, 127])."""
    return cv2.cvtColor(image.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)


def _grid_graph(lab: np.ndarray, edge_floor: float) -> coo_matrix:
    """4-connected pixel graph whose edge weights are Lab distances minus ``edge_floor`` (clipped at 0)."""
    h, w = lab.shape[:2]
    idx = np.arange(h * w).reshape(h, w)
    rows, cols, weights = [], [], []
    for a, b, da, db in (
        (idx[:, :-1], idx[:, 1:], lab[:, :-1], lab[:, 1:]),
        (idx[:-1, :], idx[1:, :], lab[:-1, :], lab[1:, :]),
    ):
        d = np.linalg.norm(da - db, axis=-1)
        d = np.maximum(d - edge_floor, 0.0) + 1e-3  # tiny positive weight: zero means "no edge" to scipy
        rows.append(a.ravel())
        cols.append(b.ravel())
        weights.append(d.ravel())
    r, c, wt = np.concatenate(rows), np.concatenate(cols), np.concatenate(weights)
    return coo_matrix((np.concatenate([wt, wt]), (np.concatenate([r, c]), np.concatenate([c, r]))), shape=(h * w, h * w))


def geodesic_saliency(lab: np.ndarray, edge_floor: float = 3.0) -> np.ndarray:
    """Background-connectivity saliency of a small Lab image (``(h, w, 3)``, e.g. 96x72), in [0, 1].

    Args:
        lab: the image in Lab (see :func:`to_lab`), smoothed and downsampled by the caller.
        edge_floor: colour differences below this count as no edge (texture and noise).
    """
    h, w = lab.shape[:2]
    graph = _grid_graph(lab, edge_floor).tocsr()
    idx = np.arange(h * w).reshape(h, w)
    sides = (idx[0, :], idx[-1, :], idx[:, 0], idx[:, -1])
    dists = []
    for side in sides:
        d = dijkstra(graph, directed=False, indices=side, min_only=True)
        dists.append(d.reshape(h, w))
    stack = np.sort(np.stack(dists), axis=0)
    sal = stack[1]  # second-smallest: one touched side is forgiven
    sal = sal / (np.percentile(sal, 99) + 1e-6)
    return np.clip(sal, 0.0, 1.0).astype(np.float32)


def colour_contrast(lab: np.ndarray) -> np.ndarray:
    """Distance of each pixel's Lab colour from the image mean (frequency-tuned saliency), in [0, 1]."""
    blurred = cv2.GaussianBlur(lab, (0, 0), 1.0)
    mean = lab.reshape(-1, 3).mean(0)
    d = np.linalg.norm(blurred - mean, axis=-1)
    return np.clip(d / (np.percentile(d, 99) + 1e-6), 0.0, 1.0).astype(np.float32)


def center_prior(height: int, width: int, sigma: float = 0.35) -> np.ndarray:
    """``exp(-r^2 / (2 sigma^2))`` with ``r`` the distance to the centre in half-diagonal-normalised units."""
    ys = (np.arange(height, dtype=np.float32) + 0.5) / height - 0.5
    xs = (np.arange(width, dtype=np.float32) + 0.5) / width - 0.5
    r2 = (ys[:, None] ** 2 + xs[None, :] ** 2) / 0.5
    return np.exp(-r2 / (2 * sigma**2)).astype(np.float32)


def guided_filter(guide: np.ndarray, src: np.ndarray, radius: int, eps: float) -> np.ndarray:
    """Grey-guide guided filter: smooths ``src`` while keeping the edges of ``guide`` (both float, same size)."""
    g = guide.astype(np.float32)
    p = src.astype(np.float32)
    ksize = (2 * radius + 1, 2 * radius + 1)

    def box(x: np.ndarray) -> np.ndarray:
        return cv2.boxFilter(x, -1, ksize, borderType=cv2.BORDER_REFLECT)

    mean_g, mean_p = box(g), box(p)
    var_g = box(g * g) - mean_g * mean_g
    cov_gp = box(g * p) - mean_g * mean_p
    a = cov_gp / (var_g + eps)
    b = mean_p - a * mean_g
    return box(a) * g + box(b)


def normalise(x: np.ndarray) -> np.ndarray:
    """Min-max normalise to [0, 1] (a constant map becomes zeros)."""
    lo, hi = float(x.min()), float(x.max())
    if hi - lo < 1e-8:
        return np.zeros_like(x, dtype=np.float32)
    return ((x - lo) / (hi - lo)).astype(np.float32)
