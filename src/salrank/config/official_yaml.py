"""Reading the official detectron2 yaml configs of PPA, SeqRank and PoseSOR.

The official repositories keep configs as detectron2 ``CfgNode`` yaml: nested upper-case keys, with an
optional ``_BASE_`` key naming a parent file (relative to the child) whose values the child overrides.
Full ``cfg.dump()`` files (as stored beside released models) have no ``_BASE_`` and every key.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from salrank.errors import InputError

_MISSING = object()


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def load_official_yaml(path: str | os.PathLike[str], _depth: int = 0) -> dict[str, Any]:
    """Load an official yaml config into nested dicts, resolving ``_BASE_`` files recursively."""
    p = Path(path)
    if not p.is_file():
        raise InputError("config file not found", p)
    if _depth > 10:
        raise InputError("too many nested _BASE_ configs (a cycle?)", p)
    try:
        with open(p, encoding="utf-8") as fh:
            data = yaml.safe_load(fh)
    except yaml.YAMLError as exc:
        raise InputError(f"not valid YAML: {exc}", p) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise InputError("a config file must hold a mapping of keys", p)
    base = data.pop("_BASE_", None)
    if base:
        parent = load_official_yaml(p.parent / base, _depth + 1)
        data = _merge(parent, data)
    return data


def cfg_get(cfg: dict[str, Any], dotted: str, default: Any = _MISSING) -> Any:
    """``cfg_get(cfg, "MODEL.SWIN.EMBED_DIM")``; returns ``default`` (or raises ``KeyError``) when absent."""
    node: Any = cfg
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            if default is _MISSING:
                raise KeyError(dotted)
            return default
        node = node[part]
    return node


def detect_architecture(cfg: dict[str, Any]) -> str:
    """Which official system a config describes: ``"seqrank"``, ``"posesor"`` or ``"ppa"``.

    SeqRank and PoseSOR name their meta-architecture; PPA configs are CenterMask ``GeneralizedRCNN``
    configs with a ``MODEL.SOR`` section. A salrank-native config names its ``architecture``.
    """
    if "architecture" in cfg:
        return str(cfg["architecture"])
    meta = str(cfg_get(cfg, "MODEL.META_ARCHITECTURE", ""))
    if meta == "SeqRank":
        return "seqrank"
    if meta == "PoseSOR":
        return "posesor"
    if "SOR" in cfg.get("MODEL", {}) or "FCOS" in cfg.get("MODEL", {}):
        return "ppa"
    if cfg_get(cfg, "MODEL.ACTOR_INTERACTION", None) is not None:
        return "posesor"
    if cfg_get(cfg, "MODEL.GAZE_SHIFT_HEAD", None) is not None:
        return "seqrank"
    raise InputError(f"cannot tell which model this config describes (META_ARCHITECTURE={meta!r})")


def read_official_config(
    source: str | os.PathLike[str] | dict[str, Any], architecture: str, label: str
) -> tuple[dict[str, Any], str | os.PathLike[str] | None]:
    """The official config of ``source`` (a yaml path, read with its ``_BASE_``, or a loaded dict) and
    its path (``None`` for a dict), refused unless it describes ``architecture``.

    Raises:
        InputError: "this is not a {label} config (it looks like a ... config)", naming the file.
    """
    path = None if isinstance(source, dict) else source
    cfg = source if isinstance(source, dict) else load_official_yaml(source)
    try:
        arch = detect_architecture(cfg)
    except InputError:
        arch = "unknown"
    if arch != architecture:
        raise InputError(f"this is not a {label} config (it looks like a {arch} config)", path)
    return cfg, path
