"""PoseSOR training: the criterion's pieces against references, and one optimiser step of the tiny model."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from salrank.training.losses.posesor_criterion import (
    gaussian_focal_loss,
    gaussian_targets,
    heatmap_focal_loss,
)


def test_gaussian_focal_loss_reference() -> None:
    p = torch.tensor([0.9, 0.2, 0.5])
    t = torch.tensor([1.0, 0.3, 0.0])
    got = gaussian_focal_loss(p, t)
    want = [-(0.1**2) * math.log(0.9), -((1 - 0.3) ** 4) * 0.2**2 * math.log(0.8), -(0.5**2) * math.log(0.5)]
    assert got.tolist() == pytest.approx(want, rel=1e-6)


def test_gaussian_targets_peak_at_the_joint() -> None:
    z = gaussian_targets(torch.tensor([[0.25, 0.5]]), 5, 5, sigma=0.1)
    assert z.shape == (1, 5, 5) and z[0, 2, 1].item() == pytest.approx(1.0, abs=1e-5)
    assert z[0, 2, 1] > z[0, 2, 2] > z[0, 2, 4]
    loss = heatmap_focal_loss(torch.zeros(2, 8, 8), torch.tensor([[0.5, 0.5], [0.1, 0.9]]), sigma=0.05, random_points=10)
    assert torch.isfinite(loss) and loss > 0


def test_posesor_training_step(tmp_path: Path) -> None:
    from salrank.data import load_dataset
    from salrank.data.synth import SynthConfig, generate_synth_dataset
    from salrank.training.config import load_train_config
    from salrank.training.datasets import SORTrainingDataset, collate_samples
    from salrank.training.samplers import TrainBatchSampler
    from salrank.training.tasks import LossModule, get_task

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        generate_synth_dataset(tmp_path, SynthConfig(n=6, width=96, height=72, seed=1, person_probability=0.6, max_objects=3))
        cfg = load_train_config(
            "posesor_friendly_512",
            [f"data.train={tmp_path / 'synth_train.json'}", "model.preset=posesor-tiny", "model.pretrained_backbone=null", "input.size=96",
             "input.test_size=96", "input.dynamic_sizes=[64, 96]", "loss.num_points=500"],
        )
        task = get_task("posesor")
        torch.manual_seed(0)
        model = task.build_model(cfg)
        module = LossModule(model, task, task.build_criterion(cfg), cfg)
        module.train()
        ds = SORTrainingDataset(load_dataset(cfg.data.train), task.sample_options(cfg))
        keys = TrainBatchSampler(len(ds), 2, seed=0, dynamic_sizes=cfg.input.dynamic_sizes).batch(0)
        batch = collate_samples([ds[k] for k in keys])
        assert "next_targets" in batch["targets"][0]
        losses = module(batch["images"], batch["targets"])
        assert set(losses) == {"mask_loss", "obj_loss", "joint_loss", "heatmap_loss", "joint_cls_loss", "refined_mask_loss", "bbox_loss", "partition_loss", "rank_loss"}
        assert all(torch.isfinite(v) for v in losses.values())
        sum(losses.values()).backward()
        grads = {n: p.grad for n, p in model.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}
        assert any(n.startswith("pose_interaction") for n in grads) and any(n.startswith("pose_ranking") for n in grads)
        assert any(n.startswith("backbone") for n in grads)
    finally:
        torch.set_num_threads(before)
