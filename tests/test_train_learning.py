"""Training learns the attention order: a tiny seqrank-lite trained on CPU for a fixed, seeded budget
(600 iterations of 4 images at 96 px, frozen ImageNet backbone) on the synthetic hue-ladder
scenes (``salrank.data.synth``: red > yellow > green > cyan > blue > magenta, sizes and positions
independent of the rank) goes from ranking nothing to ranking the held-out objects in the right order.

It must clearly beat, on held-out images: the untrained model, the trivial "one object covering the
whole image" answer, and trivial orders of its OWN masks (random, largest first, most central first;
:mod:`salrank.training.baselines`), on SA-SOR, SOR and the pairwise order accuracy of the found
objects. Beating the reordered masks shows that the order itself was learned, from the colours.

``python tests/test_train_learning.py [ITERATIONS SEED LR N]`` prints the numbers (docs/readme/training.md
quotes them for several seeds)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from salrank.data import load_dataset
from salrank.data.synth import SynthConfig, generate_synth_dataset
from salrank.evaluation import evaluate
from salrank.training.baselines import pairwise_order_accuracy, reorder
from salrank.training.config import load_train_config
from salrank.training.engine import train
from salrank.training.tasks import get_task
from salrank.utils.io import read_image

ITERATIONS = 600
SEED = 2024
LR = 2e-3
N_IMAGES = 260


def learning_config(data: Path, out: Path, iterations: int = ITERATIONS, seed: int = SEED, lr: float = LR) -> object:
    return load_train_config(
        "cpu_smoke",
        [
            f"data.train={data / 'synth_train.json'}",
            "data.val=null",
            f"output_dir={out}",
            f"solver.max_iter={iterations}",
            f"solver.steps=[{int(iterations * 0.8)}]",
            "solver.warmup_iters=10",
            f"solver.base_lr={lr}",
            f"seed={seed}",
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


def run_learning(tmp: Path, iterations: int = ITERATIONS, seed: int = SEED, lr: float = LR, n: int = N_IMAGES) -> dict[str, dict]:
    data = tmp / "data"
    generate_synth_dataset(
        data, SynthConfig(n=n, width=128, height=96, min_objects=3, max_objects=4, person_probability=0.2, seed=seed % 1000, fractions=(0.6, 0.05, 0.35))
    )
    test = load_dataset(data / "synth_test.json")
    cfg = learning_config(data, tmp / "run", iterations, seed, lr)
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
    out["centre"] = seqrank_metrics(test, reorder(preds, "centre"))
    for key, p in (("trained", preds), ("random", reorder(preds, "random", seed=0)), ("area", reorder(preds, "area")), ("centre", reorder(preds, "centre"))):
        out[key]["order_acc"], out[key]["order_pairs"] = pairwise_order_accuracy(test, p)
    return out


@pytest.mark.timeout(600)
def test_training_learns_the_attention_order(tmp_path: Path) -> None:
    m = run_learning(tmp_path)
    trained, untrained, trivial = m["trained"], m["untrained"], m["whole_image"]
    assert untrained["sa_sor"] < 0.02 and untrained["ar"] < 0.05, m
    assert trained["ar"] > 0.5, m  # the objects are found (IoU > 0.5)
    assert trained["mae"] < 0.5 * min(untrained["mae"], trivial["mae"]), m
    # the learned order beats the untrained model, the whole-image answer and every trivial order of its own masks
    others = [untrained, trivial, m["random"], m["area"], m["centre"]]
    assert trained["sa_sor"] > max(o["sa_sor"] for o in others) + 0.25, m
    assert trained["sor"] > max(o["sor"] for o in others) + 0.2, m
    assert trained["order_pairs"] >= 100, m
    assert trained["order_acc"] > max(m[k]["order_acc"] for k in ("random", "area", "centre")) + 0.25, m
    assert trained["order_acc"] > 0.85, m


if __name__ == "__main__":  # python tests/test_train_learning.py [ITERATIONS]: print the numbers
    import sys
    import tempfile
    import time

    t0 = time.perf_counter()
    args = [float(v) for v in sys.argv[1:]]
    kwargs = dict(zip(("iterations", "seed", "lr", "n"), args))
    kwargs = {k: (v if k == "lr" else int(v)) for k, v in kwargs.items()}
    with tempfile.TemporaryDirectory() as d:
        res = run_learning(Path(d), **kwargs)
    print(kwargs)
    for k, v in res.items():
        print(k, v)
    print(f"{time.perf_counter() - t0:.1f} s")
