"""Load ImageNet-pretrained backbone weights (the starting point for training).

* :func:`load_swin_pretrained` reads Microsoft's Swin release files (``swin_large_patch4_window12_384_22k.pth``:
  ``{"model": {"patch_embed...", "layers...", "norm...", "head..."}}``) and the files converted by the
  official ``pretrained/convert_backbone.py`` of SeqRank/PoseSOR (the same keys with a ``backbone.``
  prefix). A full SeqRank/PoseSOR checkpoint also works: its non-backbone keys are ignored.
* :func:`load_resnet_pretrained` reads torchvision ImageNet state dicts (``resnet50-*.pth``,
  ``resnext101_32x8d-*.pth``, ...), or SeqRank's own ResNet key layout.

Both return a :class:`~salrank.checkpoint.LoadReport` and log what was loaded, what was deliberately
ignored (``dropped``) and what stayed at its initialisation (``missing``). Files are read with
``weights_only=True``; nothing is downloaded.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Mapping

import torch
from torch import Tensor

from salrank.checkpoint import LoadReport, StateDict, load_state_dict_into, read_official_checkpoint
from salrank.errors import CheckpointError
from salrank.modeling.backbones.resnet import ResNet
from salrank.modeling.backbones.swin import SwinTransformer

logger = logging.getLogger(__name__)

# Keys of Swin classification checkpoints that the detection backbone does not use.
_SWIN_IGNORED = {
    "classifier head": re.compile(r"head\.(weight|bias)"),
    "final LayerNorm of the classifier": re.compile(r"norm\.(weight|bias)"),
    "precomputed shifted-window masks (recomputed for every input size)": re.compile(
        r"layers\.[0-9]+\.blocks\.[0-9]+\.attn_mask"
    ),
    "relative_position_index buffers (constants, recomputed)": re.compile(
        r"layers\.[0-9]+\.blocks\.[0-9]+\.attn\.relative_position_index"
    ),
}
# Model keys a classification checkpoint cannot provide: the per-output LayerNorms of the D2 variant.
_SWIN_EXPECTED_MISSING = re.compile(r"norm[0-9]+\.(weight|bias)")


def _strip_backbone_prefix(state: Mapping[str, Tensor]) -> tuple[StateDict, list[str], str]:
    """Remove the ``backbone.`` prefix of converted/full checkpoints; returns (state, other keys, format)."""
    prefixed = [k for k in state if k.startswith("backbone.")]
    if not prefixed:
        return dict(state), [], "plain (no prefix)"
    inner = {k[len("backbone.") :]: v for k, v in state.items() if k.startswith("backbone.")}
    others = [k for k in state if not k.startswith("backbone.")]
    fmt = "converted (backbone. prefix)" if not others else "full model checkpoint (backbone.* keys used)"
    return inner, others, fmt


def _finish(
    report: LoadReport, source: str, fmt: str, n_loaded: int, strict: bool, expected_missing: Callable[[str], bool]
) -> LoadReport:
    unexpected_missing = [k for k in report.missing if not expected_missing(k)]
    lines = [f"loaded {n_loaded} backbone tensors from {source} ({fmt})"]
    if report.dropped:
        lines.append(f"ignored {len(report.dropped)} keys: " + _abbreviate(report.dropped))
    if report.missing:
        lines.append(f"left at initialisation ({len(report.missing)}): " + _abbreviate(report.missing))
    if report.unexpected:
        lines.append(f"unexpected keys ({len(report.unexpected)}): " + _abbreviate(report.unexpected))
    if report.mismatched:
        lines.append(
            "shape mismatches (not loaded): "
            + ", ".join(f"{k} {tuple(a)} vs model {tuple(b)}" for k, a, b in report.mismatched[:5])
        )
    message = "\n".join(lines)
    if strict and (unexpected_missing or report.unexpected or report.mismatched):
        raise CheckpointError("pretrained weights do not fit the backbone:\n" + message, source)
    logger.info(message)
    return report


def _abbreviate(keys: list[str], limit: int = 6) -> str:
    more = f" (+{len(keys) - limit} more)" if len(keys) > limit else ""
    return ", ".join(keys[:limit]) + more


def load_swin_pretrained(model: SwinTransformer, path: str | os.PathLike[str], *, strict: bool = True) -> LoadReport:
    """Load ImageNet Swin weights into ``model`` (either file format, see the module docstring).

    Ignored (``report.dropped``): the classifier ``head``, the classifier's final ``norm``, the
    precomputed ``attn_mask`` buffers and the ``relative_position_index`` buffers (checked against
    the model's own). Missing (``report.missing``): ``norm0 .. norm3``, the per-output LayerNorms,
    which start from their initialisation as in the official training.

    With ``strict`` (default) any other missing key, any key that fits nowhere and any shape
    mismatch (e.g. a window-7 checkpoint for a window-12 model) raises :class:`CheckpointError`;
    otherwise they are reported and skipped, as detectron2's non-strict loading does.
    """
    source = str(path)
    state = read_official_checkpoint(path)
    state, others, fmt = _strip_backbone_prefix(state)
    if not any(k.startswith(("patch_embed.", "layers.")) for k in state):
        raise CheckpointError("no Swin Transformer weights in this file (no patch_embed.* / layers.* keys)", source)
    if "backbone" not in fmt:
        fmt = "Microsoft Swin release"
    dropped = list(others)
    kept: StateDict = {}
    own_index = {}
    for name, module in model.named_modules():
        if hasattr(module, "relative_position_index"):
            own_index[name + ".relative_position_index"] = module.relative_position_index
    for key, value in state.items():
        if any(p.fullmatch(key) for p in _SWIN_IGNORED.values()):
            if key in own_index and tuple(value.shape) == tuple(own_index[key].shape):
                if not torch.equal(value.to(torch.long), own_index[key].cpu()):
                    raise CheckpointError(f"{key} differs from the standard Swin relative position index", source)
            dropped.append(key)
        else:
            kept[key] = value
    report = load_state_dict_into(model, kept, strict=False, source=source)
    report.dropped = dropped
    n_loaded = len(kept) - len(report.unexpected) - len(report.mismatched)
    return _finish(report, source, fmt, n_loaded, strict, lambda k: bool(_SWIN_EXPECTED_MISSING.fullmatch(k)))


def load_resnet_pretrained(model: ResNet, path: str | os.PathLike[str], *, strict: bool = True) -> LoadReport:
    """Load torchvision-format ImageNet ResNet/ResNeXt weights into ``model``.

    Accepts a torchvision state dict (``conv1.*``, ``bn1.*``, ``layer1..4.*``, ``fc.*``), the same
    with a ``backbone.`` prefix, or SeqRank's layout (``backbone.layer0.0`` = ``conv1``,
    ``backbone.layer0.1`` = ``bn1``). The classifier ``fc`` is ignored; ``num_batches_tracked``
    counters absent from old torchvision files are not an error.
    """
    source = str(path)
    state = read_official_checkpoint(path)
    state, others, fmt = _strip_backbone_prefix(state)
    if "backbone" not in fmt:
        fmt = "torchvision"
    renamed: StateDict = {}
    dropped = list(others)
    for key, value in state.items():
        if re.fullmatch(r"fc\.(weight|bias)", key):
            dropped.append(key)
            continue
        key = re.sub(r"^layer0\.0\.", "conv1.", key)
        key = re.sub(r"^layer0\.1\.", "bn1.", key)
        renamed[key] = value
    if not any(k.startswith("layer1.") for k in renamed):
        raise CheckpointError("no ResNet weights in this file (no layer1.* keys)", source)
    report = load_state_dict_into(model, renamed, strict=False, source=source)
    report.dropped = dropped
    n_loaded = len(renamed) - len(report.unexpected) - len(report.mismatched)
    return _finish(report, source, fmt, n_loaded, strict, lambda k: k.endswith("num_batches_tracked"))


__all__ = ["load_resnet_pretrained", "load_swin_pretrained"]
