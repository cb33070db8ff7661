"""salrank: Salient Object Ranking (PPA, SeqRank, PoseSOR) in pure PyTorch.

The public API is imported lazily so that ``import salrank`` is fast:

* :class:`Ranker`: rank the salient objects of your photos (``salrank.Ranker()(path)``);
  :func:`example_image`: the path of the example photo shipped with salrank.
* :class:`Predictor`, :func:`load_model`, :func:`save_model`, :func:`build_model`: models by name or file.
* :class:`RankedInstances`, :class:`GTImage`, :class:`SORDataset`: the data types.
* :func:`load_dataset`, :func:`save_dataset`, :func:`check_dataset`: the field's ground-truth formats.
* :func:`load_predictions`, :func:`save_result_file`, :func:`save_coco_results`, :func:`render_rank_map`:
  prediction files.
* :func:`evaluate` (-> :class:`EvaluationReport`): the ``seqrank``, ``assr`` and ``irsr`` protocols.
* :func:`list_entries`, :func:`get_entry`, :func:`fetch_weights`, :func:`resolve_weights`: the model zoo.
* :func:`rank_colormap`, :func:`overlay`: pictures of a result.
* :func:`train`, :func:`load_train_config`, :class:`TrainConfig`, :func:`generate_synth_dataset`: training.
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
    "Ranker": "salrank.ranker",
    "example_image": "salrank.apps.examples",
    "Predictor": "salrank.predictor",
    "build_model": "salrank.modeling.registry",
    "load_model": "salrank.modeling.loading",
    "save_model": "salrank.modeling.loading",
    "load_dataset": "salrank.data",
    "save_dataset": "salrank.data",
    "check_dataset": "salrank.data",
    "load_predictions": "salrank.io",
    "save_result_file": "salrank.io",
    "save_coco_results": "salrank.io",
    "render_rank_map": "salrank.io",
    "evaluate": "salrank.evaluation",
    "EvaluationReport": "salrank.evaluation",
    "list_entries": "salrank.weights",
    "get_entry": "salrank.weights",
    "fetch_weights": "salrank.weights",
    "resolve_weights": "salrank.weights",
    "rank_colormap": "salrank.viz",
    "overlay": "salrank.viz",
    "train": "salrank.training",
    "load_train_config": "salrank.training",
    "TrainConfig": "salrank.training",
    "generate_synth_dataset": "salrank.data.synth",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'salrank' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + list(_LAZY))


__all__ = ["__version__", *_LAZY.keys()]  # noqa: PLE0604 (the lazy names are strings)
