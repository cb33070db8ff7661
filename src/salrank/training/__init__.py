"""Training: ``salrank train`` for SeqRank, PoseSOR, PPA and seqrank-lite.

* :mod:`.config` - :class:`TrainConfig` (YAML + ``key=value`` overrides) and the shipped recipes;
* :mod:`.datasets`, :mod:`.transforms`, :mod:`.samplers` - the data pipeline;
* :mod:`.matcher`, :mod:`.losses` - Hungarian matching and every loss, one module each;
* :mod:`.optim` - parameter groups, AdamW/SGD, clipping, ``WarmupMultiStepLR``;
* :mod:`.checkpointing` - atomic checkpoints and exact resume;
* :mod:`.distributed` - torchrun/DDP;
* :mod:`.engine` - the loop (:func:`train`) and :func:`evaluate_model`;
* :mod:`.logger`, :mod:`.plot` - progress, ``metrics.jsonl``, TensorBoard, curves.
"""

from __future__ import annotations

from typing import Any

__all__ = ["TrainConfig", "evaluate_model", "load_train_config", "train"]


def __getattr__(name: str) -> Any:
    if name in ("TrainConfig", "load_train_config"):
        from salrank.training import config

        return getattr(config, name)
    if name in ("train", "evaluate_model"):
        from salrank.training import engine

        return getattr(engine, name)
    raise AttributeError(name)
