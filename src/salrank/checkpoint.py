"""Loading and saving model weights.

* Official checkpoints (detectron2 ``{"model": state_dict, ...}`` pickles) are read with
  ``weights_only=True`` and renamed into salrank's module names by an explicit :class:`KeyMap` that each
  model package defines once (``salrank.modeling.<model>.key_map``).
* salrank's own weights are a ``.safetensors`` file with the model config stored in its metadata (and
  optionally a sidecar ``.json``), so no pickle is ever needed to use them.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import Tensor, nn

from salrank.errors import CheckpointError, InputError
from salrank.utils.io import atomic_write, safe_torch_load

StateDict = dict[str, Tensor]


def read_official_checkpoint(path: str | os.PathLike[str]) -> StateDict:
    """The model state dict of an official checkpoint (``{"model": ...}`` or a bare state dict)."""
    data = safe_torch_load(path)
    if isinstance(data, Mapping) and "model" in data and isinstance(data["model"], Mapping):
        data = data["model"]
    elif isinstance(data, Mapping) and "state_dict" in data and isinstance(data["state_dict"], Mapping):
        data = data["state_dict"]
    if not isinstance(data, Mapping) or not data:
        raise CheckpointError("no model state dict in this file (expected {'model': state_dict} or a state dict)", path)
    bad = [k for k, v in data.items() if not isinstance(v, Tensor)]
    if bad:
        example = bad[0]
        if len(data) > 0 and all(isinstance(v, Mapping) for v in data.values()):
            raise CheckpointError(
                "this looks like a prediction/result file (per-image entries), not model weights", path
            )
        raise CheckpointError(f"entry {example!r} is not a tensor: this is not a model checkpoint", path)
    return dict(data)


@dataclass
class KeyMap:
    """An explicit renaming from official state-dict keys to salrank's.

    ``rules`` are ``(regex, replacement)`` pairs tried in order; the first whose pattern matches the
    whole key (``re.fullmatch``) renames it with ``re.sub`` semantics. ``drop`` lists patterns of
    official keys that salrank deliberately does not use (e.g. precomputed buffers); anything that no
    rule covers is reported as unmapped rather than silently passed through.
    """

    rules: list[tuple[str, str]]
    drop: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._rules = [(re.compile(p), r) for p, r in self.rules]
        self._drop = [re.compile(p) for p in self.drop]

    def map_key(self, key: str) -> str | None:
        """The salrank name of an official key; ``None`` when the key is dropped or unmapped."""
        for pattern in self._drop:
            if pattern.fullmatch(key):
                return None
        for pattern, repl in self._rules:
            if pattern.fullmatch(key):
                return pattern.sub(repl, key)
        return None

    def is_dropped(self, key: str) -> bool:
        return any(p.fullmatch(key) for p in self._drop)

    def inverse_key(self, ours: str, official_keys: Iterable[str]) -> str | None:
        """The official key that maps to ``ours`` (searching ``official_keys``)."""
        for key in official_keys:
            if self.map_key(key) == ours:
                return key
        return None

    def apply(self, state: Mapping[str, Tensor]) -> tuple[StateDict, list[str], list[str]]:
        """Rename a state dict. Returns ``(mapped, dropped_keys, unmapped_keys)``."""
        mapped: StateDict = {}
        dropped: list[str] = []
        unmapped: list[str] = []
        for key, value in state.items():
            if self.is_dropped(key):
                dropped.append(key)
                continue
            new = self.map_key(key)
            if new is None:
                unmapped.append(key)
            else:
                if new in mapped:
                    raise CheckpointError(f"key map sends two official keys to {new!r}")
                mapped[new] = value
        return mapped, dropped, unmapped


@dataclass
class LoadReport:
    """What happened when a state dict was loaded into a model."""

    missing: list[str] = field(default_factory=list)
    """Model keys the checkpoint did not provide."""
    unexpected: list[str] = field(default_factory=list)
    """Checkpoint keys (after mapping) the model has no place for, plus unmapped official keys."""
    mismatched: list[tuple[str, tuple[int, ...], tuple[int, ...]]] = field(default_factory=list)
    """``(key, checkpoint shape, model shape)`` of keys with the wrong shape (not loaded)."""
    dropped: list[str] = field(default_factory=list)
    """Official keys the key map deliberately ignores."""

    @property
    def ok(self) -> bool:
        return not (self.missing or self.unexpected or self.mismatched)

    def summary(self, limit: int = 10) -> str:
        """A few readable lines listing what did not load."""
        lines = []

        def show(title: str, items: list[Any]) -> None:
            if items:
                more = f" (+{len(items) - limit} more)" if len(items) > limit else ""
                lines.append(f"{title} ({len(items)}): " + ", ".join(map(str, items[:limit])) + more)

        show("missing keys", self.missing)
        show("unexpected keys", self.unexpected)
        show("shape mismatches", [f"{k} {tuple(a)} vs model {tuple(b)}" for k, a, b in self.mismatched])
        return "\n".join(lines) if lines else "all keys loaded"


def load_state_dict_into(
    model: nn.Module,
    state: Mapping[str, Tensor],
    *,
    strict: bool = True,
    ignore_missing: Callable[[str], bool] | None = None,
    source: str | os.PathLike[str] | None = None,
) -> LoadReport:
    """Copy matching tensors into ``model`` and report what did not match.

    With ``strict`` a :class:`CheckpointError` lists the problems; otherwise they are returned for the
    caller to log. ``ignore_missing(key)`` marks model keys that may legitimately stay at their init
    (e.g. a head not present in a backbone-only file).
    """
    own = model.state_dict()
    report = LoadReport()
    to_load: StateDict = {}
    for key, value in state.items():
        if key not in own:
            report.unexpected.append(key)
        elif tuple(own[key].shape) != tuple(value.shape):
            report.mismatched.append((key, tuple(value.shape), tuple(own[key].shape)))
        else:
            to_load[key] = value
    report.missing = [k for k in own if k not in to_load and not any(k == m for m, _, _ in report.mismatched)]
    if ignore_missing is not None:
        report.missing = [k for k in report.missing if not ignore_missing(k)]
    if strict and not report.ok:
        raise CheckpointError("checkpoint does not fit the model:\n" + report.summary(), source)
    model.load_state_dict(to_load, strict=False)
    return report


def save_safetensors(model: nn.Module, path: str | os.PathLike[str], config: Mapping[str, Any]) -> None:
    """Save ``model``'s weights as safetensors with ``config`` in the metadata and a sidecar JSON.

    The file is written atomically; ``path`` gets the ``.safetensors`` suffix if it has none.
    """
    from safetensors.torch import save

    p = Path(path)
    if p.suffix != ".safetensors":
        p = p.with_suffix(p.suffix + ".safetensors") if p.suffix else p.with_suffix(".safetensors")
    tensors = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    meta = {"format": "salrank", "config": json.dumps(dict(config))}
    with atomic_write(p, "wb") as fh:
        fh.write(save(tensors, metadata=meta))
    with atomic_write(p.with_suffix(".json"), "w") as fh:
        json.dump(dict(config), fh, indent=2)
        fh.write("\n")


def read_safetensors(path: str | os.PathLike[str]) -> tuple[StateDict, dict[str, Any] | None]:
    """Tensors and the stored salrank config (``None`` if the file has none) of a safetensors file."""
    from safetensors import SafetensorError
    from safetensors.torch import load

    p = Path(path)
    if not p.is_file():
        raise InputError("weights file not found", p)
    try:
        raw = p.read_bytes()
        tensors = load(raw)
        from safetensors import safe_open

        with safe_open(str(p), framework="pt") as fh:
            meta = fh.metadata() or {}
    except (SafetensorError, OSError, ValueError) as exc:
        raise InputError(f"not a readable safetensors file: {exc}", p) from None
    config = json.loads(meta["config"]) if "config" in meta else None
    if config is None and p.with_suffix(".json").is_file():
        config = json.loads(p.with_suffix(".json").read_text())
    return tensors, config


def is_safetensors(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` looks like a safetensors file (by suffix or header)."""
    p = Path(path)
    if p.suffix == ".safetensors":
        return True
    try:
        with open(p, "rb") as fh:
            head = fh.read(9)
        return len(head) == 9 and head[8:9] == b"{"
    except OSError:
        return False
