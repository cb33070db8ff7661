"""Exact resume: N steps straight and N/2 + --resume + N/2 give identical weights (CPU)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from salrank.data.synth import SynthConfig, generate_synth_dataset
from salrank.errors import InputError
from salrank.training.checkpointing import Checkpointer
from salrank.training.config import load_train_config
from salrank.training.engine import train


def tiny_config(data: Path, out: Path, iters: int, workers: int) -> object:
    return load_train_config(
        "cpu_smoke",
        [
            f"data.train={data / 'synth_train.json'}",
            "data.val=null",
            f"output_dir={out}",
            f"solver.max_iter={iters}",
            "solver.steps=[3]",
            "solver.warmup_iters=2",
            "solver.ims_per_gpu=2",
            "solver.grad_accumulation=2",
            "input.size=64",
            "input.test_size=64",
            "input.dynamic_sizes=[64, 96]",
            "model.overrides.common.num_queries=6",
            "model.overrides.common.embed_dim=32",
            "model.overrides.common.hidden_dim=64",
            "model.freeze_backbone=true",
            "loss.num_points=512",
            f"workers={workers}",
            "eval.period=-1",
            "checkpoint.period=2",
            "log_period=1",
        ],
    )


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synth_resume")
    generate_synth_dataset(out, SynthConfig(n=12, width=64, height=48, seed=11, max_objects=3))
    return out


def _weights(run: Path) -> dict[str, torch.Tensor]:
    return Checkpointer.load(run / "checkpoints" / "model_final.pth")["model"]


def test_resume_is_exact(data: Path, tmp_path: Path) -> None:
    straight = tmp_path / "straight"
    train(tiny_config(data, straight, 4, workers=1), progress=False)
    split = tmp_path / "split"
    train(tiny_config(data, split, 2, workers=0), progress=False)
    with pytest.raises(InputError, match="previous run"):
        train(tiny_config(data, split, 4, workers=0), progress=False)
    result = train(tiny_config(data, split, 4, workers=0), resume=True, progress=False)
    assert result.iterations == 4
    a, b = _weights(straight), _weights(split)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    # the optimiser moments agree too, and the metrics file has each iteration once
    sa = Checkpointer.load(straight / "checkpoints" / "model_final.pth")
    sb = Checkpointer.load(split / "checkpoints" / "model_final.pth")
    for (ka, va), (kb, vb) in zip(sorted(sa["optimizer"]["state"].items()), sorted(sb["optimizer"]["state"].items())):
        assert torch.equal(va["exp_avg"], vb["exp_avg"])
    lines = (split / "metrics.jsonl").read_text().splitlines()
    assert [int(__import__("json").loads(x)["iter"]) for x in lines] == [1, 2, 3, 4]
    assert (split / "model_final.safetensors").is_file() and (split / "curves.png").is_file()
    assert (split / "checkpoints" / "last_checkpoint").read_text().strip() == "model_final.pth"


def test_resume_needs_a_checkpoint(data: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="nothing to resume"):
        train(tiny_config(data, tmp_path / "empty", 2, workers=0), resume=True, progress=False)


pytestmark = pytest.mark.usefixtures("one_thread")
