"""Correlation coefficients computed with exactly the floating-point steps of the official code.

The official protocols call ``np.corrcoef`` (SeqRank SA-SOR), ``scipy.stats.spearmanr`` (SeqRank
SOR, ASSR SOR) and pandas' ``Series.corr`` (IRSR SA-SOR). Their aggregates are rounded to 4
decimals, so a last-bit difference could in principle move a published number; these helpers
therefore run the same numpy reductions on the same array layouts (the vectors are tiny: one entry
per object, so this costs microseconds) and only replace scipy's rank computation, which is exact in
any implementation.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def average_ranks(values: Sequence[float] | np.ndarray) -> np.ndarray:
    """1-based ranks, ties get the mean of their positions (``scipy.stats.rankdata(method="average")``)."""
    x = np.asarray(values)
    n = len(x)
    order = np.argsort(x, kind="stable")
    sorted_x = x[order]
    # Start of each run of equal values in sorted order.
    new_run = np.r_[True, sorted_x[1:] != sorted_x[:-1]]
    run_id = np.cumsum(new_run) - 1
    starts = np.flatnonzero(new_run)
    ends = np.r_[starts[1:], n]  # exclusive
    mean_rank = (starts + 1 + ends) / 2.0  # mean of the 1-based positions start+1 .. end
    ranks = np.empty(n, dtype=np.float64)
    ranks[order] = mean_rank[run_id]
    return ranks


def min_ranks(values: Sequence[float] | np.ndarray) -> np.ndarray:
    """``1 + (number of values strictly smaller)`` for each value ("1224" ranking, ascending).

    This is what the IRSR code computes with ``sorted(v).index(a) + 1``.
    """
    x = np.asarray(values)
    if len(x) == 0:
        return np.zeros(0, dtype=np.int64)
    return np.searchsorted(np.sort(x, kind="stable"), x, side="left").astype(np.int64) + 1


def numpy_pearson(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray) -> float:
    """``np.corrcoef(x, y)[0, 1]`` (NaN, without a warning, when either vector is constant or has one entry)."""
    if len(x) < 2:
        return np.float64(np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.corrcoef(x, y)[0, 1]


def scipy_spearman(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray) -> float:
    """The statistic of ``scipy.stats.spearmanr(x, y)`` for two 1-D vectors.

    Same steps as scipy 1.17: NaN for fewer than 2 observations or a constant input (checked on the raw
    values), otherwise the Pearson correlation of average ranks computed by ``np.corrcoef`` on the
    ``(n, 2)`` column stack with ``rowvar=False`` (the layout matters for the last bit of the BLAS dot).
    """
    a = np.column_stack((np.asarray(x), np.asarray(y)))
    if a.shape[0] <= 1:
        return np.float64(np.nan)
    if (a[:, 0][0] == a[:, 0]).all() or (a[:, 1][0] == a[:, 1]).all():
        return np.float64(np.nan)
    ranked = np.column_stack((average_ranks(a[:, 0]), average_ranks(a[:, 1])))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.corrcoef(ranked, rowvar=False)[1, 0]
