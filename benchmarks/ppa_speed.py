"""CPU (and GPU, where there is one) latency and memory of the full-size PPA model.

Set-up as the official timing in ``../shared/fixtures/models/TIMING.md``: VoVNet-39-eSE PPA
(``configs/sor/ppa.yaml``), random weights with the FCOS class bias set to -0.6 and the box-regression
bias to 3.0 so that the 50-detection cap is reached, a 640x480 photo, float32, eval mode, no grad,
2 CPU threads, one warm-up call and 3 timed calls (median reported). Each call is
``read_image`` + ``model.predict`` (official preprocessing, network, post-processing, mask pasting).
The official code took **1.20 s** per call on this machine (2 vCPU Xeon, torch 2.13 CPU).

Run: ``python benchmarks/ppa_speed.py [--image PATH] [--runs 3] [--threads 2] [--profile]``
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import time
from pathlib import Path

import torch

OFFICIAL_SECONDS = 1.20  # TIMING.md, PPA with 50 detections, median of 3
REPO = Path(__file__).resolve().parents[1]
DEFAULT_IMAGE = REPO.parent / "shared" / "fixtures" / "models" / "ppa" / "input.jpg"


def peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2  # kB on Linux


def build(seed: int, device: str):
    from salrank.modeling.ppa import build_ppa, ppa_v39_config

    torch.manual_seed(seed)
    model = build_ppa(ppa_v39_config())
    with torch.no_grad():
        model.fcos.cls_logits.bias.fill_(-0.6)
        model.fcos.bbox_pred.bias.fill_(3.0)
    return model.to(device).eval()


def _machine_ticks() -> tuple[int, int]:
    """(busy ticks of the whole machine, ticks of this process) from /proc (Linux); (0, 0) elsewhere."""
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        own = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0, 0
    busy = sum(fields) - fields[3] - fields[4]  # minus idle and iowait
    return busy, int(own[11]) + int(own[12])  # utime + stime


def time_calls(model, image_path: Path, runs: int, device: str, max_foreign: float, attempts: int) -> tuple[float, list[float], list[float], object]:
    """Warm-up + ``runs`` timed calls; a call during which other processes used more than ``max_foreign``
    of the machine's CPUs is repeated (at most ``attempts`` calls in all), since this machine is shared."""
    from salrank.utils.io import read_image

    ncpu = os.cpu_count() or 1
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100

    def call():
        if device == "cuda":
            torch.cuda.synchronize()
        busy0, own0 = _machine_ticks()
        t0 = time.perf_counter()
        result = model.predict([read_image(image_path)], [image_path.stem])[0]
        if device == "cuda":
            torch.cuda.synchronize()
        dt = time.perf_counter() - t0
        busy1, own1 = _machine_ticks()
        foreign = max(0, (busy1 - busy0) - (own1 - own0)) / tick / (dt * ncpu)
        return dt, foreign, result

    warm, _, _ = call()
    times, foreign_shares, result = [], [], None
    for _ in range(attempts):
        t, foreign, result = call()
        if foreign <= max_foreign:
            times.append(t)
            foreign_shares.append(foreign)
        if len(times) == runs:
            break
    return warm, times, foreign_shares, result


def count_detections(model, image_path: Path) -> int:
    from salrank.utils.io import read_image

    image = read_image(image_path)
    pred = model.run_image(model.preprocess(image).to(model.device), output_hw=image.shape[:2])
    return len(pred.detections)


def profile(model, image_path: Path) -> None:
    """Per-stage wall time of one call (forward hooks on the top-level modules)."""
    from salrank.utils.io import read_image

    image = read_image(image_path)
    stamps: dict[str, float] = {}

    def pre(name):
        return lambda *_: stamps.__setitem__(name + ".start", time.perf_counter())

    def post(name):
        return lambda *_: stamps.__setitem__(name, stamps.get(name, 0.0) + time.perf_counter() - stamps[name + ".start"])

    handles = []
    for name in ("backbone", "neck", "fcos", "roi_heads", "roi_heads.mask_head", "roi_heads.maskiou_head", "roi_heads.rank_head"):
        mod = model.get_submodule(name)
        handles += [mod.register_forward_pre_hook(pre(name)), mod.register_forward_hook(post(name))]
    t0 = time.perf_counter()
    model.predict([image])
    total = time.perf_counter() - t0
    for h in handles:
        h.remove()
    parts = {k: round(v, 3) for k, v in stamps.items() if not k.endswith(".start")}
    print(json.dumps({"total": round(total, 3), **parts}, indent=1))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--image", type=Path, default=DEFAULT_IMAGE)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--profile", action="store_true", help="also print the time per stage of one call")
    parser.add_argument("--max-foreign", type=float, default=1.0,
                        help="repeat a timed call when other processes used more than this share of the CPUs during it "
                        "(e.g. 0.1 on a shared machine; default 1.0 = keep every call)")
    parser.add_argument("--attempts", type=int, default=30, help="at most this many timed calls in all")
    args = parser.parse_args()
    if not args.image.is_file():
        print(f"image not found: {args.image} (pass --image)", file=sys.stderr)
        return 2
    if args.device == "cuda" and not torch.cuda.is_available():
        print("no GPU available", file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    model = build(args.seed, args.device)
    build_s = time.perf_counter() - t0
    n_params = sum(p.numel() for p in model.parameters())
    n_det = count_detections(model, args.image)
    warm, times, foreign, result = time_calls(model, args.image, args.runs, args.device, args.max_foreign, args.attempts)
    if not times:
        print(f"no call ran with less than {args.max_foreign:.0%} foreign CPU load in {args.attempts} attempts", file=sys.stderr)
        return 1
    median = statistics.median(times)
    report = {
        "device": args.device,
        "threads": args.threads,
        "torch": torch.__version__,
        "image": args.image.name,
        "params_M": round(n_params / 1e6, 1),
        "detections": n_det,
        "ranked": len(result),
        "build_s": round(build_s, 2),
        "warmup_s": round(warm, 3),
        "runs_s": [round(t, 3) for t in times],
        "foreign_cpu_share": [round(f, 3) for f in foreign],
        "median_s": round(median, 3),
        "peak_rss_GiB": round(peak_rss_gib(), 2),
        "official_median_s": OFFICIAL_SECONDS if args.device == "cpu" else None,
        "speedup_vs_official": round(OFFICIAL_SECONDS / median, 2) if args.device == "cpu" else None,
    }
    print(json.dumps(report, indent=1))
    if args.profile:
        profile(model, args.image)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
