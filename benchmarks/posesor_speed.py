"""CPU (and GPU, where there is one) latency and memory of the full-size PoseSOR model.

Set-up as the official timing in ``../shared/fixtures/models/TIMING.md``: PoseSOR Swin-L
(``configs/swinL.yaml``) at ``TEST_IMAGE_SIZE`` 768, random weights (with the official initialisation every
query clears the objectness threshold, so all 100 go through PAI/PDR: the worst case), a 768x768 photo,
float32, eval mode, no grad, 2 CPU threads, one warm-up call and 3 timed calls (median reported). Each call
is ``read_image`` + ``model.predict`` (official preprocessing, network, read-out, duplicate merge).
The official code took **23.77 s** per call on this machine (PAI 15.8 s of it) with a peak RSS of
**10.7 GiB** (2 vCPU Xeon, torch 2.13 CPU).

``--check`` also runs the model in its official-arithmetic configuration (explicit per-object gated
attention, explicit pairwise MLP, full-resolution heatmap argmax) on the same image and reports whether the
outputs are identical (ranking, masks, joints) and the largest score/box differences.

Run: ``python benchmarks/posesor_speed.py [--image PATH] [--runs 3] [--threads 2] [--profile] [--check]
[--device cuda] [--dtype bfloat16]``
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from _stage_timer import stage_seconds  # benchmarks/ is on sys.path when a benchmark runs

OFFICIAL_SECONDS = 23.77  # TIMING.md, PoseSOR 768x768, median of 3
OFFICIAL_PEAK_GIB = 10.7
REPO = Path(__file__).resolve().parents[1]
DEFAULT_PHOTO = REPO.parent / "shared" / "fixtures" / "models" / "posesor" / "input.jpg"


def peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2  # kB on Linux


def square_photo(source: Path, size: int, folder: Path) -> Path:
    """A ``size x size`` JPEG made from ``source`` (the official timing used a 768x768 input)."""
    import cv2

    from salrank.utils.io import read_image

    image = cv2.resize(read_image(source), (size, size), interpolation=cv2.INTER_AREA)
    path = folder / f"{source.stem}_{size}.jpg"
    cv2.imwrite(str(path), image[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 95])
    return path


def build(seed: int, device: str, **overrides):
    from salrank.modeling.posesor import build_posesor, posesor_swinl_config

    torch.manual_seed(seed)
    model = build_posesor(posesor_swinl_config("full", **overrides))
    return model.to(device).eval()


def time_calls(model, image_path: Path, runs: int, device: str, dtype: torch.dtype | None):
    from salrank.utils.io import read_image

    def call():
        if device == "cuda":
            torch.cuda.synchronize()
        t0, c0 = time.perf_counter(), cpu_seconds()
        with torch.autocast(device_type=device, dtype=dtype, enabled=dtype is not None):
            result = model.predict([read_image(image_path)], [image_path.stem])[0]
        if device == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - t0, cpu_seconds() - c0, result

    warm, _, _ = call()
    times, cpu, result = [], [], None
    for _ in range(runs):
        t, c, result = call()
        times.append(t)
        cpu.append(c)
    return warm, times, cpu, result


def cpu_seconds() -> float:
    """User + system CPU time of this process (all threads): less sensitive than wall time to other load."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def profile(model, image_path: Path) -> dict[str, float]:
    """Per-stage wall time of one call (forward hooks on the top-level modules; the rest is read-out)."""
    from salrank.utils.io import read_image

    image = read_image(image_path)
    stages = ("backbone", "neck", "sis_decoder", "pose_interaction", "pose_ranking")
    total, seconds = stage_seconds(model, stages, lambda: model.predict([image]))
    parts = {k: round(v, 3) for k, v in seconds.items()}
    parts["read-out (masks, joints, merge)"] = round(total - sum(parts.values()), 3)
    return {"total": round(total, 3), **parts}


