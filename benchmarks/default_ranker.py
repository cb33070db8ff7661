"""Speed and a sanity check of the training-free default ranker (``salrank-default``).

* **Speed**: seconds per image of ``DefaultRanker.predict`` on the real COCO photos in
  ``../shared/images/coco`` (or ``--images DIR``), with and without the MediaPipe people model, with
  ``--threads`` global torch threads (default 2, the reference machine; the ranker runs its network
  with ``DefaultRankerConfig.torch_threads``, 1 by default). The first image of each
  configuration is a warm-up and is not counted. Reported: median, mean and 90th percentile of the
  wall-clock time, and the median process CPU time (all threads; on a busy machine the CPU time is
  the steadier number, and wall time is at least CPU time / threads).
* **Synthetic order check**: ``--synthetic N`` scenes with a known, obvious order (a large saturated
  object near the centre, a small muted one off-centre, on a noisy sky/ground background; the scene
  generator of ``tests/test_default_ranker.py``). A scene counts as correct when the large object is
  rank 1 (mask IoU > 0.5) and the small one is found (IoU > 0.3) and ranked after it.

Run: ``python benchmarks/default_ranker.py [--threads 2] [--synthetic 50] [--images DIR]``.
Prints a markdown table.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))


def _time_config(images: list[np.ndarray], use_people: bool) -> tuple[list[float], list[float]]:
    """Wall-clock and process CPU seconds per image."""
    from salrank.modeling.default import DefaultRanker, DefaultRankerConfig

    ranker = DefaultRanker(DefaultRankerConfig(use_people=use_people))
    ranker.predict(images[:1])  # warm-up (model load, oneDNN kernels, MediaPipe graphs)
    wall, cpu = [], []
    for img in images:
        t0, c0 = time.perf_counter(), time.process_time()
        ranker.predict([img])
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return wall, cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=Path, default=REPO.parent / "shared" / "images" / "coco")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--synthetic", type=int, default=50)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from salrank.modeling.default.people import mediapipe_available
    from salrank.utils.io import list_images, read_image

    paths = list_images([str(args.images)])
    images = [read_image(p) for p in paths]
    sizes = sorted({f"{im.shape[1]}x{im.shape[0]}" for im in images})
    print(f"{len(images)} photos ({', '.join(sizes)}), torch {torch.__version__}, {args.threads} threads, {platform.processor() or platform.machine()}\n")
    print("| configuration | median s | mean s | p90 s | median CPU s |")
    print("|---|---|---|---|---|")
    configs = [("EfficientNet-Lite0 + saliency, no people", False)]
    if mediapipe_available():
        configs.append(("with MediaPipe people + poses", True))
    for label, people in configs:
        t, cpu = _time_config(images, people)
        print(f"| {label} | {statistics.median(t):.3f} | {statistics.mean(t):.3f} | {np.percentile(t, 90):.3f} | {statistics.median(cpu):.3f} |")

    if args.synthetic:
        from test_default_ranker import order_is_correct, synthetic_scene

        from salrank.modeling.default import DefaultRanker, DefaultRankerConfig

        ranker = DefaultRanker(DefaultRankerConfig(use_people=False))
        correct = 0
        for seed in range(args.synthetic):
            img, big, small = synthetic_scene(1000 + seed)
            correct += order_is_correct(ranker.predict([img])[0], big, small)
        print(f"\nsynthetic scenes in the obvious order: {correct}/{args.synthetic} ({100.0 * correct / args.synthetic:.0f} %)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
