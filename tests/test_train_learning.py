"""Training learns: a tiny seqrank-lite trained on CPU for a fixed, seeded budget (150 iterations of 4
images at 96 px, frozen ImageNet backbone) goes from ranking nothing to ranking the held-out synthetic
objects: SA-SOR, SOR and recall clearly above the untrained model and above the trivial "one object
covering the whole image" answer.

What this short budget does NOT show: that the learned *order* beats trivial orders of the model's own
masks (random, largest first). In 150 iterations the model learns to find and segment the objects; the
order needs longer training. ``benchmarks/learn_synth.py`` (~20 minutes) measures that, and
docs/readme/training.md reports it."""

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
            "solver.base_lr=1e-3",
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
    return evaluate(dataset, preds, protocol="seqrank", metrics=["sa_sor", "sor", "ar", "mae"]).metrics


def whole_image(dataset) -> dict:
    """The trivial answer: one object covering the whole image."""
    import numpy as np

    from salrank.structures import RankedInstances

    return {img.image_id: RankedInstances.from_masks(np.ones((1, img.height, img.width), bool), image_name=img.image_id) for img in dataset.images}


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
    out["whole_image"] = seqrank_metrics(test, whole_image(test))
    out["random"] = seqrank_metrics(test, reorder(preds, "random", seed=0))
    out["area"] = seqrank_metrics(test, reorder(preds, "area"))
    return out


@pytest.mark.timeout(600)
def test_training_learns_to_rank_objects(tmp_path: Path) -> None:
    m = run_learning(tmp_path)
    trained, untrained, trivial = m["trained"], m["untrained"], m["whole_image"]
    assert untrained["sa_sor"] < 0.02 and untrained["ar"] < 0.05, m
    assert trained["sa_sor"] > max(untrained["sa_sor"], trivial["sa_sor"]) + 0.08, m
    assert trained["sor"] > max(untrained["sor"], trivial["sor"]) + 0.3, m
    assert trained["ar"] > 0.2, m  # GT objects are found with IoU > 0.5 (0.31 on the reference run)
    assert trained["mae"] < 0.5 * min(untrained["mae"], trivial["mae"]), m


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
