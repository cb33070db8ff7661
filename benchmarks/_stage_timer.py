"""Wall time per top-level stage of one model call, from forward hooks (shared by the speed benchmarks)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

import torch


def stage_seconds(model: torch.nn.Module, stages: Iterable[str], call: Callable[[], object]) -> tuple[float, dict[str, float]]:
    """Run ``call()`` once with a timer on each named submodule: (total seconds, seconds per stage).

    A stage that runs several times in the call gets the sum of its runs; the hooks are removed after.
    """
    starts: dict[str, float] = {}
    seconds: dict[str, float] = {}

    def pre(name: str):
        return lambda *_: starts.__setitem__(name, time.perf_counter())

    def post(name: str):
        return lambda *_: seconds.__setitem__(name, seconds.get(name, 0.0) + time.perf_counter() - starts[name])

    handles = []
    for name in stages:
        module = model.get_submodule(name)
        handles += [module.register_forward_pre_hook(pre(name)), module.register_forward_hook(post(name))]
    try:
        t0 = time.perf_counter()
        call()
        total = time.perf_counter() - t0
    finally:
        for handle in handles:
            handle.remove()
    return total, seconds
