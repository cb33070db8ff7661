"""Named model architectures: ``build_model("seqrank", cfg)``.

Each model package registers a builder with :func:`register_model`; the builder takes the model's
typed config (or ``None`` for the default) and returns an ``nn.Module`` implementing
:class:`salrank.modeling.base.SORModel`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from torch import nn

_BUILDERS: dict[str, Callable[..., nn.Module]] = {}
# Packages imported on first use so that ``import salrank`` stays light.
_MODEL_PACKAGES = (
    "salrank.modeling.seqrank",
    "salrank.modeling.posesor",
    "salrank.modeling.ppa",
    "salrank.modeling.lite",
    "salrank.modeling.default",
)


def register_model(name: str) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator registering ``builder(cfg=None, **kwargs) -> nn.Module`` under ``name``."""

    def wrap(builder: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in _BUILDERS and _BUILDERS[name] is not builder:
            raise ValueError(f"model {name!r} is registered twice")
        _BUILDERS[name] = builder
        return builder

    return wrap


def _import_model_packages() -> None:
    for pkg in _MODEL_PACKAGES:
        try:
            importlib.import_module(pkg)
        except ModuleNotFoundError as exc:
            if exc.name != pkg:  # a real missing dependency inside an existing package
                raise


def available_models() -> list[str]:
    """Names accepted by :func:`build_model`."""
    _import_model_packages()
    return sorted(_BUILDERS)


def build_model(name: str, cfg: Any = None, **kwargs: Any) -> nn.Module:
    """Build the architecture registered as ``name`` from its typed config."""
    _import_model_packages()
    if name not in _BUILDERS:
        raise KeyError(f"unknown model {name!r}; available: {', '.join(sorted(_BUILDERS)) or 'none'}")
    return _BUILDERS[name](cfg, **kwargs)
