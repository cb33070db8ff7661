"""PPA (Fang et al., ICCV 2021): Salient Object Ranking with Position-Preserved Attention, in pure PyTorch.

Quick use::

    from salrank.modeling.ppa import build_ppa, ppa_v39_config, load_official_ppa_checkpoint
    model = build_ppa(ppa_v39_config())
    load_official_ppa_checkpoint(model, "model_final.pth")   # the authors' released checkpoint
    result = model.predict([rgb_uint8_image], ["photo"])[0]  # RankedInstances, most salient first

Modules: :mod:`.config` (typed config, official yaml), :mod:`.fcos` (detector), :mod:`.roi_heads`
(level assignment, position-preserving pooling), :mod:`.mask_head`, :mod:`.maskiou_head`,
:mod:`.rank_head` (the PPA head and its ablations), :mod:`.readout` (greedy rank read-out),
:mod:`.preprocess`/:mod:`.postprocess` (official input pipeline, mask pasting), :mod:`.ppa` (the
model), :mod:`.key_map` (official checkpoint loading).
"""

from __future__ import annotations

import os
from typing import Any

from salrank.checkpoint import LoadReport
from salrank.modeling.ppa.config import (
    FCOSConfig,
    InputConfig,
    PPAConfig,
    RankHeadConfig,
    ROIHeadsConfig,
    ppa_config_from_official_yaml,
    ppa_tiny_config,
    ppa_v39_config,
)
from salrank.modeling.ppa.key_map import PPA_KEY_MAP, describe_checkpoint, load_official_ppa_checkpoint
from salrank.modeling.ppa.ppa import PPA, PPAPrediction, build_ppa, rank_saliency, to_ranked_instances

PPA_CONFIG_PRESETS = {"ppa-v39": ppa_v39_config, "ppa-tiny": ppa_tiny_config}
"""Named configs (zoo entries refer to them by name): ``"ppa-v39"`` is the released model, ``"ppa-tiny"`` a
narrow one for tests and CPU smoke training."""

PPA_RELEASED_CHECKPOINT: dict[str, Any] = {
    "name": "ppa-centermask-v39",
    "description": "PPA (ICCV 2021) released model: CenterMask VoVNet-39-eSE + Position-Preserved Attention, trained on ASSR",
    "url": "https://drive.google.com/file/d/10oqR9YsDrwicpbykL91bu0HYBndvl6PQ/view?usp=sharing",
    "source": "https://github.com/EricFH/SOR (README: 'pretrained model (centermask-39) release on google drive')",
    "license": "Apache-2.0 (code); the weights are distributed by the authors",
    "config": "configs/sor/ppa.yaml",
    "format": "official detectron2 checkpoint ({'model': state_dict}), loaded with load_official_ppa_checkpoint",
}
"""Where the authors' checkpoint lives (for the model zoo); the config is :func:`ppa_v39_config`."""


def render_ppa_rank_map(result: Any) -> Any:
    """PPA's grey rank map (``uint8`` ``(H, W)``); see :mod:`salrank.modeling.ppa.rank_map`."""
    from salrank.modeling.ppa.rank_map import render_ppa_rank_map as render

    return render(result)


def save_ppa_rank_map(result: Any, path: str | os.PathLike[str], *, overwrite: bool = False) -> Any:
    """Write PPA's grey rank map as a PNG; see :mod:`salrank.modeling.ppa.rank_map`."""
    from salrank.modeling.ppa.rank_map import save_ppa_rank_map as save

    return save(result, path, overwrite=overwrite)


def load_ppa_from_official(
    config: str | os.PathLike[str] | dict[str, Any] | PPAConfig, checkpoint: str | os.PathLike[str], **yaml_kwargs: Any
) -> PPA:
    """Build PPA from an official yaml (or a :class:`PPAConfig`) and load an official checkpoint into it."""
    cfg = config if isinstance(config, PPAConfig) else ppa_config_from_official_yaml(config, **yaml_kwargs)
    model = build_ppa(cfg)
    load_official_ppa_checkpoint(model, checkpoint)
    return model.eval()


__all__ = [
    "PPA",
    "PPA_CONFIG_PRESETS",
    "PPA_KEY_MAP",
    "PPA_RELEASED_CHECKPOINT",
    "FCOSConfig",
    "InputConfig",
    "LoadReport",
    "PPAConfig",
    "PPAPrediction",
    "ROIHeadsConfig",
    "RankHeadConfig",
    "build_ppa",
    "describe_checkpoint",
    "load_official_ppa_checkpoint",
    "load_ppa_from_official",
    "ppa_config_from_official_yaml",
    "ppa_tiny_config",
    "ppa_v39_config",
    "rank_saliency",
    "render_ppa_rank_map",
    "save_ppa_rank_map",
    "to_ranked_instances",
]
