"""Trivial ranking baselines, to tell whether a trained model learned an *order* and not only masks.

Each baseline keeps a model's predicted masks and replaces its order:

* ``random``: a random permutation (seeded);
* ``area``: largest mask first ("big things are seen first");
* ``centre``: mask centroid closest to the image centre first.

Scored with the same protocol as the model, a baseline shows how much of a metric comes from the
segmentation alone; a model that learned the attention order beats all three.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from salrank.structures import RankedInstances

__all__ = ["BASELINES", "reorder"]

BASELINES = ("random", "area", "centre")


def reorder(predictions: Mapping[str, RankedInstances], how: str, seed: int = 0) -> dict[str, RankedInstances]:
    """The same predicted objects in the baseline order ``how`` (one of :data:`BASELINES`)."""
    if how not in BASELINES:
        raise ValueError(f"unknown baseline {how!r}; choose from {', '.join(BASELINES)}")
    rng = np.random.default_rng(seed)
    out = {}
    for name in sorted(predictions):
        result = predictions[name]
        n = len(result)
        if n == 0:
            out[name] = result
            continue
        masks = result.masks
        if how == "random":
            order = rng.permutation(n)
        elif how == "area":
            order = np.argsort(-masks.reshape(n, -1).sum(1), kind="stable")
        else:
            h, w = masks.shape[1:]
            dist = []
            for m in masks:
                ys, xs = np.nonzero(m)
                dist.append(np.hypot(xs.mean() - w / 2, ys.mean() - h / 2) if len(xs) else np.inf)
            order = np.argsort(np.asarray(dist), kind="stable")
        picked = result.select(order)
        picked.saliency = np.linspace(1.0, 0.5, n).astype(np.float32)
        out[name] = picked
    return out
