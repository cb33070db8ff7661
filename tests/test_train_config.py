"""Training configs: YAML + overrides, the shipped recipes, optimiser groups and the LR schedule."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from salrank.errors import InputError
from salrank.training.config import (
    TrainConfig,
    apply_overrides,
    list_recipes,
    load_train_config,
    recipe_path,
)
from salrank.training.optim import (
    WarmupMultiStepLR,
    build_optimizer,
    clip_gradients,
    parameter_groups,
)

RECIPES = (
    "seqrank_swinL_assr",
    "seqrank_swinL_assr_correct",
    "seqrank_swinL_irsr",
    "seqrank_swinL_irsr_correct",
    "posesor_swinL_assr_768",
    "posesor_swinL_irsr_768",
    "posesor_friendly_512",
    "ppa_v39_assr",
    "seqrank_lite",
    "cpu_smoke",
)


def test_all_recipes_ship_and_parse() -> None:
    assert set(RECIPES) <= set(list_recipes())
    for name in RECIPES:
        cfg = load_train_config(name)
        assert isinstance(cfg, TrainConfig) and cfg.solver.max_iter > 0, name


def test_official_values() -> None:
    s = load_train_config("seqrank_swinL_assr")
    assert (s.solver.optimizer, s.solver.base_lr, s.solver.max_iter, s.solver.steps) == ("adamw", 1e-4, 30000, (20000,))
    assert (s.input.size, s.solver.ims_per_gpu, s.solver.clip_grad_norm, s.solver.amp) == (800, 8, 5.0, "fp16")
    assert s.model.preset == "seqrank-swinl-original" and load_train_config("seqrank_swinL_assr_correct").model.preset == "seqrank-swinl-correct"
    assert s.loss["cls_cost"] == 10.0 and s.loss["sal_cost"] == 5.0 and s.loss["num_points"] == 12544
    p = load_train_config("posesor_swinL_assr_768")
    assert (p.solver.base_lr, p.solver.max_iter, p.solver.steps, p.input.size) == (5e-5, 50000, (30000,), 768)
    assert p.input.dynamic_sizes == (704, 736, 768, 800) and p.input.flip_swap_joints is True
    f = load_train_config("posesor_friendly_512")
    assert (f.solver.ims_per_gpu, f.input.size, f.input.dynamic_sizes, f.solver.max_iter) == (16, 512, (480, 512, 544), 30000)
    a = load_train_config("ppa_v39_assr")
    assert (a.solver.optimizer, a.solver.max_iter, a.solver.steps, a.input.resize, a.input.size) == ("sgd", 54000, (42000, 50000), "shortest_edge", 480)
    assert load_train_config("seqrank_swinL_irsr").data.train.endswith("irsr_train.json")


def test_overrides_are_typed_and_checked(tmp_path: Path) -> None:
    cfg = load_train_config("cpu_smoke", ["solver.base_lr=1e-3", "input.dynamic_sizes=[96, 128]", "eval.period=0", "model.overrides.common.num_queries=8", "loss.cls_cost=2", "workers=0", "input.flip_swap_joints=false"])
    assert cfg.solver.base_lr == 1e-3 and isinstance(cfg.solver.base_lr, float)
    assert cfg.input.dynamic_sizes == (96, 128) and cfg.eval.period == 0 and cfg.input.flip_swap_joints is False
    assert cfg.model.overrides == {"common.num_queries": 8} and cfg.loss["cls_cost"] == 2
    with pytest.raises(InputError, match="unknown option 'solver.lr'.*base_lr"):
        load_train_config("cpu_smoke", ["solver.lr=1"])
    with pytest.raises(InputError, match="cannot use 'abc' as int"):
        load_train_config("cpu_smoke", ["solver.max_iter=abc"])
    with pytest.raises(InputError, match="KEY=VALUE"):
        load_train_config("cpu_smoke", ["solver.max_iter"])
    with pytest.raises(InputError, match="amp"):
        load_train_config("cpu_smoke", ["solver.amp=fp8"])
    # a file with _BASE_ and an unknown key
    child = tmp_path / "child.yaml"
    child.write_text(f"_BASE_: {recipe_path('cpu_smoke')}\nsolver:\n  max_iter: 7\n")
    assert load_train_config(child).solver.max_iter == 7 and load_train_config(child).input.size == 128
    bad = tmp_path / "bad.yaml"
    bad.write_text("solver:\n  maxiter: 7\n")
    with pytest.raises(InputError, match="maxiter"):
        load_train_config(bad)
    with pytest.raises(InputError, match="recipes"):
        load_train_config("no_such_recipe")
    data = {"solver": {}}
    apply_overrides(data, {"solver.max_iter": 3})
    assert data == {"solver": {"max_iter": 3}}


@pytest.mark.parametrize("name", ["seqrank_swinL_assr", "seqrank_swinL_assr_correct", "seqrank_lite"])
def test_recipes_build_on_the_meta_device(name: str) -> None:
    from salrank.training.tasks import get_task

    cfg = load_train_config(name, ["model.pretrained_backbone=null"])
    task = get_task(cfg.model.architecture)
    with torch.device("meta"):
        model = task.build_model(cfg)
    n = sum(p.numel() for p in model.parameters())
    assert n > (150e6 if "swinL" in name else 3e6)
    assert task.build_criterion(cfg).cfg.num_points == cfg.loss.get("num_points", 12544)
    with pytest.raises(InputError, match="loss"):
        task.build_criterion(load_train_config(name, ["loss.no_such_weight=1"]))


def test_parameter_groups_follow_the_official_rules() -> None:
    class Toy(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.backbone = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
            self.backbone.relative_position_bias_table = nn.Parameter(torch.zeros(3))
            self.head = nn.Linear(4, 2)
            self.norm = nn.LayerNorm(4)
            self.embed = nn.Embedding(5, 4)
            self.frozen = nn.Linear(2, 2)
            self.frozen.requires_grad_(False)

    groups = parameter_groups(Toy(), base_lr=1e-4, weight_decay=1e-4, backbone_multiplier=0.1)
    settings = {name: (g["lr"], g["weight_decay"]) for g in groups for name in g["names"]}
    assert settings["backbone.0.weight"] == (pytest.approx(1e-5), 1e-4)
    assert settings["backbone.1.weight"] == (pytest.approx(1e-5), 0.0)  # norm
    assert settings["backbone.relative_position_bias_table"] == (pytest.approx(1e-5), 0.0)
    assert settings["head.weight"] == (1e-4, 1e-4) and settings["head.bias"] == (1e-4, 1e-4)
    assert settings["norm.weight"] == (1e-4, 0.0) and settings["embed.weight"] == (1e-4, 0.0)
    assert "frozen.weight" not in settings
    cfg = load_train_config("cpu_smoke")
    opt = build_optimizer(Toy(), cfg.solver)
    assert isinstance(opt, torch.optim.AdamW)
    assert isinstance(build_optimizer(Toy(), load_train_config("ppa_v39_assr").solver), torch.optim.SGD)


def test_warmup_multistep_schedule() -> None:
    p = nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=1.0)
    sched = WarmupMultiStepLR(opt, steps=[5, 8], gamma=0.1, warmup_factor=0.001, warmup_iters=4)
    lrs = []
    for _ in range(10):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    want = [0.001, 0.001 * 0.75 + 0.25, 0.001 * 0.5 + 0.5, 0.001 * 0.25 + 0.75, 1.0, 0.1, 0.1, 0.1, 0.01, 0.01]
    assert lrs == pytest.approx(want)
    state = sched.state_dict()
    opt2 = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0)
    s2 = WarmupMultiStepLR(opt2, steps=[5, 8], gamma=0.1, warmup_factor=0.001, warmup_iters=4)
    s2.load_state_dict(state)
    s2.step()
    assert opt2.param_groups[0]["lr"] == pytest.approx(0.01)
    # the official recipes: warm-up factor 1.0 means no warm-up at all
    assert WarmupMultiStepLR(torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0), [2], warmup_factor=1.0, warmup_iters=100).factor(0) == 1.0


def test_full_model_gradient_clipping() -> None:
    a, b = nn.Parameter(torch.zeros(2)), nn.Parameter(torch.zeros(1))
    a.grad, b.grad = torch.tensor([3.0, 0.0]), torch.tensor([4.0])
    norm = clip_gradients([a, b], 1.0)
    assert norm.item() == pytest.approx(5.0)
    assert torch.cat([a.grad, b.grad]).norm().item() == pytest.approx(1.0, rel=1e-5)
    assert clip_gradients([a, b], 0.0) is None


def test_unknown_architectures_have_no_training_task() -> None:
    from salrank.training.tasks import get_task

    assert get_task("ppa").architecture == "ppa"  # trainable now (tests/test_train_ppa.py)
    with pytest.raises(InputError, match="no training task"):
        get_task("nonsense")
