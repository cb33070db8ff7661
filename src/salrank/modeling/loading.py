"""Build any salrank model from a config and/or weights: official files, salrank files or a zoo name.

:func:`load_model` accepts

* ``config``: an official detectron2 yaml (a ``cfg.dump()`` or ``configs/*.yaml``; the architecture is
  detected with :func:`salrank.config.detect_architecture`), a salrank config file (JSON/YAML with an
  ``architecture`` field, as :func:`save_model` writes beside the weights), a dict of either kind, or a
  typed config object (:class:`~salrank.modeling.seqrank.SeqRankConfig`, ...);
* ``weights``: an official checkpoint (``.pth``, loaded through the model's key map with
  ``weights_only=True``), a salrank ``.safetensors`` file (its config is read from its metadata when
  no ``config`` is given) or a zoo name;
* ``name``: a model-zoo entry (:func:`salrank.weights.resolve_weights`; it must be installed), whose
  config preset is used.

Each architecture plugs in through a :class:`ModelAdapter` in :data:`ADAPTERS`: how to build it, read
its official yaml, load its official checkpoints and find its zoo presets. To add a model, write one
adapter factory and add it to the table (the factories import their model package lazily).
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from salrank.checkpoint import (
    is_safetensors,
    load_state_dict_into,
    read_safetensors,
    save_safetensors,
)
from salrank.config import (
    config_from_dict,
    config_to_dict,
    detect_architecture,
    load_config_file,
    load_official_yaml,
)
from salrank.errors import CheckpointError, InputError
from salrank.modeling.base import SORModel

logger = logging.getLogger(__name__)

__all__ = ["ADAPTERS", "ModelAdapter", "get_adapter", "load_model", "model_config", "resolve_device", "save_model"]

ConfigSource = str | os.PathLike[str] | Mapping[str, Any] | Any


@dataclass(frozen=True)
class ModelAdapter:
    """How :func:`load_model` builds and loads one architecture.

    Attributes:
        architecture: the registry name (``"seqrank"``, ``"ppa"``, ...), as in salrank config files.
        config_type: the typed config dataclass.
        build: ``config -> model`` (eval mode, random weights).
        default_config: the config used when nothing else says which.
        from_official_yaml: ``dict -> config`` for the official yaml, or ``None`` if there is none.
        load_official: ``(model, path) -> report`` loading an official checkpoint, or ``None``.
        presets: zoo config names (``ZooEntry.config``) -> ``() -> config``.
        checkpoint_configs: structural checkpoint kinds (:mod:`salrank.weights.verify`) -> ``() -> config``,
            used for an official file given without a config (the released full-size models).
    """

    architecture: str
    config_type: type
    build: Callable[[Any], SORModel]
    default_config: Callable[[], Any]
    from_official_yaml: Callable[[dict[str, Any]], Any] | None = None
    load_official: Callable[[nn.Module, Path], Any] | None = None
    presets: Mapping[str, Callable[[], Any]] = dataclasses.field(default_factory=dict)
    checkpoint_configs: Mapping[str, Callable[[], Any]] = dataclasses.field(default_factory=dict)


# ----------------------------------------------------------------------------------------------------
# The adapter table. Each factory imports its model package only when that model is used.


def _seqrank_adapter() -> ModelAdapter:
    from salrank.modeling import seqrank as s

    return ModelAdapter(
        architecture="seqrank",
        config_type=s.SeqRankConfig,
        build=s.build_seqrank,
        default_config=lambda: s.seqrank_swinL_config("correct"),
        from_official_yaml=s.seqrank_config_from_official_yaml,
        load_official=s.load_official_seqrank_checkpoint,
        presets=s.SEQRANK_PRESETS,
        checkpoint_configs={
            "seqrank-correct": lambda: s.seqrank_swinL_config("correct"),
            "seqrank-original": lambda: s.seqrank_swinL_config("original"),
        },
    )


def _ppa_adapter() -> ModelAdapter:
    from salrank.modeling import ppa as p

    return ModelAdapter(
        architecture="ppa",
        config_type=p.PPAConfig,
        build=p.build_ppa,
        default_config=p.ppa_v39_config,
        from_official_yaml=p.ppa_config_from_official_yaml,
        load_official=p.load_official_ppa_checkpoint,
        presets=p.PPA_CONFIG_PRESETS,
        checkpoint_configs={"ppa": p.ppa_v39_config},
    )


def _posesor_adapter() -> ModelAdapter:
    from salrank.modeling import posesor as p

    return ModelAdapter(
        architecture="posesor",
        config_type=p.PoseSORConfig,
        build=p.build_posesor,
        default_config=lambda: p.posesor_swinl_config("full"),
        from_official_yaml=p.posesor_config_from_official_yaml,
        load_official=p.load_official_posesor_checkpoint,
        presets=p.POSESOR_PRESETS,
        checkpoint_configs={
            "posesor-pai": lambda: p.posesor_swinl_config("full"),
            "posesor-id2": lambda: p.posesor_swinl_config("id2"),
        },
    )


def _default_adapter() -> ModelAdapter:
    from salrank.modeling.default.model import DefaultRankerConfig, build_default_ranker

    return ModelAdapter(
        architecture="default",
        config_type=DefaultRankerConfig,
        build=build_default_ranker,
        default_config=DefaultRankerConfig,
    )


ADAPTERS: dict[str, Callable[[], ModelAdapter]] = {
    "seqrank": _seqrank_adapter,
    "ppa": _ppa_adapter,
    "default": _default_adapter,
    "posesor": _posesor_adapter,
}
"""Architecture name -> adapter factory."""


def get_adapter(architecture: str) -> ModelAdapter:
    """The :class:`ModelAdapter` of ``architecture``."""
    if architecture not in ADAPTERS:
        raise InputError(f"salrank cannot load {architecture!r} models (known: {', '.join(sorted(ADAPTERS))})")
    return ADAPTERS[architecture]()


def _adapter_for_config_object(cfg: Any) -> ModelAdapter:
    for name in ADAPTERS:
        try:
            adapter = get_adapter(name)
        except ImportError:  # pragma: no cover - a model package with a missing optional dependency
            continue
        if isinstance(cfg, adapter.config_type):
            return adapter
    raise InputError(f"not a model config: {type(cfg).__name__}")


# ----------------------------------------------------------------------------------------------------
# Devices


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``"auto"`` (CUDA when available, else CPU), ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ... -> a device.

    A CUDA device on a machine without one is an :class:`InputError`.
    """
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise InputError(f"not a device: {device!r} ({exc})") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"device {device!r} requested but CUDA is not available here (use 'cpu' or 'auto')")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise InputError(f"device {device!r}: only {torch.cuda.device_count()} CUDA device(s)")
    return dev


