"""Does training work? Train seqrank-lite on the synthetic SOR dataset on the CPU and score held-out images.

    python benchmarks/learn_synth.py                     # the README run (~20 min on 2 cores)
    python benchmarks/learn_synth.py --iters 60 --tiny   # a quick look

Steps: write the synthetic dataset (``salrank.data.synth``) unless it exists; score the untrained model on
the test split; train with :func:`salrank.training.train` (periodic evaluation on the val split); score the
trained model on the test split under the SeqRank protocol, next to trivial orders of the same predicted
masks (:mod:`salrank.training.baselines`: random, largest first, most central first) and to the
untrained model. Writes ``OUT/results.json``, ``OUT/results.md`` (the README table) and
``OUT/run/curves.png``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from salrank.data import load_dataset
from salrank.data.synth import SynthConfig, generate_synth_dataset
from salrank.evaluation import evaluate
from salrank.training.baselines import BASELINES, reorder
from salrank.training.config import load_train_config
from salrank.training.engine import train
from salrank.training.tasks import get_task
from salrank.utils.io import read_image, write_json

METRICS = ("sa_sor", "sor", "mae", "ap", "ar", "top1")


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
    m = evaluate(dataset, preds, protocol="seqrank").metrics
    return {k: m.get(k) for k in METRICS}


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
    ap.add_argument("--iters", type=int, default=1500)
    ap.add_argument("--size", type=int, default=192)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--tiny", action="store_true", help="the 64-wide test model instead of seqrank-lite")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--seed", type=int, default=2024)
    ap.add_argument("--eval-period", type=int, default=250)
    ap.add_argument("overrides", nargs="*", help="more training config overrides (KEY=VALUE)")
    args = ap.parse_args()

    out = Path(args.out)
    data = Path(args.data) if args.data else out / "data"
    if not (data / "synth_train.json").is_file():
        generate_synth_dataset(data, SynthConfig(n=args.n, seed=args.seed))
    test = load_dataset(data / "synth_test.json")
    cfg = learning_config(data, out / "run", args.iters, args.tiny, args.size, args.batch, args.workers, args.seed, args.eval_period, args.overrides)

    torch.manual_seed(cfg.seed)
    untrained = get_task(cfg.model.architecture).build_model(cfg)
    results = {"untrained": score(test, predict_all(untrained, test))}
    t0 = time.perf_counter()
    result = train(cfg, overwrite=True, progress=sys.stderr.isatty())
    train_s = time.perf_counter() - t0
    from salrank.modeling.loading import load_model

    trained = load_model(weights=result.weights)
    preds = predict_all(trained, test)
    results["seqrank-lite (trained)"] = score(test, preds)
    for how in BASELINES:
        results[f"{how} order (trained masks)"] = score(test, reorder(preds, how, seed=args.seed))
    params = sum(p.numel() for p in trained.parameters())
    summary = {
        "iterations": result.iterations,
        "train_seconds": round(train_s, 1),
        "images_per_iteration": cfg.solver.ims_per_gpu,
        "input_size": cfg.input.size,
        "train_images": len(load_dataset(cfg.data.train)),
        "test_images": len(test),
        "parameters": params,
        "threads": torch.get_num_threads(),
        "results": results,
    }
    write_json(out / "results.json", summary)
    lines = ["| model / order | SA-SOR | SOR | MAE | AP | AR | top-1 |", "|---|---|---|---|---|---|---|"]
    for name, m in results.items():
        lines.append(f"| {name} | " + " | ".join("n/a" if m[k] is None else f"{m[k]:.3f}" for k in METRICS) + " |")
    table = "\n".join(lines)
    (out / "results.md").write_text(table + "\n")
    print(json.dumps({k: v for k, v in summary.items() if k != "results"}))
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
