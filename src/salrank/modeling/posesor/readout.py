"""PoseSOR's inference read-out: rank scores, ordering, masks, boxes, joints, and the duplicate merge.

For one image, after PAI and PDR (official ``PoseSOR.forward``, inference branch):

1. **Rank score** of every object: ``sum_k softmax(rank_logits)_k * w_k`` with ``w_0 = 0`` and
   ``w_k = 1 / (k + 1e-6)`` (:func:`rank_scores`): mass on "visited first" scores highest.
2. Objects are emitted by **decreasing rank score** (``torch.argsort(-score)``).
3. Per object: the **mask** is the PAI refined-mask logit map bilinearly resized to the image and
   ``sigmoid > 0.5`` (:func:`upsample_masks`); the **score** is the SIS objectness probability; the
   **box** is the PAI box, ``(cx, cy, h, w)`` -> ``x1 y1 x2 y2`` in pixels (:func:`boxes_to_pixels`); the
   **joints** are the argmax of each joint heatmap after bilinear resizing to the image and a softmax over
   all pixels, with the explicit keypoint head's visibility (:func:`heatmap_argmax`).
4. **Duplicate merge** (:func:`merge_duplicates`, official ``post_process``): in rank order, an object
   ``j`` whose mask overlaps an earlier kept object ``i`` by more than 95 % of the smaller mask, and whose
   objectness sum is below ``1 + overlap``, is merged into ``i`` (union mask, max score) and dropped;
   repeated until nothing changes.

Joints without full-resolution heatmaps. The official code upsamples all ``17 x n`` heatmaps to the
image size and keeps them (17 full-size maps per object: most of its 10.7 GiB peak at 768 px with 100
objects). Only the argmax is needed. :func:`heatmap_argmax` with ``method="certified"`` finds it from the
low-resolution map: every output pixel of a bilinear resize is a convex combination of one 2x2 block of
input values, with weights the resize fixes, so a block whose bound (its largest value, then a tighter
bound using the largest weight its pixels give that value) is below the best output value found near the
input maximum cannot hold the maximum; the output pixels of the few remaining blocks are evaluated (in
float64, with the resize's own float32 weights). The answer is **certified** when the best output value
beats every other output pixel by more than a margin that covers float32 rounding of PyTorch's resize
(a few ulps of the map's largest magnitude, plus the difference between the weights with and without fused
multiply-add) and guarantees that the softmax cannot create a tie (a gap of 4e-6 keeps ``exp`` and the
division strictly ordered). Output positions that copy an earlier one exactly (the clamped first rows and
columns) are skipped: the earlier one wins any tie. Maps whose answer is not certified (near-ties, ties at
the far border, flat maps) are resized by PyTorch itself and decided on the exact values, with the
official softmax evaluated when two values are closer than the gap without being equal; so the result is
the official one in every case (checked against the full path in ``tests/test_posesor_readout.py``).
Outputs whose height + width is at most 128 use a
different PyTorch kernel whose arithmetic depends on the tensor layout; they always take the official
path on the whole tensor (cheap at that size).

The merge keeps the official float32 arithmetic of ``maskness`` but counts overlaps with popcounts of
packed bit masks instead of multiplying float masks. Counts are exact integers; the official code sums them
as float32, which is exact below 2^24 pixels per mask (16.7 MP), the only place where the two could differ.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from salrank.ops.boxes import box_cxcyhw_to_xyxy

__all__ = [
    "boxes_to_pixels",
    "heatmap_argmax",
    "merge_duplicates",
    "partition_maps",
    "rank_scores",
    "rank_weights",
    "upsample_masks",
]

# Output sizes with height + width <= this use PyTorch's channels-last bilinear kernel (its
# `_use_vectorized_kernel_cond_2d`), whose rounding depends on the layout of the whole tensor.
_SMALL_OUTPUT = 128
_SOFTMAX_GAP = 4e-6
_EPS32 = 2.0**-24
_MAX_CANDIDATE_BLOCKS = 256  # per map; more means a flat map: use the exact path
_CHUNK_ELEMENTS = 1 << 24


# ------------------------------------------------------------------------------------------ ranks
def rank_weights(levels: int, device: torch.device | str | None = None) -> Tensor:
    """The official rank-class weights: ``1 / (k + 1e-6)`` for class ``k`` and 0 for class 0 (float32)."""
    weights = 1.0 / (torch.arange(levels, device=device) + 1e-6)
    weights[0] = 0.0
    return weights


def rank_scores(rank_logits: Tensor) -> Tensor:
    """``(..., L)`` rank logits -> ``(...)`` expected inverse visiting order (higher = more salient)."""
    return (torch.softmax(rank_logits, dim=-1) * rank_weights(rank_logits.shape[-1], rank_logits.device)).sum(dim=-1)


# ------------------------------------------------------------------------------------------ boxes
def boxes_to_pixels(box_logits: Tensor, height: int, width: int) -> Tensor:
    """``(n, 4)`` PAI box logits -> ``(n, 4)`` ``x1 y1 x2 y2`` pixels (official float32 arithmetic).

    Sigmoid gives ``(cx, cy, h, w)`` relative to the image (note the official ``h, w`` order).
    """
    xyxy = box_cxcyhw_to_xyxy(torch.sigmoid(box_logits))
    return xyxy.cpu() * torch.tensor([width, height, width, height])


# ------------------------------------------------------------------------------------------ masks
def upsample_masks(mask_logits: Tensor, height: int, width: int, threshold: float = 0.5) -> np.ndarray:
    """``(n, h, w)`` mask logits -> ``bool`` ``(n, H, W)``: bilinear resize, sigmoid, ``> threshold``.

    Exactly the official arithmetic (one ``sigmoid`` per ``(H, W)`` map, as the official code applies it),
    computed in chunks of objects so that only a few float maps exist at a time.
    """
    n = mask_logits.shape[0]
    out = np.zeros((n, height, width), dtype=bool)
    if n == 0:
        return out
    if height + width <= _SMALL_OUTPUT:  # layout-dependent kernel: resize the official (1, n, h, w) tensor
        up = F.interpolate(mask_logits.unsqueeze(0), size=(height, width), mode="bilinear")[0]
        for i in range(n):
            out[i] = (up[i].sigmoid() > threshold).cpu().numpy()
        return out
    step = max(1, _CHUNK_ELEMENTS // (height * width))
    for s in range(0, n, step):
        up = F.interpolate(mask_logits[s : s + step].unsqueeze(0), size=(height, width), mode="bilinear")[0]
        for i in range(up.shape[0]):
            out[s + i] = (up[i].sigmoid() > threshold).cpu().numpy()
    return out


def partition_maps(partition_logits: Tensor | np.ndarray, height: int, width: int) -> np.ndarray:
    """"Where attention goes next" maps at image size, as the official result holds them.

    ``(N, h, w)`` partition logits (``extras["partition_logits"]`` of a PoseSOR result) -> ``float32``
    ``(N, H, W)`` probabilities: each map bilinearly resized on its own, then sigmoid (official arithmetic).
    """
    logits = torch.as_tensor(np.asarray(partition_logits, dtype=np.float32)) if isinstance(partition_logits, np.ndarray) else partition_logits
    out = np.zeros((logits.shape[0], height, width), dtype=np.float32)
    for i in range(logits.shape[0]):
        up = F.interpolate(logits[i].float().view(1, 1, *logits.shape[-2:]), size=(height, width), mode="bilinear")
        out[i] = up[0, 0].sigmoid().cpu().numpy()
    return out


# ------------------------------------------------------------------------------------------ joints
def _official_argmax(maps: Tensor, height: int, width: int) -> Tensor:
    """Official joints of ``(n, K, h, w)`` heatmap logits: flat argmax ``y * W + x`` of the resized,
    softmaxed maps, found as the official code does (max over columns, then over rows)."""
    up = F.interpolate(maps, size=(height, width), mode="bilinear")
    prob = torch.softmax(up.flatten(2), dim=-1).unflatten(-1, (height, width))
    row_max, row_idx = torch.max(prob, dim=3)  # n, K, H
    _, y = torch.max(row_max, dim=2)  # n, K
    x = torch.gather(row_idx, 2, y.unsqueeze(2)).squeeze(2)
    return y * width + x


def _exact_argmax(heatmap: Tensor, height: int, width: int) -> Tensor:
    """Official joint of one ``(h, w)`` heatmap (flat ``y * W + x``), resizing it with PyTorch itself.

    The softmax is monotone, and it cannot turn two resized values that differ by more than 4e-6 into a
    tie, so it is evaluated only when the largest values are that close without being equal (equal
    values stay equal and the first one wins, as in the official argmax).
    """
    up = F.interpolate(heatmap.view(1, 1, *heatmap.shape[-2:]), size=(height, width), mode="bilinear").flatten()
    best, index = torch.max(up, dim=0)  # the first maximum
    if int((up >= best - _SOFTMAX_GAP).sum()) == int((up == best).sum()):  # nothing close but exact ties
        return index
    return _official_argmax(heatmap.view(1, 1, *heatmap.shape[-2:]), height, width).view(())


def _axis_tables(in_size: int, out_size: int) -> dict[str, np.ndarray | float]:
    """PyTorch's bilinear (``align_corners=False``) source indices and weights along one axis.

    PyTorch computes ``real = max(scale * (dst + 0.5) - 0.5, 0)`` in float32 with ``scale = in / out``,
    ``i0 = min(floor(real), in - 1)``, ``lambda = clamp(real - i0, 0, 1)``, weights ``(1 - lambda, lambda)``
    on rows ``i0`` and ``min(i0 + 1, in - 1)``. Whether ``scale * x - 0.5`` is rounded once (fused
    multiply-add) or twice depends on how PyTorch was compiled; the tables use the twice-rounded value and
    ``real_err`` is the largest difference between the two, which bounds the difference of the weights
    (it enters the certification margin).
    """
    scale = np.float32(in_size) / np.float32(out_size)
    dst = np.arange(out_size, dtype=np.float32) + np.float32(0.5)
    real = np.maximum((scale * dst).astype(np.float32) - np.float32(0.5), np.float32(0.0))
    fused = np.maximum((np.float64(scale) * dst.astype(np.float64) - 0.5).astype(np.float32), np.float32(0.0))
    real_err = float(np.max(np.abs(real.astype(np.float64) - fused.astype(np.float64)), initial=0.0))
    i0 = np.minimum(np.floor(real).astype(np.int64), in_size - 1)
    lam = np.clip(real - i0.astype(np.float32), np.float32(0.0), np.float32(1.0)).astype(np.float32)
    starts = np.full(in_size, -1, np.int64)
    counts = np.zeros(in_size, np.int64)
    uniq, first, cnt = np.unique(i0, return_index=True, return_counts=True)
    starts[uniq], counts[uniq] = first, cnt
    # Output positions with the same source index and weights as the previous one (at the start edge
    # the clamp makes several identical) get bit-identical values; the first of them wins any argmax.
    repeat = np.zeros(out_size, dtype=bool)
    repeat[1:] = (i0[1:] == i0[:-1]) & (lam[1:] == lam[:-1])
    return {
        "i0": i0,
        "repeat": repeat,
        "w0": (np.float32(1.0) - lam).astype(np.float64),
        "w1": lam.astype(np.float64),
        "start": starts,
        "count": counts,
        "real_err": real_err,
    }


def _evaluate_blocks(
    maps: Tensor, m: Tensor, bi: Tensor, bj: Tensor, ty: dict, tx: dict, ry: int, rx: int
) -> tuple[Tensor, Tensor]:
    """Values (float64) and flat output indices of every output pixel of the 2x2 blocks ``(m, bi, bj)``.

    Returns ``(values, flat)`` of shape ``(K, ry, rx)``; pixels past a block's extent have value ``-inf``.
    """
    dev = maps.device
    nxt_row = torch.clamp(torch.arange(maps.shape[1], device=dev) + 1, max=maps.shape[1] - 1)
    nxt_col = torch.clamp(torch.arange(maps.shape[2], device=dev) + 1, max=maps.shape[2] - 1)
    bi1, bj1 = nxt_row[bi], nxt_col[bj]
    x00 = maps[m, bi, bj].double()
    x01 = maps[m, bi, bj1].double()
    x10 = maps[m, bi1, bj].double()
    x11 = maps[m, bi1, bj1].double()
    ys = torch.as_tensor(ty["start"], device=dev)[bi].unsqueeze(1) + torch.arange(ry, device=dev)  # K, ry
    xs = torch.as_tensor(tx["start"], device=dev)[bj].unsqueeze(1) + torch.arange(rx, device=dev)  # K, rx
    y_ok = torch.arange(ry, device=dev) < torch.as_tensor(ty["count"], device=dev)[bi].unsqueeze(1)
    x_ok = torch.arange(rx, device=dev) < torch.as_tensor(tx["count"], device=dev)[bj].unsqueeze(1)
    H, W = len(ty["i0"]), len(tx["i0"])
    ys_c, xs_c = ys.clamp(max=H - 1), xs.clamp(max=W - 1)
    wy0 = torch.as_tensor(ty["w0"], device=dev)[ys_c]
    wy1 = torch.as_tensor(ty["w1"], device=dev)[ys_c]
    wx0 = torch.as_tensor(tx["w0"], device=dev)[xs_c]
    wx1 = torch.as_tensor(tx["w1"], device=dev)[xs_c]
    top = x00.unsqueeze(1) * wx0 + x01.unsqueeze(1) * wx1  # K, rx
    bottom = x10.unsqueeze(1) * wx0 + x11.unsqueeze(1) * wx1
    values = top.unsqueeze(1) * wy0.unsqueeze(2) + bottom.unsqueeze(1) * wy1.unsqueeze(2)  # K, ry, rx
    y_ok &= ~torch.as_tensor(ty["repeat"], device=dev)[ys_c]  # exact copies of an earlier pixel
    x_ok &= ~torch.as_tensor(tx["repeat"], device=dev)[xs_c]
    ok = y_ok.unsqueeze(2) & x_ok.unsqueeze(1)
    values = values.masked_fill(~ok, float("-inf"))
    flat = ys_c.unsqueeze(2) * W + xs_c.unsqueeze(1)
    return values, flat


def _corner_weight_bounds(table: dict, n_in: int) -> tuple[np.ndarray, np.ndarray]:
    """Per input position ``i`` (a block row or column): the largest weight any output position of the
    block puts on its first and on its second source value (1 for both at the far edge, where the two
    are the same value)."""
    first = np.zeros(n_in)
    second = np.zeros(n_in)
    np.maximum.at(first, table["i0"], table["w0"])
    np.maximum.at(second, table["i0"], table["w1"])
    edge = np.minimum(np.arange(n_in) + 1, n_in - 1) == np.arange(n_in)
    first[edge] = second[edge] = 1.0
    return first, second


def _tight_bounds(maps: Tensor, m: Tensor, bi: Tensor, bj: Tensor, nxt_row: Tensor, nxt_col: Tensor, weights: Tensor) -> Tensor:
    """Upper bounds (float64) of the output pixels of the 2x2 blocks ``(m, bi, bj)``.

    A pixel is ``sum_k w_k x_k`` over the block's four values with weights summing to 1, so it is at most
    ``w * max + (1 - w) * second_max`` where ``w`` is its weight on the largest value; that weight is at
    most the largest weight any pixel of the block gives that corner (``weights``: ``(4, h, w)`` from the
    tables). On rough maps this is far tighter than the block maximum.
    """
    bi1, bj1 = nxt_row[bi], nxt_col[bj]
    corners = torch.stack([maps[m, bi, bj], maps[m, bi, bj1], maps[m, bi1, bj], maps[m, bi1, bj1]]).double()  # 4, K
    top2, which = torch.topk(corners, 2, dim=0)
    omega = weights[which[0], bi, bj].double()
    return torch.minimum(omega * top2[0] + (1.0 - omega) * top2[1], top2[0])


def _certified_argmax(maps: Tensor, height: int, width: int) -> tuple[Tensor, Tensor]:
    """``(M, h, w)`` float32 logits -> ``(flat argmax (M,), certified (M,) bool)`` (see the module docstring).

    Stages: (1) a lower bound of each map's maximum from the output pixels of the four blocks around the
    input maximum; (2) blocks whose largest value could reach it (a cheap dense test); (3) of those, the
    blocks whose tight bound (:func:`_tight_bounds`) could; (4) all output pixels of the remaining
    blocks are evaluated and the best must beat the runner-up by the margin.
    """
    count, h, w = maps.shape
    dev = maps.device
    ty, tx = _axis_tables(h, height), _axis_tables(w, width)
    ry, rx = int(np.max(ty["count"])), int(np.max(tx["count"]))
    nxt_row = torch.clamp(torch.arange(h, device=dev) + 1, max=h - 1)
    nxt_col = torch.clamp(torch.arange(w, device=dev) + 1, max=w - 1)
    has_pixels = torch.as_tensor(np.outer(ty["count"] > 0, tx["count"] > 0), device=dev)
    # |PyTorch's float32 value - ours| <= err: a few roundings of magnitudes <= max|x| (16 ulps allowed),
    # plus the weight difference between fused and separate rounding (<= real_err per axis, on two values)
    real_err = max(float(ty["real_err"]), float(tx["real_err"]))
    lo, hi = torch.aminmax(maps.flatten(1), dim=1)
    maxabs = torch.maximum(hi.abs(), lo.abs()).double()
    err = (16.0 * _EPS32 + 4.0 * real_err) * maxabs + 1e-30
    margin = 2.0 * err + _SOFTMAX_GAP
    m_all = torch.arange(count, device=dev)

    # (1) lower bound: the pixels of the (up to) four blocks that contain the input maximum
    peak = maps.flatten(1).argmax(dim=1)
    pi, pj = peak // w, peak % w
    lower = torch.full((count,), float("-inf"), dtype=torch.float64, device=dev)
    for di in (-1, 0):
        for dj in (-1, 0):
            bi, bj = (pi + di).clamp(min=0), (pj + dj).clamp(min=0)
            ok = has_pixels[bi, bj]
            values, _ = _evaluate_blocks(maps, m_all[ok], bi[ok], bj[ok], ty, tx, ry, rx)
            lower[ok] = torch.maximum(lower[ok], values.flatten(1).amax(dim=1))
    threshold = lower - margin
    # (2) blocks whose maximum reaches the threshold (rounded down to float32: a superset)
    block_max = maps.clone()
    torch.maximum(block_max[:, :-1], maps[:, 1:], out=block_max[:, :-1])
    torch.maximum(block_max[:, :, :-1], block_max[:, :, 1:].clone(), out=block_max[:, :, :-1])
    loose = (block_max >= torch.nextafter(threshold.float(), threshold.new_tensor(float("-inf"), dtype=torch.float32)).view(-1, 1, 1)) & has_pixels
    m_idx, bi, bj = torch.nonzero(loose, as_tuple=True)
    # (3) of those, the blocks whose tight bound reaches it
    r0, r1 = _corner_weight_bounds(ty, h)
    c0, c1 = _corner_weight_bounds(tx, w)
    weights = torch.as_tensor(np.stack([np.outer(r0, c0), np.outer(r0, c1), np.outer(r1, c0), np.outer(r1, c1)]), device=dev)
    keep = _tight_bounds(maps, m_idx, bi, bj, nxt_row, nxt_col, weights) >= threshold[m_idx]
    m_idx, bi, bj = m_idx[keep], bi[keep], bj[keep]
    per_map = torch.bincount(m_idx, minlength=count)
    usable = per_map <= _MAX_CANDIDATE_BLOCKS  # more: a flat map, decided by the exact path
    keep = usable[m_idx]
    m_idx, bi, bj = m_idx[keep], bi[keep], bj[keep]
    # (4) every pixel of the remaining blocks
    best_value = torch.full((count,), float("-inf"), dtype=torch.float64, device=dev)
    best_index = torch.full((count,), height * width, dtype=torch.int64, device=dev)
    second = torch.full((count,), float("-inf"), dtype=torch.float64, device=dev)
    if m_idx.numel():
        vals, flat = _evaluate_blocks(maps, m_idx, bi, bj, ty, tx, ry, rx)
        owner = m_idx.view(-1, 1, 1).expand_as(vals).reshape(-1)
        vals, flat = vals.reshape(-1), flat.reshape(-1)
        best_value.scatter_reduce_(0, owner, vals, reduce="amax")
        at_best = vals == best_value[owner]
        best_index.scatter_reduce_(0, owner[at_best], flat[at_best], reduce="amin")
        others = vals.masked_fill(flat == best_index[owner], float("-inf"))
        second.scatter_reduce_(0, owner, others, reduce="amax")
    certified = usable & torch.isfinite(best_value) & ((best_value - second) > margin)
    return best_index, certified


def heatmap_argmax(
    heatmaps: Tensor | Callable[[Sequence[int]], Tensor],
    num_objects: int,
    height: int,
    width: int,
    method: str = "certified",
    chunk: int = 8,
) -> Tensor:
    """Official joint locations: the argmax of each bilinearly resized, softmaxed joint heatmap.

    Args:
        heatmaps: ``(n, K, h, w)`` heatmap logits of one image, or a function returning them for a list
            of object indices (so the maps of all objects never need to exist at once).
        num_objects: ``n``.
        height, width: the image size the official code resizes to.
        method: ``"certified"`` (low-resolution search with exact fallback) or ``"full"`` (always the
            official full-resolution computation, in chunks of objects).
        chunk: objects per step.

    Returns:
        ``(n, K, 2)`` int64 ``(x, y)`` pixel coordinates (the official ``joints`` are ``x / W, y / H``).
    """
    if method not in ("certified", "full"):
        raise ValueError(f"method must be 'certified' or 'full', not {method!r}")
    get = heatmaps if callable(heatmaps) else (lambda idx: heatmaps[list(idx)])  # type: ignore[index]
    if num_objects == 0:
        return torch.zeros((0, 0, 2), dtype=torch.int64)
    if height + width <= _SMALL_OUTPUT:  # the official layout-dependent kernel on the whole tensor
        flat = _official_argmax(get(range(num_objects)), height, width)
        return torch.stack([flat % width, flat // width], dim=-1).cpu()
    results = []
    for s in range(0, num_objects, chunk):
        maps = get(range(s, min(num_objects, s + chunk)))  # k, K, h, w
        k, joints, h, w = maps.shape
        if method == "full":  # maps in groups that keep the resized float maps within the work budget
            flat_maps = maps.reshape(k * joints, 1, h, w)
            group = max(1, _CHUNK_ELEMENTS // (height * width))
            flat = torch.cat([_official_argmax(flat_maps[g : g + group], height, width) for g in range(0, k * joints, group)])
            flat = flat.view(k, joints)
        else:
            flat_maps = maps.reshape(k * joints, h, w).float()
            index, certified = _certified_argmax(flat_maps, height, width)
            for m in torch.nonzero(~certified).flatten().tolist():
                index[m] = _exact_argmax(flat_maps[m], height, width)
            flat = index.view(k, joints)
        results.append(torch.stack([flat % width, flat // width], dim=-1).cpu())
    return torch.cat(results, dim=0)


# ------------------------------------------------------------------------------------------ merge
def _pack_masks(masks: np.ndarray) -> np.ndarray:
    """``bool`` ``(n, H, W)`` -> ``uint64`` ``(n, words)`` bit rows (for exact overlap counts by popcount)."""
    n = masks.shape[0]
    packed = np.packbits(masks.reshape(n, -1), axis=1)
    pad = (-packed.shape[1]) % 8
    if pad:
        packed = np.pad(packed, ((0, 0), (0, pad)))
    return np.ascontiguousarray(packed).view(np.uint64)


def _popcount(bits: np.ndarray) -> int:
    return int(np.bitwise_count(bits).sum(dtype=np.int64))


def merge_duplicates(masks: np.ndarray, scores: Sequence[float], threshold: float = 0.95) -> tuple[list[int], np.ndarray, list[float], list[list[int]]]:
    """The official ``post_process``: merge near-duplicate objects, earlier (more salient) ones absorbing later ones.

    For kept objects ``i < j`` (rank order): ``maskness = |m_i & m_j| / min(|m_i| + 1e-6, |m_j| + 1e-6)``
    in float32; if ``maskness > threshold`` and ``s_i + s_j < 2 - (1 - maskness)``, ``j`` is merged into
    ``i`` (``m_i |= m_j``, ``s_i = max(s_i, s_j)``) and dropped; ``i`` keeps its updated mask for the
    following ``j``. Passes repeat until one changes nothing. The scalar arithmetic is the official one
    (float32 ``maskness``, float64 score sums); overlaps are exact popcounts of packed bit masks.

    Args:
        masks: ``bool`` ``(n, H, W)`` in rank order (not modified).
        scores: objectness of each object.
        threshold: ``TEST.MASKNESS_THRESHOLD``.

    Returns:
        ``(kept, merged_masks, merged_scores, groups)``: indices (into the input) of the objects that
        remain, in order; their merged masks ``bool`` ``(len(kept), H, W)``; their scores; and for each the
        input indices merged into it (itself first).
    """
    n = masks.shape[0]
    alive = list(range(n))
    cur_scores: list[float | np.floating] = [float(s) for s in scores]
    groups = [[i] for i in range(n)]
    if n < 2:
        return alive, masks.copy(), [float(s) for s in cur_scores], groups
    bits = _pack_masks(masks)
    area = [_popcount(bits[i]) for i in range(n)]
    while True:
        before = len(alive)
        keep = {i: True for i in alive}
        for a, i in enumerate(alive):
            if not keep[i]:
                continue
            for j in alive[a + 1 :]:
                if not keep[j]:
                    continue
                overlap = np.float32(_popcount(bits[i] & bits[j]))
                smaller = min(np.float32(area[i]) + 1e-6, np.float32(area[j]) + 1e-6)
                maskness = overlap / smaller
                objectness = cur_scores[i] + cur_scores[j]
                tolerance = 1.0 - maskness
                if maskness > threshold and objectness < (2.0 - tolerance):
                    bits[i] |= bits[j]
                    area[i] = _popcount(bits[i])
                    cur_scores[i] = np.maximum(cur_scores[i], cur_scores[j])
                    groups[i] += groups[j]
                    keep[j] = False
        alive = [i for i in alive if keep[i]]
        if len(alive) >= before:
            break
    merged = np.zeros((len(alive), *masks.shape[1:]), dtype=bool)
    for out, i in enumerate(alive):
        for k in groups[i]:
            merged[out] |= masks[k]
    return alive, merged, [float(cur_scores[i]) for i in alive], [groups[i] for i in alive]