# ----------------------------------------------------------------------------------------------------
# Configs


def _salrank_config(data: Mapping[str, Any], source: Any) -> tuple[ModelAdapter, Any]:
    """A salrank config dict: ``{"architecture": ..., "config": {...}}`` (or the fields beside ``architecture``)."""
    adapter = get_adapter(str(data["architecture"]))
    body = data["config"] if "config" in data else {k: v for k, v in data.items() if k not in ("architecture", "format_version")}
    if not isinstance(body, dict):
        raise InputError("the 'config' entry of a salrank config must be a mapping", source)
    try:
        return adapter, config_from_dict(adapter.config_type, dict(body))
    except InputError as exc:
        raise InputError(exc.message, source) from None


def _read_config(config: ConfigSource) -> tuple[ModelAdapter, Any]:
    """The adapter and typed config of a config file, dict or object."""
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        return _adapter_for_config_object(config), config
    source: Any = None
    if isinstance(config, (str, os.PathLike)):
        source = Path(config)
        data = load_config_file(source) if source.suffix == ".json" else load_official_yaml(source)
    elif isinstance(config, Mapping):
        data = dict(config)
    else:
        raise InputError(f"a config must be a file, a dict or a config object, not {type(config).__name__}")
    if "architecture" in data:
        return _salrank_config(data, source)
    architecture = detect_architecture(data)
    adapter = get_adapter(architecture)
    if adapter.from_official_yaml is None:
        raise InputError(f"{architecture} has no official config format", source)
    try:
        return adapter, adapter.from_official_yaml(data)
    except InputError as exc:
        raise InputError(exc.message, source or exc.path) from None


