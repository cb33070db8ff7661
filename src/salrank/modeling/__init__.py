"""Model architectures: one sub-package per system, shared building blocks beside them.

``build_model(name, cfg)`` builds any registered architecture; see :mod:`salrank.modeling.registry`.
"""

from salrank.modeling.base import SORModel
from salrank.modeling.registry import available_models, build_model, register_model

__all__ = ["SORModel", "available_models", "build_model", "register_model"]
