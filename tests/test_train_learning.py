"""Training learns: a tiny seqrank-lite trained on CPU for a fixed budget beats the untrained model and
a trivial ordering of its own masks on held-out synthetic images (seeded, deterministic)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from salrank.data import load_dataset
from salrank.data.synth import SynthConfig, generate_synth_dataset
from salrank.evaluation import evaluate
from salrank.training.baselines import reorder
from salrank.training.config import load_train_config
from salrank.training.engine import train
from salrank.training.tasks import get_task
from salrank.utils.io import read_image

ITERATIONS = 150


def learning_config(data: Path, out: Path, iterations: int = ITERATIONS) -> object:
    return load_train_config(
        "cpu_smoke",
        [
            f"data.train={data / 'synth_train.json'}",
            "data.val=null",
            f"output_dir={out}",
            f"solver.max_iter={iterations}",
            f"solver.steps=[{int(iterations * 0.8)}]",
            "solver.warmup_iters=10",
            "solver.base_lr=2e-3",
            "solver.ims_per_gpu=4",
            "input.size=96",
            "input.test_size=96",
            "model.freeze_backbone=true",
            "loss.num_points=2048",
            "workers=0",
            "eval.period=-1",
            "checkpoint.period=0",
            f"log_period={iterations}",
            "threads=1",
        ],
    )


def predict(model: torch.nn.Module, dataset) -> dict:
    arrays = [read_image(dataset.image_path(img), exif=False) for img in dataset.images]
    return {r.image_name: r for r in model.predict(arrays, [img.image_id for img in dataset.images])}


def seqrank_metrics(dataset, preds) -> dict:
    return evaluate(dataset, preds, protocol="seqrank", metrics=["sa_sor", "sor"]).metrics


def run_learning(tmp: Path, iterations: int = ITERATIONS) -> dict[str, dict]:
    data = tmp / "data"
    generate_synth_dataset(data, SynthConfig(n=180, width=128, height=96, min_objects=2, max_objects=3, person_probability=0.2, seed=7))
    test = load_dataset(data / "synth_test.json")
    cfg = learning_config(data, tmp / "run", iterations)
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.manual_seed(cfg.seed)
        untrained = get_task(cfg.model.architecture).build_model(cfg)
        out = {"untrained": seqrank_metrics(test, predict(untrained, test))}
        result = train(cfg, progress=False)
        from salrank.modeling.loading import load_model

        preds = predict(load_model(weights=result.weights), test)
    finally:
        torch.set_num_threads(before)
    out["trained"] = seqrank_metrics(test, preds)
    out["random"] = seqrank_metrics(test, reorder(preds, "random", seed=0))
    out["area"] = seqrank_metrics(test, reorder(preds, "area"))
    return out


@pytest.mark.timeout(600)
def test_training_learns_the_attention_order(tmp_path: Path) -> None:
    m = run_learning(tmp_path)
    assert m["untrained"]["sa_sor"] < 0.05
    assert m["trained"]["sa_sor"] > m["untrained"]["sa_sor"] + 0.2, m
    assert m["trained"]["sa_sor"] > m["random"]["sa_sor"] + 0.1, m
    assert m["trained"]["sor"] > m["random"]["sor"] + 0.03, m


if __name__ == "__main__":  # python tests/test_train_learning.py [ITERATIONS]: print the numbers
    import sys
    import tempfile
    import time

    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as d:
        res = run_learning(Path(d), int(sys.argv[1]) if len(sys.argv) > 1 else ITERATIONS)
    for k, v in res.items():
        print(k, v)
    print(f"{time.perf_counter() - t0:.1f} s")
