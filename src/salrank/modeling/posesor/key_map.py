"""The one explicit renaming of official PoseSOR checkpoint keys to salrank's modules.

Official checkpoints are detectron2 ``{"model": state_dict}`` files of ``network/PoseSOR.py::PoseSOR``:

=============================== =================================== ==========================================
official prefix                 salrank module                      rules
=============================== =================================== ==========================================
``backbone.``                   ``backbone`` (Swin or ResNet)       Swin names kept (``relative_position_index``
                                                                    dropped); ResNet as SeqRank's
``neck.``                       ``neck`` (FPN / FrcPN)              :meth:`FPN.official_key_rules`
``pe_layer.ape``                ``pos_embed.weight``                :meth:`LearnablePE.official_key_rules`
``instance_seg.``               ``sis_decoder``                     :meth:`SISDecoder.official_key_rules`
``actor_interaction.``          ``pose_interaction``                :meth:`PoseAwareInteraction.official_key_rules`
``pose_shift.``                 ``pose_ranking``                    :meth:`PoseDrivenRanking.official_key_rules`
=============================== =================================== ==========================================

Every key either maps through :data:`POSESOR_KEY_MAP` or is reported; nothing passes through silently.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from torch import Tensor, nn

from salrank.checkpoint import (
    KeyMap,
    LoadReport,
    load_state_dict_into,
    read_official_checkpoint,
)
from salrank.errors import CheckpointError, InputError
from salrank.modeling.backbones import ResNet, SwinTransformer
from salrank.modeling.layers import LearnablePE
from salrank.modeling.necks import FPN, FrcPN
from salrank.modeling.posesor.pose_interaction import PoseAwareInteraction
from salrank.modeling.posesor.pose_ranking import PoseDrivenRanking
from salrank.modeling.posesor.sis_decoder import SISDecoder

__all__ = ["POSESOR_KEY_MAP", "checkpoint_variant", "describe_checkpoint", "load_official_posesor_checkpoint"]


POSESOR_KEY_MAP = KeyMap(
    rules=SwinTransformer.official_key_rules("backbone.", "backbone.")
    + ResNet.official_key_rules("backbone.", "backbone.")
    + FPN.official_key_rules("neck.", "neck.")
    + FrcPN.official_key_rules("neck.", "neck.")
    + LearnablePE.official_key_rules("pe_layer.", "pos_embed.")
    + SISDecoder.official_key_rules("instance_seg.", "sis_decoder.")
    + PoseAwareInteraction.official_key_rules("actor_interaction.", "pose_interaction.")
    + PoseDrivenRanking.official_key_rules("pose_shift.", "pose_ranking."),
    drop=SwinTransformer.official_dropped_keys("backbone.") + [r"pixel_mean", r"pixel_std"],
)
"""Official PoseSOR state-dict keys -> :class:`~salrank.modeling.posesor.PoseSOR` parameter names."""


def describe_checkpoint(keys: Mapping[str, Tensor] | list[str]) -> str:
    """What kind of model a state dict (or its key list) belongs to, in words."""
    names = list(keys)
    shapes = {k: tuple(v.shape) for k, v in keys.items()} if isinstance(keys, Mapping) else {k: () for k in names}
    if any(k.startswith("actor_interaction.") for k in names):
        variant = checkpoint_variant(names)
        size = ""
        q = shapes.get("instance_seg.q")
        patch = shapes.get("backbone.patch_embed.proj.weight")
        if q and len(q) == 3:
            size = f" ({q[1]} queries, {q[2]}-d"
            size += f", Swin embed {patch[0]})" if patch else ")"
        return f"a PoseSOR checkpoint, {variant}{size}"
    try:
        from salrank.weights.verify import identify

        sig = identify({k: tuple(v) for k, v in shapes.items()})
    except (ImportError, KeyError, ValueError):  # pragma: no cover - verification tables unavailable
        sig = None
    if sig is not None:
        return f"a {sig.label} checkpoint"
    from salrank.modeling.ppa.key_map import describe_checkpoint as describe_other

    return describe_other(names)


def checkpoint_variant(keys: list[str] | Mapping[str, Tensor]) -> str:
    """Which PoseSOR variant a state dict's keys say it is (as far as keys can tell).

    ``"full"`` (``PAI`` with scene tokens; ID3/ID4/ID6 have the same keys), ``"id2"`` (no scene LayerNorm:
    "w/o pose knowledge"), ``"id8"`` (no intra-object modules), ``"id9"`` (no interaction blocks), each with
    ``"+PDRID8"`` when the ranking module is reduced to its head.
    """
    names = list(keys)
    has = lambda pattern: any(k.startswith(pattern) for k in names)
    if not has("actor_interaction.blocks."):
        out = "id9 (no PAI interaction blocks)"
    elif not has("actor_interaction.blocks.0.inner_joints_ia."):
        out = "id8 (no joint interaction)"
    elif not any(".scene_norm." in k for k in names if k.startswith("actor_interaction.")):
        out = "id2 ('w/o pose knowledge': PAI without scene tokens)"
    else:
        out = "full model (PAI with scene tokens)"
    if not has("pose_shift.to_directions."):
        out += " with the head-only ranking module (PDRID8)"
    return out


def load_official_posesor_checkpoint(
    model: nn.Module, path: str | os.PathLike[str], *, strict: bool = True, state: Mapping[str, Tensor] | None = None
) -> LoadReport:
    """Load an official PoseSOR checkpoint (read with ``weights_only=True``) into a salrank :class:`PoseSOR`.

    Args:
        model: a :class:`~salrank.modeling.posesor.PoseSOR` built with the matching config (variant and sizes).
        path: the official ``.pth`` (``{"model": state_dict}``).
        strict: raise :class:`~salrank.errors.CheckpointError` when any key is missing, unexpected or of
            the wrong shape (default); otherwise the report lists them.
        state: an already-read state dict (``path`` then only names it in messages).

    Raises:
        CheckpointError: the file is not a PoseSOR checkpoint (SeqRank, PPA, a backbone, ...), is another
            PoseSOR variant than the model (e.g. the ID2 "w/o pose knowledge" file into the full model), or
            does not fit the model's sizes; the message says what the file is.
    """
    sd = dict(state) if state is not None else read_official_checkpoint(path)
    if not any(k.startswith("actor_interaction.") for k in sd) or not any(k.startswith("pose_shift.") for k in sd):
        raise CheckpointError(f"not an official PoseSOR checkpoint: this file looks like {describe_checkpoint(sd)}", path)
    mapped, dropped, unmapped = POSESOR_KEY_MAP.apply(sd)
    own = model.state_dict()
    missing = [k for k in own if k not in mapped]
    unexpected = [k for k in mapped if k not in own]
    if strict and (missing or unexpected or unmapped):
        cfg = getattr(model, "cfg", None)
        wanted = ""
        if cfg is not None:
            try:
                wanted = f" The model was built as PoseSOR variant {cfg.variant!r}."
            except InputError:  # pragma: no cover - a config with an unofficial combination
                wanted = ""
        hint = ""
        file_variant = checkpoint_variant(sd)
        if file_variant.startswith("id2") and (cfg is None or cfg.pai.scene_tokens):
            hint = " Build the model with posesor_swinl_config('id2') (zoo config 'posesor-swinl-id2') for this file."
        elif file_variant.startswith("full") and cfg is not None and not cfg.pai.keeps_scene_norm:
            hint = " Build the model with posesor_swinl_config('full') (zoo config 'posesor-swinl') for this file."
        details = []
        if unmapped:
            details.append(f"{len(unmapped)} official key(s) have no salrank name: {', '.join(unmapped[:5])}")
        if unexpected:
            details.append(f"{len(unexpected)} key(s) have no place in this model: {', '.join(unexpected[:5])}")
        if missing:
            details.append(f"{len(missing)} model key(s) are not in the file: {', '.join(missing[:5])}")
        raise CheckpointError(
            f"this file is {describe_checkpoint(sd)}, which does not fit the model.{wanted}{hint} " + "; ".join(details), path
        )
    try:
        report = load_state_dict_into(model, mapped, strict=strict, source=path)
    except CheckpointError as exc:
        raise CheckpointError(f"this file is {describe_checkpoint(sd)}; {exc.message}", path) from None
    report.unexpected = sorted(set(report.unexpected) | set(unmapped))
    report.dropped = dropped
    return report
