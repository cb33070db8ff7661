"""salrank: Salient Object Ranking (PPA, SeqRank, PoseSOR) in pure PyTorch.

The public API is imported lazily so that ``import salrank`` is fast:

* :class:`RankedInstances`, :class:`GTImage`, :class:`SORDataset`: the data types.
* :func:`load_dataset`: read any of the field's ground-truth formats.
* :func:`evaluate`: score predictions under the ``seqrank``, ``assr`` or ``irsr`` protocol.
* :class:`Ranker`: rank the salient objects of your photos (``salrank.Ranker()(path)``);
  :func:`example_image`: the path of the example photo shipped with salrank.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "RankedInstances": "salrank.structures",
    "Instance": "salrank.structures",
    "GTImage": "salrank.structures",
    "GTInstance": "salrank.structures",
    "SORDataset": "salrank.structures",
    "InputError": "salrank.errors",
    "build_model": "salrank.modeling.registry",
    "Ranker": "salrank.ranker",
    "example_image": "salrank.apps.examples",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'salrank' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + list(_LAZY))


__all__ = ["__version__", *_LAZY]
