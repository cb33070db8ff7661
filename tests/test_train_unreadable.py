"""Training goes on when every image of a batch is unreadable: the step is skipped, reported and counted."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from salrank.data.synth import SynthConfig, generate_synth_dataset
from salrank.training.config import load_train_config
from salrank.training.engine import train


def _mostly_unreadable(root: Path, n: int, keep: int) -> Path:
    """A synthetic dataset whose training images are all corrupt but ``keep`` of them."""
    generate_synth_dataset(root, SynthConfig(n=n, width=64, height=48, seed=3, max_objects=2))
    train_json = root / "synth_train.json"
    files = [img["file_name"] for img in json.loads(train_json.read_text())["images"]]
    assert len(files) > keep
    for name in files[keep:]:
        path = root / "images" / "train" / name
        assert path.is_file()
        path.write_bytes(b"not a jpeg")
    return train_json


def _config(train_json: Path, out: Path, accumulation: int = 1) -> object:
    return load_train_config(
        "cpu_smoke",
        [
            f"data.train={train_json}",
            "data.val=null",
            f"output_dir={out}",
            "solver.max_iter=4",
            "solver.ims_per_gpu=1",
            f"solver.grad_accumulation={accumulation}",
            "input.size=64",
            "input.test_size=64",
            "model.overrides.common.num_queries=6",
            "model.overrides.common.embed_dim=32",
            "model.overrides.common.hidden_dim=64",
            "model.freeze_backbone=true",
            "loss.num_points=256",
            "workers=0",
            "eval.period=-1",
            "checkpoint.period=0",
            "log_period=1",
            "threads=1",
        ],
    )


def test_a_batch_of_unreadable_images_is_skipped(tmp_path: Path) -> None:
    # one readable image: with batches of one, most batches are unreadable
    train_json = _mostly_unreadable(tmp_path / "data", 8, keep=1)
    out = tmp_path / "run"
    cfg = _config(train_json, out)
    before = torch.get_num_threads()
    try:
        result = train(cfg, progress=False)
    finally:
        torch.set_num_threads(before)
    assert result.iterations == 4
    assert result.skipped >= 1
    assert (out / "model_final.safetensors").is_file()
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [int(x["iter"]) for x in lines if x.get("type") == "train"] == [1, 2, 3, 4]


def _worker(rank: int, world: int, port: int, train_json: str, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank))
    import torch.distributed as dist

    result = train(_config(Path(train_json), Path(out) / "run", accumulation=2), progress=False)
    from salrank.training.distributed import all_gather_objects

    model = result_weights(Path(out) / "run")
    gathered = all_gather_objects({"skipped": result.skipped, "iterations": result.iterations, "weights": model})
    if rank == 0:
        a, b = gathered
        Path(out, "report.json").write_text(
            json.dumps({"skipped": [a["skipped"], b["skipped"]], "iterations": [a["iterations"], b["iterations"]], "same": bool(torch.equal(a["weights"], b["weights"]))})
        )
    dist.barrier()
    dist.destroy_process_group()


def result_weights(run: Path) -> torch.Tensor:
    from salrank.training.checkpointing import Checkpointer

    state = Checkpointer.load(run / "checkpoints" / "model_final.pth")["model"]
    return torch.cat([v.reshape(-1).float() for v in state.values()])


@pytest.mark.timeout(300)
def test_two_processes_skip_unreadable_batches_together(tmp_path: Path) -> None:
    """Each process meets unreadable batches at other steps: no process waits for another, weights stay equal."""
    train_json = _mostly_unreadable(tmp_path / "data", 12, keep=3)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    mp.spawn(_worker, args=(2, port, str(train_json), str(tmp_path)), nprocs=2, join=True)
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["iterations"] == [4, 4]
    assert sum(report["skipped"]) >= 1
    assert report["same"]