def compare(fast, official) -> dict[str, object]:
    """Whether two results are the same ranking (and how far their float outputs are)."""
    same = len(fast) == len(official)
    out: dict[str, object] = {"objects": [len(fast), len(official)]}
    if same:
        out["same_query_order"] = bool(np.array_equal(fast.extras["query_index"], official.extras["query_index"]))
        out["masks_equal"] = bool(np.array_equal(fast.masks, official.masks))
        out["joints_equal"] = bool(np.array_equal(fast.keypoints[..., :2], official.keypoints[..., :2]))
        out["max_score_diff"] = float(np.abs(fast.scores - official.scores).max(initial=0))
        out["max_saliency_diff"] = float(np.abs(fast.saliency - official.saliency).max(initial=0))
        out["max_box_diff_px"] = float(np.abs(fast.boxes - official.boxes).max(initial=0))
        out["max_visibility_diff"] = float(np.abs(fast.keypoints[..., 2] - official.keypoints[..., 2]).max(initial=0))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--image", type=Path, default=None, help="a photo (default: the fixture photo resized to 768x768)")
    parser.add_argument("--size", type=int, default=768, help="side of the square photo made when --image is not given")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"], help="autocast dtype")
    parser.add_argument("--profile", action="store_true", help="also print the time per stage of one call")
    parser.add_argument("--check", action="store_true", help="compare with the official-arithmetic configuration")
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        print("no GPU available", file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)
    dtype = None if args.dtype == "float32" else getattr(torch, args.dtype)
    with tempfile.TemporaryDirectory() as tmp:
        image = args.image
        if image is None:
            if not DEFAULT_PHOTO.is_file():
                print(f"photo not found: {DEFAULT_PHOTO} (pass --image)", file=sys.stderr)
                return 2
            image = square_photo(DEFAULT_PHOTO, args.size, Path(tmp))
        if not image.is_file():
            print(f"image not found: {image}", file=sys.stderr)
            return 2
        t0 = time.perf_counter()
        model = build(args.seed, args.device)
        build_s = time.perf_counter() - t0
        n_params = sum(p.numel() for p in model.parameters())
        load_before = os.getloadavg()[0]
        warm, times, cpu, result = time_calls(model, image, args.runs, args.device, dtype)
        median = statistics.median(times)
        hits = int(result.extras["query_index"].size) + sum(len(g) - 1 for g in result.extras["merged_queries"])
        report = {
            "device": args.device if args.device == "cpu" else torch.cuda.get_device_name(),
            "dtype": args.dtype,
            "threads": args.threads,
            "torch": torch.__version__,
            "image": f"{image.name}",
            "params_M": round(n_params / 1e6, 1),
            "objects_through_PAI": hits,
            "objects_after_merge": len(result),
            "build_s": round(build_s, 2),
            "warmup_s": round(warm, 3),
            "runs_s": [round(t, 3) for t in times],
            "median_s": round(median, 3),
            "cpu_s_per_call": [round(c, 2) for c in cpu],
            "peak_rss_GiB": round(peak_rss_gib(), 2),
            "load_average_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        }
        if args.device == "cpu":
            report.update(
                official_median_s=OFFICIAL_SECONDS,
                speedup_vs_official=round(OFFICIAL_SECONDS / median, 2),
                official_peak_rss_GiB=OFFICIAL_PEAK_GIB,
                memory_ratio_vs_official=round(peak_rss_gib() / OFFICIAL_PEAK_GIB, 2),
            )
        else:
            report["peak_gpu_GiB"] = round(torch.cuda.max_memory_allocated() / 1024**3, 2)
        print(json.dumps(report, indent=1), flush=True)
        if args.profile:
            print(json.dumps(profile(model, image), indent=1), flush=True)
        if args.check:
            from salrank.utils.io import read_image

            model.cfg.joint_argmax = "full"
            model.pose_interaction.set_gated_attention("explicit")
            model.pose_ranking.pairwise = "explicit"
            t0 = time.perf_counter()
            official = model.predict([read_image(image)], [image.stem])[0]
            check = compare(result, official)
            check["official_arithmetic_s"] = round(time.perf_counter() - t0, 2)
            print(json.dumps({"check_vs_official_arithmetic": check}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
