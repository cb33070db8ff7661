"""Speed of salrank's evaluation protocols on the workload the official code was timed on.

Workload (as ``../shared/fixtures/metrics/TIMING.md``): synthetic 480x640 images, each with 5 GT objects
and 8 predictions (5 perturbed copies of the GTs + 3 false positives, in shuffled order). The official
seqrank ``Metrics.process`` takes 72.7 ms per image on the 2-core reference machine (81.4 ms with RLE
decoding); PPA's assr ``calculate_spr + eval_mae`` 16.4 ms; PoseSOR's irsr ``evalu`` 31.2 ms.

Rows (median / mean ms per image over the images):

* ``per-image, dense``: the protocol function on decoded masks (the official ``Metrics.process`` row);
* ``per-image, RLE``: the protocol function straight from COCO RLEs (the "RLE decode + process" row:
  salrank never decodes them);
* ``evaluate()``: the full :func:`salrank.evaluate` loop on an in-memory dataset (GT polygons
  rasterised per image as the official mappers do, predictions as ``RankedInstances``), per image;
* assr rows include reading the predicted and GT PNG maps from disk, as the official rows do.

Then the whole-set time of ``evaluate()`` on an ASSR-test-sized set (2418 images, the synthetic images
repeated under new names) and, with ``--cli``, ``salrank eval`` end to end on files (GT JSON + result
``.pth``; includes loading and decoding the predictions).

Run: ``python benchmarks/eval_speed.py [--images 200] [--full 2418] [--cli]``. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from pycocotools import mask as mask_utils

from salrank.evaluation import assr_image_metrics, evaluate, irsr_image_sa_sor, seqrank_image_metrics
from salrank.io.rank_maps import RankMapFolder, render_rank_map
from salrank.structures import GTImage, GTInstance, RankedInstances, SORDataset

H, W = 480, 640
OFFICIAL_MS = {"seqrank": 72.7, "seqrank_rle": 81.4, "assr": 16.4, "irsr": 31.2}


def polygon(rng: np.random.Generator) -> list[float]:
    """A random blob outline with integer vertices (what SeqRank/PoseSOR JSONs hold)."""
    cx, cy = rng.uniform(60, W - 60), rng.uniform(60, H - 60)
    rx, ry = rng.uniform(20, 150), rng.uniform(20, 120)
    t = np.sort(rng.uniform(0, 2 * np.pi, 24))
    r = rng.uniform(0.75, 1.0, 24)
    xs = np.clip(cx + rx * r * np.cos(t), 0, W - 1).round()
    ys = np.clip(cy + ry * r * np.sin(t), 0, H - 1).round()
    return np.stack([xs, ys], 1).reshape(-1).tolist()


def fill(poly: list[float]) -> np.ndarray:
    m = np.zeros((H, W), np.uint8)
    cv2.fillPoly(m, [np.asarray(poly).reshape(-1, 2).astype(np.int32)], 1)
    return m.astype(bool)


def perturb(mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    out = np.roll(mask, (int(rng.integers(-6, 7)), int(rng.integers(-6, 7))), axis=(0, 1))
    k = np.ones((5, 5), np.uint8)
    op = rng.integers(3)
    if op == 1:
        out = cv2.dilate(out.view(np.uint8), k).astype(bool)
    elif op == 2:
        out = cv2.erode(out.view(np.uint8), k).astype(bool)
    return out


def make_workload(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    images, preds = [], {}
    for i in range(n):
        polys = [polygon(rng) for _ in range(5)]
        gt = np.stack([fill(p) for p in polys])
        masks = [perturb(m, rng) for m in gt] + [fill(polygon(rng)) for _ in range(3)]
        order = rng.permutation(8)
        pred = np.stack([masks[k] for k in order])
        name = f"img_{i:05d}"
        # ASSR-style values: ranks 1..5 -> rank_order 1.0 .. 0.6
        inst = [GTInstance(segmentation=[p], rank=k + 1, rank_value=round(1.0 - 0.1 * k, 1), id=k) for k, p in enumerate(polys)]
        images.append(GTImage(name, f"{name}.jpg", H, W, inst))
        preds[name] = RankedInstances.from_masks(pred, image_name=name)
    return SORDataset(images, name="synthetic", format="assr", split="test"), preds


def encode(masks: np.ndarray) -> list[dict]:
    return [mask_utils.encode(np.asfortranarray(m.view(np.uint8))) for m in masks]


def time_each(items, fn) -> tuple[list[float], list[float]]:
    """Wall-clock and CPU milliseconds of ``fn(item)`` for each item."""
    wall, cpu = [], []
    for it in items:
        c0, t0 = time.process_time(), time.perf_counter()
        fn(it)
        wall.append((time.perf_counter() - t0) * 1e3)
        cpu.append((time.process_time() - c0) * 1e3)
    return wall, cpu


def time_total(n: int, fn) -> tuple[list[float], list[float]]:
    """Per-image wall/CPU milliseconds of one call of ``fn`` over ``n`` images (as one-element lists)."""
    c0, t0 = time.process_time(), time.perf_counter()
    fn()
    return [(time.perf_counter() - t0) * 1e3 / n], [(time.process_time() - c0) * 1e3 / n]


def row(name: str, timing: tuple[list[float], list[float]], official: float | None) -> str:
    wall, cpu = timing
    med = statistics.median(wall)
    ratio = f"{official / med:.0f}x" if official else ""
    ref = f"{official:.1f}" if official else ""
    return f"| {name} | {med:.2f} | {statistics.median(cpu):.2f} | {ref} | {ratio} |"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", type=int, default=200, help="synthetic images (default 200, as TIMING.md)")
    ap.add_argument("--full", type=int, default=2418, help="images of the whole-set run (default 2418 = ASSR test)")
    ap.add_argument("--cli", action="store_true", help="also time 'salrank eval' end to end on files")
    args = ap.parse_args()

    dataset, preds = make_workload(args.images)
    gt_dense = [np.stack([inst.mask(H, W) for inst in img.instances]).view(bool) for img in dataset.images]
    gt_rles = [encode(m) for m in gt_dense]
    pred_dense = [preds[img.image_id].masks for img in dataset.images]
    pred_rles = [encode(m) for m in pred_dense]
    idx = range(len(dataset.images))
    ranks = [5, 4, 3, 2, 1]

    lines = [
        "| what (per image, 480x640, 5 GT, 8 predictions) | median ms | CPU ms | official ms | speed-up |",
        "|---|---|---|---|---|",
    ]
    ms = time_each(idx, lambda i: seqrank_image_metrics(gt_dense[i], pred_dense[i]))
    lines.append(row("seqrank: 13 metrics, per-image function, decoded masks", ms, OFFICIAL_MS["seqrank"]))
    ms = time_each(idx, lambda i: seqrank_image_metrics(gt_rles[i], pred_rles[i]))
    lines.append(row("seqrank: 13 metrics, per-image function, from RLE (no decoding needed)", ms, OFFICIAL_MS["seqrank_rle"]))
    reports = []
    lines.append(row("seqrank: evaluate() (GT polygons rasterised, RankedInstances), mean",
                     time_total(len(dataset), lambda: reports.append(evaluate(dataset, preds, "seqrank"))), OFFICIAL_MS["seqrank"]))

    ms = time_each(idx, lambda i: irsr_image_sa_sor(gt_rles[i], ranks, pred_rles[i], height=H, width=W))
    lines.append(row("irsr: SA-SOR, per-image function, from RLE", ms, OFFICIAL_MS["irsr"]))
    lines.append(row("irsr: evaluate(), mean", time_total(len(dataset), lambda: evaluate(dataset, preds, "irsr")), OFFICIAL_MS["irsr"]))

    with tempfile.TemporaryDirectory() as tmp:
        pred_dir, gt_dir = Path(tmp, "pred"), Path(tmp, "gt")
        pred_dir.mkdir()
        gt_dir.mkdir()
        from salrank.data.formats.assr import rank_order_values, render_gt_map

        for img in dataset.images:
            cv2.imwrite(str(pred_dir / f"{img.image_id}.png"), render_rank_map(preds[img.image_id], "assr"))
            cv2.imwrite(str(gt_dir / f"{img.image_id}.png"), render_gt_map(img, rank_order_values(img, True)))
        assr_rles = [[mask_utils.merge(mask_utils.frPyObjects(inst.segmentation, H, W)) for inst in img.instances] for img in dataset.images]
        values = [1.0, 0.9, 0.8, 0.7, 0.6]

        def assr_one(i: int) -> None:
            name = dataset.images[i].image_id
            pmap = cv2.imread(str(pred_dir / f"{name}.png"), cv2.IMREAD_COLOR)[:, :, 0]
            gmap = cv2.imread(str(gt_dir / f"{name}.png"), cv2.IMREAD_COLOR)[:, :, 0]
            assr_image_metrics(assr_rles[i], values, np.ascontiguousarray(pmap), np.ascontiguousarray(gmap))

        ms = time_each(idx, assr_one)
        lines.append(row("assr: SOR + MAE + binary MAE, per-image function (2 PNG reads incl.)", ms, OFFICIAL_MS["assr"]))
        lines.append(row("assr: evaluate() on a map folder (2 PNG reads incl.), mean",
                         time_total(len(dataset), lambda: evaluate(dataset, RankMapFolder(pred_dir), "assr", gt_maps=gt_dir)),
                         OFFICIAL_MS["assr"]))

    # whole ASSR-test-sized set: the synthetic images repeated under new names
    reps = -(-args.full // len(dataset))
    big_images, big_preds = [], {}
    for r in range(reps):
        for img in dataset.images:
            if len(big_images) == args.full:
                break
            name = f"{img.image_id}_{r}"
            big_images.append(GTImage(name, f"{name}.jpg", H, W, img.instances))
            big_preds[name] = preds[img.image_id]
    big = SORDataset(big_images, name="synthetic", format="assr", split="test")
    c0, t0 = time.process_time(), time.perf_counter()
    evaluate(big, big_preds, "seqrank")
    whole, whole_cpu = time.perf_counter() - t0, time.process_time() - c0

    print(f"salrank evaluation speed, {platform.processor() or platform.machine()}, {os.cpu_count()} logical CPUs, "
          f"Python {platform.python_version()}, numpy {np.__version__}, {time.strftime('%Y-%m-%d')}")
    print(f"workload: {len(dataset)} synthetic {H}x{W} images, 5 GT + 8 predictions each\n")
    print("\n".join(lines))
    print(f"\nseqrank evaluate() on {len(big)} images (ASSR test size): {whole:.2f} s wall, {whole_cpu:.2f} s CPU "
          f"(official: {OFFICIAL_MS['seqrank'] * len(big) / 1000:.0f} s for Metrics.process alone)")
    print(f"load average during the run: {', '.join(f'{v:.1f}' for v in os.getloadavg())} "
          f"(on a busy machine wall-clock times exceed CPU times)")
    assert reports[0].counts["sa_sor"] == len(dataset)

    if args.cli:
        from salrank.io import save_result_file

        with tempfile.TemporaryDirectory() as tmp:
            gt_file = Path(tmp, "synthetic_test.json")
            _write_posesor(big, gt_file)
            pth = Path(tmp, "results.pth")
            save_result_file(big_preds, pth)
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-m", "salrank", "-q", "eval", "--protocol", "seqrank", "--gt", str(gt_file),
                            "--pred", str(pth), "--no-progress"], check=True, stdout=subprocess.DEVNULL)
            print(f"salrank eval (CLI, new process) on {len(big)} images incl. reading the GT JSON and the result .pth: "
                  f"{time.perf_counter() - t0:.1f} s")


def _write_posesor(dataset: SORDataset, path: Path) -> None:
    import json

    images, anns = [], []
    for k, img in enumerate(dataset.images, start=1):
        images.append({"id": k, "file_name": img.file_name, "height": img.height, "width": img.width})
        for inst in img.instances:
            anns.append({"id": len(anns) + 1, "image_id": k, "category_id": inst.rank, "segmentation": inst.segmentation})
    path.write_text(json.dumps({"images": images, "annotations": anns, "categories": [{"id": 1, "name": "object"}]}))


if __name__ == "__main__":
    main()
