"""PoseSOR training learns: the tiny PoseSOR (random init, no pretrained backbone) trained on CPU for a
fixed, seeded budget (60 iterations of 4 images at 96 px) on the synthetic hue-ladder dataset lowers
its losses clearly (total, mask, refined mask, joint, heatmap, box) and scores the held-out images
better than the untrained model: saliency-map MAE and the objects it finds (AR, SOR).

This checks that the PoseSOR criterion and the engine train the model; it is NOT a proof that PoseSOR
learns the attention order (``tests/test_train_learning.py`` does that for seqrank-lite): in this
budget the randomly initialised model learns masks and poses first, its SA-SOR stays at or below the
untrained model's, and its rank loss has only started to fall."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from salrank.data import load_dataset
from salrank.data.synth import SynthConfig, generate_synth_dataset
from salrank.evaluation import evaluate
from salrank.training.config import load_train_config
from salrank.training.engine import train
from salrank.training.tasks import get_task
from salrank.utils.io import read_image

ITERATIONS = 60
SEED = 2024
LR = 1e-3


def posesor_config(data: Path, out: Path, iterations: int = ITERATIONS, seed: int = SEED, lr: float = LR) -> object:
    return load_train_config(
        "posesor_friendly_512",
        [
            f"data.train={data / 'synth_train.json'}",
            "data.val=null",
            f"output_dir={out}",
            "model.preset=posesor-tiny",
            "model.pretrained_backbone=null",
            "input.size=96",
            "input.test_size=96",
            "input.dynamic_sizes=[96]",
            f"solver.max_iter={iterations}",
            f"solver.steps=[{int(iterations * 0.8)}]",
            "solver.warmup_iters=5",
            "solver.warmup_factor=0.1",
            f"solver.base_lr={lr}",
            "solver.ims_per_gpu=4",
            "solver.amp=none",
            "loss.num_points=1024",
            f"seed={seed}",
            "device=cpu",
            "workers=0",
            "eval.period=-1",
            "checkpoint.period=0",
            "log_period=5",
            "threads=1",
        ],
    )


def predict(model: torch.nn.Module, dataset) -> dict:
    model.eval()
    arrays = [read_image(dataset.image_path(img), exif=False) for img in dataset.images]
    with torch.no_grad():
        return {r.image_name: r for r in model.predict(arrays, [img.image_id for img in dataset.images])}


def seqrank_metrics(dataset, preds) -> dict:
    return evaluate(dataset, preds, protocol="seqrank", metrics=["sa_sor", "sor", "ar", "mae"]).metrics


def run_posesor_learning(tmp: Path, iterations: int = ITERATIONS, seed: int = SEED, lr: float = LR) -> dict:
    data = tmp / "data"
    generate_synth_dataset(
        data, SynthConfig(n=80, width=96, height=72, min_objects=2, max_objects=3, person_probability=0.5, seed=seed % 1000, fractions=(0.7, 0.05, 0.25))
    )
    test = load_dataset(data / "synth_test.json")
    cfg = posesor_config(data, tmp / "run", iterations, seed, lr)
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.manual_seed(cfg.seed)
        untrained = get_task(cfg.model.architecture).build_model(cfg)
        out: dict = {"untrained": seqrank_metrics(test, predict(untrained, test))}
        result = train(cfg, progress=False)
        from salrank.modeling.loading import load_model

        out["trained"] = seqrank_metrics(test, predict(load_model(weights=result.weights), test))
    finally:
        torch.set_num_threads(before)
    logged = [json.loads(line) for line in (result.run_dir / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in logged if "loss" in r]
    out["losses"] = {k: [float(r[k]) for r in steps] for k in steps[0] if k.endswith("loss")}
    return out


@pytest.mark.timeout(600)
def test_posesor_training_learns(tmp_path: Path) -> None:
    m = run_posesor_learning(tmp_path)
    losses = m["losses"]
    first, last = {k: v[0] for k, v in losses.items()}, {k: float(np.mean(v[-2:])) for k, v in losses.items()}
    assert last["loss"] < 0.6 * first["loss"], losses
    # the mask, pose and box losses each fall clearly (objectness, joint visibility, partition and rank are noisier)
    for key in ("mask_loss", "refined_mask_loss", "joint_loss", "heatmap_loss", "bbox_loss"):
        assert last[key] < 0.8 * first[key], (key, losses[key])
    trained, untrained = m["trained"], m["untrained"]
    assert trained["mae"] < 0.5 * untrained["mae"], m
    assert trained["ar"] > untrained["ar"] + 0.1, m
    assert trained["sor"] > untrained["sor"] + 0.2, m


if __name__ == "__main__":  # python tests/test_train_posesor_learning.py [ITERATIONS SEED LR]: print the numbers
    import sys
    import tempfile
    import time

    t0 = time.perf_counter()
    args = sys.argv[1:]
    kwargs = {"iterations": int(args[0])} if args else {}
    if len(args) > 1:
        kwargs["seed"] = int(args[1])
    if len(args) > 2:
        kwargs["lr"] = float(args[2])
    with tempfile.TemporaryDirectory() as d:
        res = run_posesor_learning(Path(d), **kwargs)
    for k, v in res.items():
        if k == "losses":
            for name, values in v.items():
                print(name, " ".join(f"{x:.3g}" for x in values))
        else:
            print(k, v)
    print(kwargs, f"{time.perf_counter() - t0:.1f} s")
