"""Training speed and model cost: iteration time, images/s, peak memory; parameters, GFLOPs, CPU latency.

    python benchmarks/train_speed.py --gpu        # SeqRank Swin-L 800 px batch 8 bf16, PoseSOR 768 px (CUDA)
    python benchmarks/train_speed.py --cpu        # seqrank-lite training images/s on the CPU
    python benchmarks/train_speed.py --cost       # parameters, GFLOPs and CPU latency, seqrank-lite vs SeqRank

Training steps are full optimiser steps of :mod:`salrank.training` (forward, SeqRank's teacher-forced loss,
backward, clipping, AdamW) on synthetic batches with 4 objects per image; medians over ``--steps`` after
``--warmup``. GFLOPs are counted with ``torch.utils.flop_counter.FlopCounterMode`` on one image: the
network (backbone, neck, Fovea Module) plus one Sequential Ranking Module step (the read-out runs one
step per ranked object, plus the final one).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from salrank.training.config import load_train_config
from salrank.training.optim import build_optimizer, clip_gradients
from salrank.training.tasks import LossModule, get_task


def synthetic_batch(batch: int, size: int, objects: int = 4, keypoints: bool = False) -> tuple[torch.Tensor, list[dict]]:
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (batch, 3, size, size), dtype=torch.uint8, generator=g)
    targets = []
    for _ in range(batch):
        masks = torch.zeros(objects, size, size, dtype=torch.uint8)
        for k in range(objects):
            y, x = torch.randint(0, size // 2, (2,), generator=g).tolist()
            masks[k, y : y + size // 3, x : x + size // 4] = 1
        t = {"masks": masks, "boxes": torch.rand(objects, 4, generator=g).sort(dim=1).values, "ranks": torch.arange(1, objects + 1), "visiting_order": torch.arange(1, objects + 1)}
        t["keypoints"] = torch.rand(objects, 17, 3, generator=g)
        t["next_targets"] = torch.cat([masks[1:], 1 - masks.amax(0, keepdim=True)])
        targets.append(t)
    return images, targets


def time_training(recipe: str, overrides: list[str], batch: int, size: int, steps: int, warmup: int, device: str, amp: str) -> dict:
    cfg = load_train_config(recipe, overrides + [f"solver.ims_per_gpu={batch}", f"input.size={size}", f"solver.amp={amp}", "model.pretrained_backbone=null"])
    task = get_task(cfg.model.architecture)
    model = task.build_model(cfg)
    module = LossModule(model, task, task.build_criterion(cfg), cfg).to(device)
    module.train()
    opt = build_optimizer(model, cfg.solver)
    images, targets = synthetic_batch(batch, size)
    images = images.to(device)
    targets = [{k: v.to(device) for k, v in t.items()} for t in targets]
    dev = torch.device(device)
    scaler = torch.amp.GradScaler(dev.type, enabled=amp == "fp16")
    times = []
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    for i in range(warmup + steps):
        if dev.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        ctx = torch.autocast(dev.type, dtype=torch.bfloat16 if amp == "bf16" else torch.float16) if amp != "none" else torch.autocast(dev.type, enabled=False)
        with ctx:
            losses = module(images, targets)
        scaler.scale(sum(losses.values())).backward()
        scaler.unscale_(opt)
        clip_gradients(model.parameters(), cfg.solver.clip_grad_norm)
        scaler.step(opt)
        scaler.update()
        opt.zero_grad(set_to_none=True)
        if dev.type == "cuda":
            torch.cuda.synchronize()
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    med = statistics.median(times)
    out = {"recipe": recipe, "batch": batch, "size": size, "amp": amp, "device": device, "iteration_s": round(med, 4), "images_per_s": round(batch / med, 2)}
    if dev.type == "cuda":
        out["peak_memory_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
    return out


def model_cost(preset: str, size: int, latency_runs: int = 3) -> dict:
    from torch.utils.flop_counter import FlopCounterMode

    import salrank.modeling.lite  # noqa: F401
    from salrank.modeling.seqrank import SeqRank, seqrank_preset

    cfg = seqrank_preset(preset)
    model = SeqRank(cfg).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    x = torch.zeros(1, 3, size, size)
    counter = FlopCounterMode(display=False)
    with counter:
        out = model(model.normalize(x), all_masks=False)
        network = counter.get_total_flops()
        q, qpe, z, zpe = model.ranking_inputs(out)
        model.ranking(q, qpe, z, zpe, torch.zeros(1, q.shape[1]))
    srm = counter.get_total_flops() - network
    import numpy as np

    image = np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    model.predict([image])
    lat = []
    for _ in range(latency_runs):
        t0 = time.perf_counter()
        model.predict([image])
        lat.append(time.perf_counter() - t0)
    return {
        "preset": preset,
        "size": size,
        "parameters_m": round(sum(p.numel() for p in model.parameters()) / 1e6, 2),
        "gflops_network": round(network / 1e9, 2),
        "gflops_srm_step": round(srm / 1e9, 3),
        "cpu_latency_s": round(statistics.median(lat), 3),
        "threads": torch.get_num_threads(),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gpu", action="store_true")
    ap.add_argument("--cpu", action="store_true")
    ap.add_argument("--cost", action="store_true")
    ap.add_argument("--full-cost", action="store_true", help="also the full Swin-L SeqRank at 800 px (slow on a CPU)")
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--out", default=None, help="write the results as JSON")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    results = []
    if args.gpu:
        if not torch.cuda.is_available():
            print("not measured: no GPU available")
        else:
            results.append(time_training("seqrank_swinL_assr_correct", [], 8, 800, args.steps, args.warmup, "cuda", "bf16"))
            try:
                results.append(time_training("posesor_swinL_assr_768", [], 8, 768, args.steps, args.warmup, "cuda", "bf16"))
            except Exception as exc:  # PoseSOR training needs its model package
                print(f"PoseSOR not measured: {exc}")
    if args.cpu:
        results.append(time_training("seqrank_lite", ["model.freeze_backbone_bn=true"], 4, 384, args.steps, args.warmup, "cpu", "none"))
        results.append(time_training("seqrank_lite", [], 4, 192, args.steps, args.warmup, "cpu", "none"))
    if args.cost:
        results.append(model_cost("seqrank-lite", 384))
        if args.full_cost:
            results.append(model_cost("seqrank-swinl-correct", 800, latency_runs=1))
    for r in results:
        print(json.dumps(r))
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
