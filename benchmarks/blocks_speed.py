"""CPU speed of the shared SeqRank/PoseSOR building blocks at full size.

Workload (as ``../shared/fixtures/models/TIMING.md``, which timed the official modules inside the full
models): batch 1, float32, eval mode, ``torch.no_grad()``, 2 threads.

* Swin-L (embed 192, depths 2-2-18-2, window 12) on an 800x800 input;
* the FPN (corrected SeqRank, PoseSOR) and the FrcPN (original SeqRank) with 256 channels on the Swin-L
  feature maps of an 800x800 input (200x200 ... 25x25).

Random weights (speed does not depend on them). One warm-up call, then ``--runs`` timed calls; the
median is reported beside the official module times measured on the same 2-core machine.

Run: ``python benchmarks/blocks_speed.py [--runs 3] [--size 800] [--threads 2] [--json out.json]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Callable

import torch

from salrank.modeling.backbones import SwinConfig, SwinTransformer
from salrank.modeling.necks import FPN, FrcPN

# Official per-module medians at 800x800 from ../shared/fixtures/models/TIMING.md (seconds).
OFFICIAL_S = {"swin_l": 5.75, "fpn": 0.30, "frcpn": 2.88}


def timed(fn: Callable[[], object], runs: int) -> tuple[float, list[float]]:
    fn()  # warm-up
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--size", type=int, default=800)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--only", choices=["swin_l", "fpn", "frcpn"], action="append")
    parser.add_argument("--json", help="also write the results to this JSON file")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    wanted = args.only or ["swin_l", "fpn", "frcpn"]

    backbone = SwinTransformer(SwinConfig.large()).eval()
    image = torch.randn(1, 3, args.size, args.size)
    with torch.no_grad():
        feats = backbone(image)
    necks = {"fpn": FPN(backbone.num_features, 256).eval(), "frcpn": FrcPN(backbone.num_features, 256).eval()}

    results = {}
    with torch.no_grad():
        for name in wanted:
            fn = (lambda: backbone(image)) if name == "swin_l" else (lambda n=necks[name]: n(feats))
            median, runs = timed(fn, args.runs)
            results[name] = {"median_s": median, "runs_s": runs}

    print(f"torch {torch.__version__}, {args.threads} threads, {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs; input {args.size}x{args.size}, batch 1, float32, no_grad\n")
    print("| module | salrank median (s) | runs (s) | official (s, TIMING.md) | speed-up |")
    print("|---|---|---|---|---|")
    labels = {"swin_l": "Swin-L backbone", "fpn": "FPN neck (256)", "frcpn": "FrcPN neck (256)"}
    for name, r in results.items():
        official = OFFICIAL_S[name] if args.size == 800 and args.threads == 2 else None
        speedup = f"{official / r['median_s']:.2f}x" if official else "-"
        runs = ", ".join(f"{t:.3f}" for t in r["runs_s"])
        print(f"| {labels[name]} | {r['median_s']:.3f} | {runs} | {official if official else '-'} | {speedup} |")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"size": args.size, "threads": args.threads, "torch": torch.__version__, "results": results}, fh, indent=2)


if __name__ == "__main__":
    main()
