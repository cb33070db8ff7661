"""Dataclass configs to and from plain dicts, JSON and YAML files."""

from __future__ import annotations

import dataclasses
import json
import os
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

from salrank.errors import InputError
from salrank.utils.io import atomic_write

T = TypeVar("T")


def config_to_dict(cfg: Any) -> Any:
    """Recursively convert a dataclass (and tuples/lists of them) to JSON-compatible values."""
    if dataclasses.is_dataclass(cfg) and not isinstance(cfg, type):
        return {f.name: config_to_dict(getattr(cfg, f.name)) for f in dataclasses.fields(cfg)}
    if isinstance(cfg, (list, tuple)):
        return [config_to_dict(v) for v in cfg]
    if isinstance(cfg, dict):
        return {k: config_to_dict(v) for k, v in cfg.items()}
    return cfg


def _convert(tp: Any, value: Any) -> Any:
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp) and isinstance(value, dict):
        return config_from_dict(tp, value)
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(tp):
            if arg is type(None) and value is None:
                return None
        for arg in typing.get_args(tp):
            if arg is not type(None):
                try:
                    return _convert(arg, value)
                except (TypeError, ValueError):
                    continue
        return value
    if origin is tuple and isinstance(value, (list, tuple)):
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(args[0], v) for v in value)
        if args and len(args) == len(value):
            return tuple(_convert(a, v) for a, v in zip(args, value))
        return tuple(value)
    if origin is list and isinstance(value, (list, tuple)):
        (arg,) = typing.get_args(tp) or (Any,)
        return [_convert(arg, v) for v in value]
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def config_from_dict(cls: type[T], data: dict[str, Any]) -> T:
    """Build dataclass ``cls`` from a dict, recursing into nested dataclass fields.

    Unknown keys raise :class:`InputError` (a typo in a config must not be silently ignored).
    """
    if not isinstance(data, dict):
        raise InputError(f"expected a mapping for {cls.__name__}, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - names)
    if unknown:
        raise InputError(f"unknown {cls.__name__} option(s): {', '.join(unknown)}; known: {', '.join(sorted(names))}")
    kwargs = {k: _convert(hints.get(k, Any), v) for k, v in data.items()}
    return cls(**kwargs)


def save_config_file(cfg: Any, path: str | os.PathLike[str]) -> None:
    """Write a dataclass config as JSON (``.json``) or YAML (anything else), atomically."""
    data = config_to_dict(cfg)
    p = Path(path)
    with atomic_write(p, "w") as fh:
        if p.suffix == ".json":
            json.dump(data, fh, indent=2)
            fh.write("\n")
        else:
            yaml.safe_dump(data, fh, sort_keys=False)


def load_config_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a JSON or YAML config file into a dict (an :class:`InputError` names the file on failure)."""
    p = Path(path)
    if not p.is_file():
        raise InputError("config file not found", p)
    try:
        with open(p, encoding="utf-8") as fh:
            data = json.load(fh) if p.suffix == ".json" else yaml.safe_load(fh)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise InputError(f"cannot parse config: {exc}", p) from None
    if not isinstance(data, dict):
        raise InputError("a config file must hold a mapping", p)
    return data