def _config_from_weights(path: Path, entry: Any) -> tuple[ModelAdapter, Any]:
    """The config implied by weights alone: salrank metadata, the zoo entry's preset, or the file's structure."""
    if is_safetensors(path):
        _, meta = read_safetensors(path)
        if not meta:
            raise InputError("this safetensors file stores no salrank config; pass --config", path)
        return _salrank_config(meta, path)
    if entry is not None and entry.config:
        adapter = get_adapter(entry.architecture)
        if entry.config not in adapter.presets:
            raise InputError(f"zoo entry {entry.name} names the unknown config preset {entry.config!r}")
        return adapter, adapter.presets[entry.config]()
    from salrank.weights.verify import identify, load_shapes

    shapes = load_shapes(path)
    sig = identify(shapes)
    if sig is None:
        raise InputError("cannot tell which model these weights belong to; pass the model's config (--config)", path)
    if sig.architecture not in ADAPTERS:
        raise InputError(f"this is a {sig.label} file, not a model salrank can run", path)
    adapter = get_adapter(sig.architecture)
    if sig.kind not in adapter.checkpoint_configs:
        raise InputError(f"this is a {sig.label} file; pass its config (--config) to load it", path)
    from salrank.weights.verify import profile_problems
    from salrank.weights.zoo import entries_with_kind

    profiles = [e.size_profile for e in entries_with_kind(sig.kind) if e.size_profile]
    problems = profile_problems(profiles[0], shapes, sig.prefix) if profiles else []
    if problems:
        raise InputError(
            f"this is a {sig.label} checkpoint, but not of the released model's size ({'; '.join(problems[:3])}): "
            "pass its config (--config)",
            path,
        )
    logger.info("%s: %s checkpoint, using the released model's config", path, sig.label)
    return adapter, adapter.checkpoint_configs[sig.kind]()


def model_config(model: nn.Module) -> Any:
    """The typed config a model was built from (``model.cfg``)."""
    cfg = getattr(model, "cfg", None)
    if cfg is None:
        raise InputError(f"{type(model).__name__} keeps no config (model.cfg)")
    return cfg


# ----------------------------------------------------------------------------------------------------
# Public API


def load_model(
    config: ConfigSource | None = None,
    weights: str | os.PathLike[str] | None = None,
    *,
    name: str | None = None,
    device: str | torch.device | None = "cpu",
) -> SORModel:
    """Build a model and load its weights (see the module docstring); returns it in eval mode on ``device``.

    Raises:
        InputError: unreadable or inconsistent config/weights (messages name the file).
        CheckpointError: weights of another model or variant, or that do not fit the config.
        WeightsNotFoundError: a zoo entry that is not installed (with fetch instructions).
    """
    from salrank.weights import resolve_weights

    if name is not None and weights is not None:
        raise InputError("give a zoo name or a weights file, not both")
    entry = None
    path: Path | None = None
    if name is not None or weights is not None:
        path, entry = resolve_weights(name if name is not None else weights)  # type: ignore[arg-type]
    if config is not None:
        adapter, cfg = _read_config(config)
    elif path is not None:
        adapter, cfg = _config_from_weights(path, entry)
    else:
        raise InputError("no model given: pass a config, weights or a zoo name")
    if entry is not None and entry.architecture != adapter.architecture:
        raise InputError(f"zoo entry {entry.name} is a {entry.architecture} model, but the config describes {adapter.architecture}")
    target = resolve_device(device)
    model = adapter.build(cfg)
    if path is not None:
        if is_safetensors(path):
            _load_salrank_weights(model, path, adapter.architecture)
        elif adapter.load_official is None:
            raise InputError(f"{adapter.architecture} models have no official checkpoints", path)
        else:
            report = adapter.load_official(model, path)
            if report is not None and getattr(report, "dropped", None):
                logger.debug("%s: ignored %d official keys (e.g. %s)", path, len(report.dropped), report.dropped[0])
    if entry is not None and hasattr(model, "result_name"):
        model.result_name = entry.name
    return model.to(target).eval()


def _load_salrank_weights(model: nn.Module, path: Path, architecture: str) -> None:
    tensors, meta = read_safetensors(path)
    if meta and meta.get("architecture") not in (None, architecture):
        raise CheckpointError(f"these are {meta['architecture']} weights, not {architecture}", path)
    load_state_dict_into(model, tensors, strict=True, source=path)


def save_model(model: nn.Module, path: str | os.PathLike[str]) -> Path:
    """Save ``model`` as salrank weights: ``.safetensors`` with the config in its metadata, plus a
    sidecar ``.json`` config (``{"architecture": ..., "config": {...}}``). Returns the weights path.

    :func:`load_model` reads the file back (``load_model(weights=path)``), with no pickle involved.
    """
    architecture = getattr(model, "architecture", "")
    if not architecture:
        raise InputError(f"{type(model).__name__} is not a salrank model (no architecture name)")
    config = {"architecture": architecture, "config": config_to_dict(model_config(model))}
    p = Path(path)
    if p.suffix != ".safetensors":
        p = p.with_suffix(p.suffix + ".safetensors") if p.suffix else p.with_suffix(".safetensors")
    save_safetensors(model, p, config)
    return p
