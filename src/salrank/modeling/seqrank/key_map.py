"""Loading official SeqRank checkpoints: the one explicit key map, and the variant check.

Official detectron2 checkpoints are ``{"model": state_dict}`` pickles (read with ``weights_only=True``).
:data:`SEQRANK_KEY_MAP` renames every official key to salrank's module names:

=============================================  ================================================
official                                       salrank
=============================================  ================================================
``backbone.*`` (Swin: ``patch_embed``,         ``backbone.*`` (same names; the constant
``layers``, ``norm0..3``; ResNet: ``layer0..4``) ``relative_position_index`` buffers are dropped)
``neck.lateral_conv.i.0`` / ``.2.norm``        ``neck.lateral_convs.i.conv`` / ``.norm``
``neck.fpn_layers.i.{scale,conv.0,conv.2.norm}`` ``neck.fpn_layers.i.{scale,fuse.conv,fuse.norm}``
``neck.frcs.i.conv1`` / ``conv2``              ``neck.frcs.i.project_high`` / ``fuse``
``pe_layer.ape``                               ``pos_embed.weight``
``instance_seg.q`` / ``qpe``                   ``fovea.query_embed`` / ``query_pos``
``instance_seg.roi_layers.i.grid_embedding``   ``fovea.samplers.i.grid_embed``
``instance_seg.lookByMultiQ_layers.i.*``       ``fovea.blocks.i.*`` (:class:`FoveaBlock` names)
``instance_seg.head.{decoder_norm,score_head,   ``fovea.head.{norm,objectness,mask_embed,box_head}``
mask_embed,bbox_head}``
``gaze_shift.{prev_emb,gaze_emb}``             ``ranking.{prev_embed,gaze_embed}``
``gaze_shift.blocks.i.*``                      ``ranking.blocks.i.*`` (:class:`RankingBlock` names)
``gaze_shift.head.0`` / ``.2``                 ``ranking.saliency_head.layers.0`` / ``.1``
=============================================  ================================================

:func:`load_official_seqrank_checkpoint` first checks that the file is a SeqRank checkpoint of the
model's variant (neck and number of SRM blocks, via the model zoo's structural signatures), and
refuses anything else with a message naming what the file is.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

from torch import Tensor, nn

from salrank.checkpoint import (
    KeyMap,
    LoadReport,
    load_state_dict_into,
    read_official_checkpoint,
)
from salrank.errors import CheckpointError
from salrank.modeling.backbones import ResNet, SwinTransformer
from salrank.modeling.layers import LearnablePE
from salrank.modeling.necks import FPN, FrcPN

__all__ = ["SEQRANK_KEY_MAP", "CheckpointFacts", "checkpoint_facts", "load_official_seqrank_checkpoint"]

_FOVEA_BLOCK = {
    r"linear1\.0": "query_proj.linear",
    r"linear1\.1": "query_proj.norm",
    r"linear2\.0": "cell_proj.linear",
    r"linear2\.1": "cell_proj.norm",
    r"linear3\.0": "merge_proj.linear",
    r"linear3\.1": "merge_proj.norm",
    r"cross_attn\.(q|k|v|out)_proj": r"cross_attn.\2_proj",
    r"norm1": "cross_norm",
    r"self_attn\.(q|k|v|out)_proj": r"self_attn.\2_proj",
    r"norm2": "self_norm",
    r"ffn\.(lin1|lin2)": r"ffn.\2",
    r"norm3": "ffn_norm",
}

_RANKING_BLOCK = {
    r"before": "input_proj",
    r"self_attn1\.(q|k|v|out)_proj": r"query_attn.\2_proj",
    r"norm1": "query_attn_norm",
    r"ffn1\.(lin1|lin2)": r"query_ffn.\2",
    r"norm2": "query_ffn_norm",
    r"cross_attn1\.(q|k|v|out)_proj": r"image_cross_attn.\2_proj",
    r"norm3": "image_cross_norm",
    r"mlp\.0": "peripheral.layers.0",
    r"mlp\.2": "peripheral.layers.1",
    r"norm_mlp": "peripheral_norm",
    r"cross_attn2\.(q|k|v|out)_proj": r"query_cross_attn.\2_proj",
    r"norm4": "query_cross_norm",
    r"self_attn2\.(q|k|v|out)_proj": r"query_attn2.\2_proj",
    r"norm5": "query_attn2_norm",
    r"ffn2\.(lin1|lin2)": r"query_ffn2.\2",
    r"norm6": "query_ffn2_norm",
    r"softmax_head": "gate",
    r"after": "output_proj",
}


def _block_rules(official: str, ours: str, table: dict[str, str]) -> list[tuple[str, str]]:
    """``{official}.N.<name>.(weight|bias)`` -> ``{ours}.N.<new>.(weight|bias)`` (group 1 = N)."""
    rules = []
    for name, new in table.items():
        n_groups = re.compile(name).groups
        rules.append(
            (
                re.escape(official) + r"\.([0-9]+)\." + name + r"\.(weight|bias)",
                ours + r".\1." + new + rf".\{n_groups + 2}",
            )
        )
    return rules


def _rules() -> list[tuple[str, str]]:
    rules: list[tuple[str, str]] = []
    rules += SwinTransformer.official_key_rules("backbone.", "backbone.")
    rules += ResNet.official_key_rules("backbone.", "backbone.")
    rules += FPN.official_key_rules("neck.", "neck.")
    rules += [r for r in FrcPN.official_key_rules("neck.", "neck.") if r not in rules]
    rules += LearnablePE.official_key_rules("pe_layer.", "pos_embed.")
    rules += [(r"pe_layer\.positional_encoding_gaussian_matrix", "pos_embed.gaussian_matrix")]
    rules += [
        (r"instance_seg\.q", "fovea.query_embed"),
        (r"instance_seg\.qpe", "fovea.query_pos"),
        (r"instance_seg\.roi_layers\.([0-9]+)\.grid_embedding", r"fovea.samplers.\1.grid_embed"),
        (r"instance_seg\.level_embed\.weight", "fovea.level_embed.weight"),
        (r"instance_seg\.head\.decoder_norm\.(weight|bias)", r"fovea.head.norm.\1"),
        (r"instance_seg\.head\.score_head\.(weight|bias)", r"fovea.head.objectness.\1"),
        (r"instance_seg\.head\.mask_embed\.layers\.([0-9]+)\.(weight|bias)", r"fovea.head.mask_embed.layers.\1.\2"),
        (r"instance_seg\.head\.bbox_head\.layers\.([0-9]+)\.(weight|bias)", r"fovea.head.box_head.layers.\1.\2"),
    ]
    rules += _block_rules("instance_seg.lookByMultiQ_layers", "fovea.blocks", _FOVEA_BLOCK)
    rules += [
        (r"gaze_shift\.prev_emb", "ranking.prev_embed"),
        (r"gaze_shift\.gaze_emb", "ranking.gaze_embed"),
        (r"gaze_shift\.head\.0\.(weight|bias)", r"ranking.saliency_head.layers.0.\1"),
        (r"gaze_shift\.head\.2\.(weight|bias)", r"ranking.saliency_head.layers.1.\1"),
    ]
    rules += _block_rules("gaze_shift.blocks", "ranking.blocks", _RANKING_BLOCK)
    return rules


SEQRANK_KEY_MAP = KeyMap(
    rules=_rules(),
    drop=[
        *SwinTransformer.official_dropped_keys("backbone."),
        # non-persistent in the official model; old dumps may carry them
        r"pixel_mean",
        r"pixel_std",
    ],
)
"""Official SeqRank state-dict keys -> :class:`~salrank.modeling.seqrank.SeqRank` parameter names."""


# --------------------------------------------------------------------------------------------------
# What a checkpoint is


@dataclass(frozen=True)
class CheckpointFacts:
    """The structure of an official SeqRank checkpoint, read from its keys."""

    neck: str | None
    """``"FPN"``, ``"FrcPN"`` or ``None`` (no neck keys)."""
    srm_blocks: int
    fom_blocks: int

    @property
    def variant(self) -> str:
        if self.neck == "FPN" and self.srm_blocks == 2:
            return "correct"
        if self.neck == "FrcPN" and self.srm_blocks == 6:
            return "original"
        return "custom"

    @property
    def label(self) -> str:
        return variant_label(self.variant, self.neck, self.srm_blocks)


def variant_label(variant: str, neck: str | None, srm_blocks: int) -> str:
    """How to call a SeqRank variant in a message (the model zoo's signature labels for the released ones)."""
    from salrank.weights.verify import SIGNATURE_BY_KIND

    if variant in ("correct", "original"):
        return SIGNATURE_BY_KIND[f"seqrank-{variant}"].label
    return f"SeqRank with a {neck or 'unknown'} neck and {srm_blocks} SRM blocks"


def checkpoint_facts(keys: Mapping[str, object] | list[str]) -> CheckpointFacts:
    """Neck and block counts of an official SeqRank state dict."""
    names = list(keys)
    neck = "FrcPN" if any(k.startswith("neck.frcs.") for k in names) else "FPN" if any(k.startswith("neck.fpn_layers.") for k in names) else None

    def count(pattern: str) -> int:
        rx = re.compile(pattern)
        return len({m.group(1) for k in names for m in [rx.match(k)] if m})

    return CheckpointFacts(
        neck=neck,
        srm_blocks=count(r"gaze_shift\.blocks\.([0-9]+)\."),
        fom_blocks=count(r"instance_seg\.lookByMultiQ_layers\.([0-9]+)\."),
    )


def _what_is(state: Mapping[str, Tensor]) -> str:
    """A description of a non-SeqRank state dict (the zoo's signatures, else the PPA helper)."""
    from salrank.weights.verify import identify

    shapes = {k: tuple(v.shape) for k, v in state.items()}
    sig = identify(shapes)
    if sig is not None:
        return f"a {sig.label} checkpoint"
    from salrank.modeling.ppa.key_map import describe_checkpoint

    return describe_checkpoint(list(state))


def load_official_seqrank_checkpoint(
    model: nn.Module, path: str | os.PathLike[str], *, strict: bool = True, state: Mapping[str, Tensor] | None = None
) -> LoadReport:
    """Load an official SeqRank checkpoint (``weights_only=True``) into a salrank :class:`SeqRank`.

    Args:
        model: a SeqRank built with the matching config (same variant and sizes).
        path: the official ``.pth`` (``{"model": state_dict}``, a training checkpoint or a bare state dict).
        strict: raise when any key is missing, unexpected or of the wrong shape (default); otherwise
            load what fits and return the report listing the rest.
        state: an already-read state dict (``path`` then only names it in messages).

    Raises:
        CheckpointError: the file is not a SeqRank checkpoint (the message says what it is), is of
            another variant than the model (e.g. an original FrcPN/6-SRM file for a corrected model;
            the message names both), or does not fit the model.
    """
    sd = dict(state) if state is not None else read_official_checkpoint(path)
    if not any(k.startswith("gaze_shift.blocks.") for k in sd) or not any(k.startswith("instance_seg.") for k in sd):
        raise CheckpointError(f"not an official SeqRank checkpoint: this file is {_what_is(sd)}", path)
    facts = checkpoint_facts(list(sd))
    cfg = getattr(model, "cfg", None)
    if cfg is not None:
        want_neck, want_srm = cfg.neck, cfg.ranking.num_blocks
        if (facts.neck, facts.srm_blocks) != (want_neck, want_srm):
            raise CheckpointError(
                f"this is a {facts.label} checkpoint, but the model is a "
                f"{variant_label(cfg.variant, want_neck, want_srm)}: build the model from the checkpoint's own config "
                f"(e.g. seqrank_swinL_config({facts.variant!r}) or the config.yaml released with it)",
                path,
            )
        if facts.fom_blocks != cfg.fovea.num_blocks:
            raise CheckpointError(
                f"the checkpoint has {facts.fom_blocks} Fovea Module blocks, the model {cfg.fovea.num_blocks}", path
            )
    mapped, dropped, unmapped = SEQRANK_KEY_MAP.apply(sd)
    if strict and unmapped:
        raise CheckpointError(
            f"{len(unmapped)} official key(s) have no place in salrank's SeqRank: " + ", ".join(unmapped[:10])
            + (f" (+{len(unmapped) - 10} more)" if len(unmapped) > 10 else ""),
            path,
        )
    report = load_state_dict_into(model, mapped, strict=strict, source=path)  # strict: raises before loading
    report.unexpected = sorted(set(report.unexpected) | set(unmapped))
    report.dropped = dropped
    return report
