"""A folder of salrank per-image JSON files (``<image>.json``, :meth:`RankedInstances.to_dict`).

``salrank predict`` writes one such file per image; the file's stem is the image id.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from salrank.errors import InputError
from salrank.structures import RankedInstances
from salrank.utils.io import read_json, write_json

logger = logging.getLogger(__name__)


def is_prediction_json(data: Any) -> bool:
    """Whether parsed JSON looks like :meth:`RankedInstances.to_dict` output."""
    return isinstance(data, dict) and isinstance(data.get("instances"), list) and "height" in data and "width" in data


def read_prediction_json(path: str | Path, data: Any = None) -> RankedInstances:
    """One per-image JSON file; errors name the file."""
    p = Path(path)
    if data is None:
        data = read_json(p)
    if not is_prediction_json(data):
        raise InputError("not a salrank prediction file: expected {'image', 'height', 'width', 'instances': [...]}", p)
    try:
        result = RankedInstances.from_dict(data)
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        detail = f"missing field {exc}" if isinstance(exc, KeyError) else str(exc)
        raise InputError(f"invalid prediction ({detail})", p, data.get("image")) from None
    return result


def read_json_folder(folder: str | Path) -> dict[str, RankedInstances]:
    """Every ``*.json`` prediction in ``folder``, keyed by file stem."""
    root = Path(folder)
    out: dict[str, RankedInstances] = {}
    for p in sorted(root.glob("*.json")):
        result = read_prediction_json(p)
        declared = str(result.image_name)
        if declared not in (p.stem,) and Path(declared).stem != p.stem:
            logger.warning("%s: the file says image %r; using the file name %r", p, declared, p.stem)
        result.image_name = p.stem
        out[p.stem] = result
    return out


def save_json_folder(
    preds: Mapping[str, RankedInstances] | Sequence[RankedInstances], folder: str | Path, *, overwrite: bool = False
) -> list[Path]:
    """Write ``<image>.json`` for every prediction (atomic writes; existing files only with ``overwrite``)."""
    items = list(preds.items()) if isinstance(preds, Mapping) else [(r.image_name, r) for r in preds]
    root = Path(folder)
    targets = [root / f"{name}.json" for name, _ in items]
    if not overwrite:
        existing = [t for t in targets if t.exists()]
        if existing:
            raise InputError(f"refusing to overwrite {len(existing)} existing files (e.g. {existing[0].name}); pass overwrite=True", root)
    for (name, result), target in zip(items, targets):
        data = result.to_dict()
        data["image"] = name
        write_json(target, data)
    return targets
