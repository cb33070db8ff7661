"""Does training learn the attention order? Train seqrank-lite on the synthetic SOR dataset on the CPU
and score held-out images against the untrained model and trivial orders of its own masks.

    python benchmarks/learn_synth.py                     # the README run (see docs/readme/training.md)
    python benchmarks/learn_synth.py --iters 60 --tiny   # a quick look

The synthetic scenes (``salrank.data.synth``) are ranked by a fixed hue ladder (red > yellow > green >
cyan > blue > magenta) with sizes, positions, kinds and occlusions drawn independently of the rank, so
"largest first" and "most central first" orders are at chance: beating them means the model looks at
the objects.

Steps: write the synthetic dataset unless it exists; score the untrained model on the test split;
train with :func:`salrank.training.train` (periodic evaluation on the val split); score the trained
model on the test split under the SeqRank protocol, next to trivial orders of the same predicted
masks (:mod:`salrank.training.baselines`: random, largest first, most central first), the untrained
model and the "whole image" answer, with the pairwise order accuracy of the found objects. Writes
``OUT/results.json``, ``OUT/results.md`` (the README tables) and ``OUT/run/curves.png``
(``--figure PATH`` also draws the losses and the held-out SA-SOR/SOR/MAE/AR there).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from salrank.data import load_dataset
from salrank.data.synth import SynthConfig, generate_synth_dataset
from salrank.evaluation import evaluate
from salrank.training.baselines import BASELINES, pairwise_order_accuracy, reorder
from salrank.training.config import load_train_config
from salrank.training.engine import train
from salrank.training.tasks import get_task
from salrank.utils.io import read_image, write_json

METRICS = ("sa_sor", "sor", "order_acc", "mae", "ap", "ar", "top1")
FIGURE_TITLE = "seqrank-lite learning the hue-ladder order (synthetic scenes, CPU)"
HEADERS = ("SA-SOR", "SOR", "pair order acc.", "MAE", "AP", "AR", "top-1")


def predict_all(model: torch.nn.Module, dataset, batch: int = 8) -> dict:
    model.eval()
    preds = {}
    with torch.no_grad():
        for start in range(0, len(dataset), batch):
            imgs = dataset.images[start : start + batch]
            arrays = [read_image(dataset.image_path(i), exif=False) for i in imgs]
            for r in model.predict(arrays, [i.image_id for i in imgs]):
                preds[r.image_name] = r
    return preds


def score(dataset, preds) -> dict:
    m = dict(evaluate(dataset, preds, protocol="seqrank").metrics)
    m["order_acc"], m["order_pairs"] = pairwise_order_accuracy(dataset, preds)
    return {k: m.get(k) for k in (*METRICS, "order_pairs")}


def whole_image(dataset) -> dict:
    """The trivial answer: one object covering the whole image."""
    import numpy as np

    from salrank.structures import RankedInstances

    return {img.image_id: RankedInstances.from_masks(np.ones((1, img.height, img.width), bool), image_name=img.image_id) for img in dataset.images}


def _fmt(v: float | None) -> str:
    return "n/a" if v is None or math.isnan(v) else f"{v:.3f}"


def learning_config(
    data: Path, out: Path, iters: int, tiny: bool, size: int, batch: int, workers: int, seed: int, eval_period: int, extra: list[str] | None = None
) -> object:
    overrides = [
        f"data.train={data / 'synth_train.json'}",
        f"data.val={data / 'synth_val.json'}",
        f"output_dir={out}",
        f"solver.max_iter={iters}",
        f"solver.steps=[{int(iters * 0.8)}]",
        f"solver.ims_per_gpu={batch}",
        f"input.size={size}",
        f"input.test_size={size}",
        f"workers={workers}",
        f"seed={seed}",
        f"eval.period={eval_period}",
        f"checkpoint.period={max(eval_period, iters // 4)}",
        f"log_period={max(1, iters // 100)}",
        f"solver.warmup_iters={min(100, iters // 10)}",
    ]
    if tiny:
        overrides.append("model.preset=seqrank-lite-tiny")
    return load_train_config("seqrank_lite", overrides + list(extra or []))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(REPO / "runs" / "learn_synth"))
    ap.add_argument("--data", default=None, help="synthetic dataset folder (default: OUT/data)")
    ap.add_argument("--n", type=int, default=600, help="synthetic images over all splits")
    ap.add_argument("--objects", default="2-4", metavar="MIN-MAX", help="objects per synthetic image")
    ap.add_argument("--iters", type=int, default=1500)
    ap.add_argument("--size", type=int, default=192)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--tiny", action="store_true", help="the 64-wide test model instead of seqrank-lite")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--seed", type=int, default=2024)
    ap.add_argument("--eval-period", type=int, default=250)
    ap.add_argument("--figure", default=None, help="also copy the curves PNG here")
    ap.add_argument("--score-only", action="store_true", help="do not train: score OUT/run/model_final.safetensors (of a finished run) again")
    ap.add_argument("overrides", nargs="*", help="more training config overrides (KEY=VALUE)")
    args = ap.parse_args()

    out = Path(args.out)
    data = Path(args.data) if args.data else out / "data"
    if not (data / "synth_train.json").is_file():
        lo, hi = (int(v) for v in args.objects.split("-"))
        generate_synth_dataset(data, SynthConfig(n=args.n, seed=args.seed, min_objects=lo, max_objects=hi))
    test = load_dataset(data / "synth_test.json")
    cfg = learning_config(data, out / "run", args.iters, args.tiny, args.size, args.batch, args.workers, args.seed, args.eval_period, args.overrides)

    torch.manual_seed(cfg.seed)
    untrained = get_task(cfg.model.architecture).build_model(cfg)
    results = {"untrained": score(test, predict_all(untrained, test)), "whole image (trivial)": score(test, whole_image(test))}
    t0 = time.perf_counter()
    if args.score_only:
        previous = json.loads((out / "results.json").read_text())
        iterations, train_s, weights = previous["iterations"], previous["train_seconds"], out / "run" / "model_final.safetensors"
    else:
        result = train(cfg, overwrite=True, progress=sys.stderr.isatty())
        iterations, train_s, weights = result.iterations, time.perf_counter() - t0, result.weights
    from salrank.modeling.loading import load_model

    trained = load_model(weights=weights)
    preds = predict_all(trained, test)
    results["seqrank-lite (trained)"] = score(test, preds)
    # the official read-out may select a visited query again (duplicates, which SA-SOR's matching punishes);
    # the model's exclude_visited option (off by default) never does
    trained.cfg.readout.exclude_visited = True
    results["seqrank-lite (trained), read-out without repeats"] = score(test, predict_all(trained, test))
    trained.cfg.readout.exclude_visited = False
    for how in BASELINES:
        results[f"{how} order (trained masks)"] = score(test, reorder(preds, how, seed=args.seed))
    params = sum(p.numel() for p in trained.parameters())
    summary = {
        "iterations": iterations,
        "train_seconds": round(train_s, 1),
        "images_per_iteration": cfg.solver.ims_per_gpu,
        "input_size": cfg.input.size,
        "train_images": len(load_dataset(cfg.data.train)),
        "test_images": len(test),
        "parameters": params,
        "threads": torch.get_num_threads(),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, load average at the end {os.getloadavg()[0]:.1f}",
        "overrides": list(args.overrides),
        "results": results,
    }
    write_json(out / "results.json", summary)
    lines = ["| model / order | " + " | ".join(HEADERS) + " |", "|---" * (len(HEADERS) + 1) + "|"]
    for name, m in results.items():
        lines.append(f"| {name} | " + " | ".join(_fmt(m[k]) for k in METRICS) + " |")
    evals = [json.loads(line) for line in (out / "run" / "metrics.jsonl").read_text().splitlines() if '"eval"' in line]
    evals = [r for r in evals if r.get("type") == "eval"]
    if evals:
        lines += ["", "| iteration | SA-SOR | SOR | MAE | AR |", "|---|---|---|---|---|"]
        lines += [f"| {r['iter']} | " + " | ".join(_fmt(r.get(k)) for k in ("sa_sor", "sor", "mae", "ar")) + " |" for r in evals]
    table = "\n".join(lines)
    (out / "results.md").write_text(table + "\n")
    print(json.dumps({k: v for k, v in summary.items() if k != "results"}))
    print(table)
    if args.figure:
        from salrank.training.plot import plot_run

        plot_run(out / "run", args.figure, metrics=("sa_sor", "sor", "mae", "ar"), title=FIGURE_TITLE)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
