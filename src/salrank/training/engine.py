"""The training engine: one plain loop shared by every model.

::

    for iteration in range(start, max_iter):
        for each of grad_accumulation micro-batches:
            losses = loss_module(images, targets)         # forward + criterion (under autocast)
            scaler.scale(sum(losses) / grad_accumulation).backward()
        scaler.unscale_(optimizer); clip_gradients(model, 5.0)
        scaler.step(optimizer); scaler.update(); optimizer.zero_grad(); scheduler.step()
        log every log_period; checkpoint every checkpoint.period; evaluate every eval.period

:func:`train` does the set-up around it: the run directory (never reused without ``resume`` or
``overwrite``), seeding (``seed`` for the model's initialisation on every process, ``seed + rank``
afterwards), the dataset and the resumable sampler, the optimiser/scheduler/scaler, ``--resume`` (exact:
see :mod:`.checkpointing`), DDP, periodic evaluation with :func:`salrank.evaluate` (sharded over the
processes and gathered on rank 0, best checkpoint on ``eval.metric``), the final checkpoint, the final
salrank weights (``model_final.safetensors``) and the loss-curve plot.

**Determinism.** On the CPU a run is a deterministic function of the config and seed: the data order,
sizes and flips come from the sampler (independent of the number of workers), the loss' random points
from the seeded generators, whose states are saved and restored. On GPUs some kernels (atomics in
``index_put``/``scatter``/``grid_sample``'s backward, cuDNN algorithm choice) are not deterministic;
``deterministic: true`` asks PyTorch for deterministic kernels (slower, and errors out where none exists;
set ``CUBLAS_WORKSPACE_CONFIG=:4096:8``), which gives repeatable but not CPU-identical numbers.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import random
import shutil
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from salrank.errors import InputError
from salrank.training.checkpointing import (
    Checkpointer,
    capture_rng_state,
    restore_training_state,
    training_state,
    unwrap,
)
from salrank.training.config import TrainConfig
from salrank.training.distributed import (
    DistInfo,
    all_gather_objects,
    all_processes,
    average_gradients,
    barrier,
    broadcast_object,
    init_distributed,
    reduce_mean,
    wrap_ddp,
)
from salrank.training.logger import TrainLogger
from salrank.training.optim import build_lr_scheduler, build_optimizer, clip_gradients
from salrank.training.samplers import TrainBatchSampler, shard_indices
from salrank.training.tasks import LossModule, get_task

logger = logging.getLogger("salrank.training")

__all__ = ["TrainResult", "evaluate_model", "prepare_run_dir", "seed_everything", "train"]

RUN_MARKERS = ("metrics.jsonl", "checkpoints", "config.yaml")


@dataclass
class TrainResult:
    run_dir: Path
    iterations: int
    final_checkpoint: Path | None = None
    weights: Path | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    best: dict[str, Any] = field(default_factory=dict)
    skipped: int = 0


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and every GPU)."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def _seed_worker(worker_id: int) -> None:
    seed = torch.initial_seed() % (2**32)
    random.seed(seed)
    np.random.seed(seed)


def prepare_run_dir(run_dir: Path, resume: bool, overwrite: bool) -> None:
    """Refuse to write into a previous run unless resuming it or told to overwrite it."""
    if not run_dir.exists() or resume:
        return
    if any((run_dir / m).exists() for m in RUN_MARKERS):
        if not overwrite:
            raise InputError("holds a previous run; use --resume to continue it or --overwrite to start over", run_dir)
        for m in RUN_MARKERS + ("tensorboard", "model_final.safetensors", "model_final.json", "curves.png", "summary.json"):
            p = run_dir / m
            if p.is_dir():
                shutil.rmtree(p)
            elif p.exists():
                p.unlink()


def _autocast(device: torch.device, amp: str) -> contextlib.AbstractContextManager:
    if amp == "none":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if amp == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


def _load_val(cfg: TrainConfig) -> Any:
    from salrank.data import load_dataset

    if not cfg.data.val:
        return None
    ds = load_dataset(cfg.data.val, cfg.data.val_split, cfg.data.format)
    if cfg.data.val_image_root:
        ds.image_root = Path(cfg.data.val_image_root)
    if cfg.data.max_val_images:
        from salrank.structures import SORDataset

        ds = SORDataset(ds.images[: cfg.data.max_val_images], ds.name, ds.format, ds.image_root, ds.split)
    return ds


@torch.no_grad()
def evaluate_model(model: torch.nn.Module, dataset: Any, protocol: str, info: DistInfo | None = None, batch_size: int = 4) -> dict[str, float] | None:
    """Predict ``dataset`` with ``model.predict`` (sharded over processes) and score it on rank 0.

    Images are read in their stored pixel layout. Unreadable images are reported and scored as "nothing
    predicted". Returns the protocol's metrics on rank 0 (``None`` elsewhere).
    """
    from salrank.evaluation import evaluate
    from salrank.utils.io import read_image

    info = info or DistInfo()
    model = unwrap(model)
    was_training = model.training
    model.eval()
    preds = {}
    try:
        with torch.random.fork_rng(devices=[info.device] if info.device.type == "cuda" else []):
            mine = shard_indices(len(dataset), info.rank, info.world_size)
            for start in range(0, len(mine), batch_size):
                chunk = [dataset[i] for i in mine[start : start + batch_size]]
                images, names = [], []
                for img in chunk:
                    try:
                        images.append(read_image(dataset.image_path(img), exif=False))
                        names.append(img.image_id)
                    except InputError as exc:
                        logger.warning("evaluation: skipping %s", exc)
                if images:
                    for r in model.predict(images, names):
                        preds[r.image_name] = r
    finally:
        model.train(was_training)
    gathered = all_gather_objects(preds)
    if not info.is_main:
        return None
    merged = {k: v for part in gathered for k, v in part.items()}
    report = evaluate(dataset, merged, protocol=protocol)
    return {k: float(v) for k, v in report.metrics.items() if v is not None and isinstance(v, (int, float))}


def _build_loader(dataset: Any, sampler: TrainBatchSampler, cfg: TrainConfig, info: DistInfo) -> torch.utils.data.DataLoader:
    from salrank.training.datasets import collate_samples

    generator = torch.Generator()
    generator.manual_seed(cfg.seed + 1000 * info.rank)
    return torch.utils.data.DataLoader(
        dataset,
        batch_sampler=sampler,
        num_workers=cfg.workers,
        collate_fn=collate_samples,
        worker_init_fn=_seed_worker,
        generator=generator,
        pin_memory=info.device.type == "cuda",
        persistent_workers=False,
        prefetch_factor=2 if cfg.workers > 0 else None,
    )


def _to_device(images: Any, targets: list[dict[str, Any]], device: torch.device) -> tuple[Any, list[dict[str, Any]]]:
    if isinstance(images, list):
        images = [im.to(device, non_blocking=True) for im in images]
    else:
        images = images.to(device, non_blocking=True)
    moved = [{k: (v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v) for k, v in t.items()} for t in targets]
    return images, moved


def train(cfg: TrainConfig, *, resume: bool = False, overwrite: bool = False, progress: bool = True) -> TrainResult:
    """Train ``cfg`` (see the module docstring). Launch under ``torchrun`` for several processes."""
    from salrank.data import load_dataset
    from salrank.training.datasets import SORTrainingDataset

    info = init_distributed(cfg.device)
    run_dir = Path(cfg.output_dir)
    if info.is_main:
        prepare_run_dir(run_dir, resume, overwrite)
        run_dir.mkdir(parents=True, exist_ok=True)
        from salrank.utils.io import atomic_write

        with atomic_write(run_dir / "config.yaml", "w") as fh:
            yaml.safe_dump(cfg.to_dict(), fh, sort_keys=False)
    barrier()
    if cfg.deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)

    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    seed_everything(cfg.seed)  # the same initial weights on every process
    task = get_task(cfg.model.architecture)
    model = task.build_model(cfg)
    criterion = task.build_criterion(cfg)
    module = LossModule(model, task, criterion, cfg).to(info.device)
    module.train()
    seed_everything(cfg.seed + info.rank)

    train_gt = load_dataset(cfg.data.train, cfg.data.train_split, cfg.data.format)
    train_set = SORTrainingDataset(train_gt, task.sample_options(cfg), cfg.data.image_root)
    val_set = _load_val(cfg)

    optimizer = build_optimizer(module.model, cfg.solver)
    scheduler = build_lr_scheduler(optimizer, cfg.solver)
    scaler = torch.amp.GradScaler(info.device.type, enabled=cfg.solver.amp == "fp16")
    checkpointer = Checkpointer(run_dir, cfg.checkpoint.keep_last, info.is_main)

    start_iter = 0
    best: dict[str, Any] = {}
    if resume:
        last = checkpointer.last()
        if last is None:
            raise InputError("nothing to resume: no checkpoint in this run directory", run_dir)
        state = Checkpointer.load(last)
        start_iter = restore_training_state(state, module.model, optimizer, scheduler, scaler, info.rank, info.world_size)
        best = dict(state.get("best") or {})
        if info.is_main:
            logger.info("resumed from %s at iteration %d", last, start_iter)

    ddp = wrap_ddp(module, info)
    accum = cfg.solver.grad_accumulation
    sampler = TrainBatchSampler(
        len(train_set), cfg.solver.ims_per_gpu, cfg.seed, info.rank, info.world_size, cfg.input.dynamic_sizes, start_batch=start_iter * accum
    )
    loader = iter(_build_loader(train_set, sampler, cfg, info))
    log = TrainLogger(run_dir, cfg.solver.max_iter, start_iter, enabled=info.is_main, progress=progress)
    result = TrainResult(run_dir=run_dir, iterations=start_iter, best=best)
    params = [p for p in module.model.parameters() if p.requires_grad]

    def save(name: str, iteration: int, update_last: bool = True) -> Path | None:
        rng = all_gather_objects(capture_rng_state())
        state = training_state(module.model, optimizer, scheduler, scaler, iteration, rng, {"best": result.best, "config": cfg.to_dict()})
        return checkpointer.save(name, state, update_last)

    def run_eval(iteration: int) -> None:
        if val_set is None:
            return
        t0 = time.perf_counter()
        metrics = evaluate_model(module.model, val_set, cfg.eval.protocol, info, batch_size=max(1, cfg.solver.ims_per_gpu))
        module.train()
        metrics = broadcast_object(metrics)
        if metrics is None:
            return
        result.metrics = metrics
        if info.is_main:
            log.write({"type": "eval", "iter": iteration, **metrics, "eval_s": round(time.perf_counter() - t0, 2)})
            log.message(f"eval @ {iteration}: " + ", ".join(f"{k} {v:.4f}" for k, v in metrics.items() if k in ("sa_sor", "sor", "mae", "sor_assr")))
        value = metrics.get(cfg.eval.metric)
        if value is not None and math.isfinite(value):
            old = result.best.get("value")
            better = old is None or (value > old if cfg.eval.mode == "max" else value < old)
            if better:
                result.best = {"metric": cfg.eval.metric, "value": value, "iter": iteration}
                if info.is_main:
                    import io

                    from salrank.utils.io import atomic_write

                    buf = io.BytesIO()
                    torch.save({"model": unwrap(module.model).state_dict(), "iteration": iteration, "metrics": metrics}, buf)
                    with atomic_write(run_dir / "checkpoints" / "best.pth", "wb") as fh:
                        fh.write(buf.getbuffer())

    t_last = time.perf_counter()
    window: dict[str, list[float]] = {}
    data_time = 0.0
    images_seen = 0
    for iteration in range(start_iter, cfg.solver.max_iter):
        computed, synced = 0, False
        for micro in range(accum):
            t_data = time.perf_counter()
            batch = next(loader)
            data_time += time.perf_counter() - t_data
            for bad in batch["skipped"]:
                result.skipped += 1
                logger.warning("skipping a training sample: %s: image %s: %s", bad["file"], bad["image_id"], bad["error"])
            if not all_processes(len(batch["targets"]) > 0, info.device):
                # Every image of this batch (here or on another process) was unreadable: all processes skip
                # it together, so none waits for a gradient that will not come.
                logger.warning("iteration %d: a batch without a readable image is skipped", iteration + 1)
                continue
            computed += 1
            synced = micro == accum - 1
            images, targets = _to_device(batch["images"], batch["targets"], info.device)
            images_seen += len(targets)
            sync = contextlib.nullcontext() if (micro == accum - 1 or not info.distributed) else ddp.no_sync()
            with sync:
                with _autocast(info.device, cfg.solver.amp):
                    losses = ddp(images, targets)
                total = sum(losses.values())
                if not torch.isfinite(total):
                    raise FloatingPointError(f"loss is {float(total)} at iteration {iteration}: " + ", ".join(f"{k}={float(v):.4g}" for k, v in losses.items()))
                scaler.scale(total / accum).backward()
            for k, v in losses.items():
                window.setdefault(k, []).append(float(v.detach()))
            window.setdefault("loss", []).append(float(total.detach()))
        grad_norm = None
        if computed:
            if info.distributed and not synced:  # the last micro-batch (DDP's gradient sync) was skipped
                average_gradients(params)
            scaler.unscale_(optimizer)
            grad_norm = clip_gradients(params, cfg.solver.clip_grad_norm)
            scaler.step(optimizer)
            scaler.update()
        optimizer.zero_grad(set_to_none=True)
        lr = optimizer.param_groups[0]["lr"]
        with warnings.catch_warnings():  # the schedule follows iterations, also when a step was skipped
            warnings.filterwarnings("ignore", message="Detected call of `lr_scheduler.step", category=UserWarning)
            scheduler.step()
        done = iteration + 1
        result.iterations = done
        log_now = done % cfg.log_period == 0 or done == cfg.solver.max_iter
        if log_now:
            values = {k: float(np.mean(v)) for k, v in window.items()}
            values = reduce_mean(values, info.device)
            elapsed = time.perf_counter() - t_last
            steps = max(1, len(window.get("loss", [])) // accum)
            values.update(
                lr=lr,
                epoch=round(sampler.epoch_of(done * accum), 3),
                time=round(elapsed / steps, 4),
                data_time=round(data_time / steps, 4),
                images_per_s=round(images_seen * info.world_size / max(elapsed, 1e-9), 2),
            )
            if grad_norm is not None:
                values["grad_norm"] = float(grad_norm)
            if info.device.type == "cuda":
                values["max_mem_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
            window, data_time, images_seen, t_last = {}, 0.0, 0, time.perf_counter()
            log.train_step(done, values, log=True)
        else:
            log.train_step(done, {}, log=False)
        if cfg.eval.period > 0 and done % cfg.eval.period == 0 and done != cfg.solver.max_iter:
            run_eval(done)
        if cfg.checkpoint.period > 0 and done % cfg.checkpoint.period == 0 and done != cfg.solver.max_iter:
            save(f"model_{done:07d}.pth", done)

    if cfg.eval.period >= 0:
        run_eval(result.iterations)
    result.final_checkpoint = save("model_final.pth", result.iterations)
    if info.is_main:
        from salrank.modeling.loading import save_model
        from salrank.utils.io import write_json

        try:
            result.weights = save_model(unwrap(module.model), run_dir / "model_final.safetensors")
        except InputError as exc:
            logger.warning("final weights not exported as safetensors: %s", exc)
        write_json(
            run_dir / "summary.json",
            {"iterations": result.iterations, "metrics": result.metrics, "best": result.best, "skipped_samples": result.skipped, "weights": str(result.weights) if result.weights else None},
        )
        log.close()
        try:
            from salrank.training.plot import plot_run

            plot_run(run_dir)
        except InputError as exc:
            logger.info("no plot: %s", exc)
    barrier()
    return result
