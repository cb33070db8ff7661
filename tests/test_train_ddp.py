"""DDP on the CPU: two gloo processes on 127.0.0.1 train in lockstep; sharded evaluation = single-process."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from salrank.data.synth import SynthConfig, generate_synth_dataset


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _config(data: Path, out: Path) -> object:
    from salrank.training.config import load_train_config

    return load_train_config(
        "cpu_smoke",
        [
            f"data.train={data / 'synth_train.json'}",
            f"data.val={data / 'synth_val.json'}",
            "data.max_val_images=null",
            f"output_dir={out}",
            "solver.max_iter=2",
            "solver.ims_per_gpu=2",
            "input.size=64",
            "input.test_size=64",
            "model.overrides.common.num_queries=6",
            "model.overrides.common.embed_dim=32",
            "model.overrides.common.hidden_dim=64",
            "model.pretrained_backbone=null",
            "loss.num_points=512",
            "workers=0",
            "eval.period=0",
            "checkpoint.period=0",
            "log_period=1",
            "threads=1",
        ],
    )


def _worker(rank: int, world: int, port: int, data: str, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    import torch.distributed as dist

    from salrank.data import load_dataset
    from salrank.training.datasets import SORTrainingDataset, collate_samples
    from salrank.training.distributed import (
        all_gather_objects,
        init_distributed,
        wrap_ddp,
    )
    from salrank.training.engine import evaluate_model, seed_everything, train
    from salrank.training.samplers import TrainBatchSampler
    from salrank.training.tasks import LossModule, get_task

    cfg = _config(Path(data), Path(out) / "run")
    result = train(cfg, progress=False)  # initialises the gloo process group
    info = init_distributed("cpu")
    model = torch.nn.utils.parameters_to_vector(result_model_params(Path(out) / "run"))  # rank 0's final weights
    # 1. the engine's final weights: the same on every rank (checked through the checkpoint and live below)
    # 2. gradients after a DDP step on different data per rank are identical
    seed_everything(0)
    task = get_task(cfg.model.architecture)
    net = task.build_model(cfg)
    module = LossModule(net, task, task.build_criterion(cfg), cfg)
    module.train()
    ddp = wrap_ddp(module, info)
    ds = SORTrainingDataset(load_dataset(cfg.data.train), task.sample_options(cfg))
    sampler = TrainBatchSampler(len(ds), 2, seed=5, rank=info.rank, world_size=info.world_size)
    batch = collate_samples([ds[k] for k in sampler.batch(0)])
    losses = ddp(batch["images"], batch["targets"])
    sum(losses.values()).backward()
    grads = torch.cat([p.grad.reshape(-1) for p in net.parameters() if p.grad is not None])
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    opt.step()
    weights = torch.nn.utils.parameters_to_vector(net.parameters()).detach()
    image_ids = [t["image_id"] for t in batch["targets"]]
    gathered = all_gather_objects({"grads": grads, "weights": weights, "ids": image_ids, "loss": float(sum(losses.values()))})
    # 3. sharded evaluation of the trained weights, gathered on rank 0
    from salrank.modeling.loading import load_model

    trained = load_model(weights=Path(out) / "run" / "model_final.safetensors")
    metrics = evaluate_model(trained, load_dataset(cfg.data.val), "seqrank", info)
    if rank == 0:
        g0, g1 = gathered
        report = {
            "grads_equal": bool(torch.equal(g0["grads"], g1["grads"])),
            "weights_equal": bool(torch.equal(g0["weights"], g1["weights"])),
            "different_data": set(g0["ids"]) != set(g1["ids"]),
            "different_local_loss": g0["loss"] != g1["loss"],
            "metrics": metrics,
            "final_weights_sum": float(model.sum()),
            "iterations": result.iterations,
        }
        Path(out, "report.json").write_text(json.dumps(report))
    dist.barrier()
    dist.destroy_process_group()


def result_model_params(run: Path) -> list[torch.Tensor]:
    from salrank.training.checkpointing import Checkpointer

    return list(Checkpointer.load(run / "checkpoints" / "model_final.pth")["model"].values())


@pytest.mark.timeout(300)
def test_two_gloo_processes(tmp_path: Path) -> None:
    data = tmp_path / "data"
    generate_synth_dataset(data, SynthConfig(n=16, width=64, height=48, seed=2, max_objects=3))
    mp.spawn(_worker, args=(2, _free_port(), str(data), str(tmp_path)), nprocs=2, join=True)
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["different_data"] and report["different_local_loss"]
    assert report["grads_equal"] and report["weights_equal"]
    assert report["iterations"] == 2
    run = tmp_path / "run"
    assert (run / "model_final.safetensors").is_file() and (run / "metrics.jsonl").is_file()
    # rank 0 alone wrote the metrics: one record per iteration plus the final evaluation
    records = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["iter"] for r in records if r["type"] == "train"] == [1, 2]
    # sharded evaluation gathered on rank 0 equals a single-process evaluation
    from salrank.data import load_dataset
    from salrank.modeling.loading import load_model
    from salrank.training.engine import evaluate_model

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        single = evaluate_model(load_model(weights=run / "model_final.safetensors"), load_dataset(data / "synth_val.json"), "seqrank")
    finally:
        torch.set_num_threads(before)
    assert single == report["metrics"]
    final_eval = [r for r in records if r["type"] == "eval"][-1]
    assert final_eval["sa_sor"] == pytest.approx(single["sa_sor"])
