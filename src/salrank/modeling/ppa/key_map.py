"""The one explicit renaming of official PPA (CenterMask2 + SOR) checkpoint keys to salrank's modules.

Official checkpoints are detectron2 ``{"model": state_dict}`` files of ``GeneralizedRCNN`` with
``backbone.bottom_up`` (VoVNet), ``backbone.fpn_*``/``backbone.top_block`` (FPN), ``proposal_generator``
(FCOS) and ``roi_heads.{mask,maskiou,sor}_head``. Every key either maps through :data:`PPA_KEY_MAP`
or is reported; nothing passes through silently.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping

from torch import Tensor, nn

from salrank.checkpoint import KeyMap, LoadReport, load_state_dict_into, read_official_checkpoint
from salrank.errors import CheckpointError

__all__ = ["PPA_KEY_MAP", "describe_checkpoint", "load_centermask_detector_checkpoint", "load_official_ppa_checkpoint"]

_NORM = r"(weight|bias|running_mean|running_var|num_batches_tracked)"
_MAX_LAYERS = 16  # more than any official VoVNet stage (9 blocks) or head (4 convs) has


def _numbered(official: str, ours: str, first: int, count: int = _MAX_LAYERS) -> list[tuple[str, str]]:
    """Rules for official modules numbered from ``first`` (``{k}``) -> ours numbered from 0 (``{i}``)."""
    return [(official.format(k=k + first), ours.format(i=k)) for k in range(count)]


def _rules() -> list[tuple[str, str]]:
    bb = r"backbone\.bottom_up"
    rules: list[tuple[str, str]] = []
    # --- VoVNet stem: stem_{1,2,3} -> stem.{0,1,2}; plain or depthwise-separable convs
    for k in (1, 2, 3):
        rules += [
            (rf"{bb}\.stem\.stem_{k}/conv\.weight", f"backbone.stem.{k - 1}.conv.weight"),
            (rf"{bb}\.stem\.stem_{k}/norm\.{_NORM}", rf"backbone.stem.{k - 1}.norm.\1"),
            (rf"{bb}\.stem\.stem_{k}/dw_conv3x3\.weight", f"backbone.stem.{k - 1}.dw.weight"),
            (rf"{bb}\.stem\.stem_{k}/pw_conv1x1\.weight", f"backbone.stem.{k - 1}.pw.weight"),
            (rf"{bb}\.stem\.stem_{k}/pw_norm\.{_NORM}", rf"backbone.stem.{k - 1}.norm.\1"),
        ]
    # --- VoVNet OSA blocks: stage{s}.OSA{s}_{b} (b from 1) -> stage{s}.blocks.{b-1}
    for b in range(1, _MAX_LAYERS + 1):
        osa = rf"{bb}\.stage([2-5])\.OSA\1_{b}"
        ours = rf"backbone.stage\1.blocks.{b - 1}"
        rules += [
            (rf"{osa}\.layers\.(\d+)\.OSA\1_{b}_\2/conv\.weight", rf"{ours}.layers.\2.conv.weight"),
            (rf"{osa}\.layers\.(\d+)\.OSA\1_{b}_\2/norm\.{_NORM}", rf"{ours}.layers.\2.norm.\3"),
            (rf"{osa}\.layers\.(\d+)\.OSA\1_{b}_\2/dw_conv3x3\.weight", rf"{ours}.layers.\2.dw.weight"),
            (rf"{osa}\.layers\.(\d+)\.OSA\1_{b}_\2/pw_conv1x1\.weight", rf"{ours}.layers.\2.pw.weight"),
            (rf"{osa}\.layers\.(\d+)\.OSA\1_{b}_\2/pw_norm\.{_NORM}", rf"{ours}.layers.\2.norm.\3"),
            (rf"{osa}\.conv_reduction\.OSA\1_{b}_reduction_0/conv\.weight", rf"{ours}.reduction.conv.weight"),
            (rf"{osa}\.conv_reduction\.OSA\1_{b}_reduction_0/norm\.{_NORM}", rf"{ours}.reduction.norm.\2"),
            (rf"{osa}\.concat\.OSA\1_{b}_concat/conv\.weight", rf"{ours}.concat.conv.weight"),
            (rf"{osa}\.concat\.OSA\1_{b}_concat/norm\.{_NORM}", rf"{ours}.concat.norm.\2"),
            (rf"{osa}\.ese\.fc\.(weight|bias)", rf"{ours}.ese.fc.\2"),
        ]
    # --- FPN: fpn_lateral{3,4,5}/fpn_output{3,4,5} -> lateral_convs/output_convs.{0,1,2}; P6/P7
    rules += _numbered(r"backbone\.fpn_lateral{k}\.(weight|bias)", r"neck.lateral_convs.{i}.\1", 3, 4)
    rules += _numbered(r"backbone\.fpn_output{k}\.(weight|bias)", r"neck.output_convs.{i}.\1", 3, 4)
    rules += [(r"backbone\.top_block\.(p6|p7)\.(weight|bias)", r"neck.\1.\2")]
    # --- FCOS head: same structure, new prefix
    rules += [(r"proposal_generator\.fcos_head\.(.+)", r"fcos.\1")]
    # --- mask head
    mh = r"roi_heads\.mask_head"
    rules += _numbered(mh + r"\.mask_fcn{k}\.(weight|bias)", r"roi_heads.mask_head.convs.{i}.\1", 1)
    rules += _numbered(mh + r"\.mask_fcn{k}\.norm\." + _NORM, r"roi_heads.mask_head.norms.{i}.\1", 1)
    rules += [
        (mh + r"\.spatialAtt\.conv\.weight", "roi_heads.mask_head.spatial_attention.conv.weight"),
        (mh + r"\.(deconv|predictor)\.(weight|bias)", r"roi_heads.mask_head.\1.\2"),
    ]
    # --- MaskIoU head
    mi = r"roi_heads\.maskiou_head"
    rules += _numbered(mi + r"\.maskiou_fcn{k}\.(weight|bias)", r"roi_heads.maskiou_head.convs.{i}.\1", 1)
    rules += [
        (mi + r"\.maskiou_fc(1|2)\.(weight|bias)", r"roi_heads.maskiou_head.fc\1.\2"),
        (mi + r"\.maskiou\.(weight|bias)", r"roi_heads.maskiou_head.predictor.\1"),
    ]
    # --- SOR (rank) head, every official variant
    sh = r"roi_heads\.sor_head"
    rules += _numbered(sh + r"\.sor_fcn{k}\.(weight|bias)", r"roi_heads.rank_head.convs.{i}.\1", 1)
    rules += [
        (sh + r"\.sor_fc(1|2)\.(weight|bias)", r"roi_heads.rank_head.fc\1.\2"),
        (sh + r"\.sor\.(weight|bias)", r"roi_heads.rank_head.classifier.\1"),
        (sh + r"\.pos_conv\.(weight|bias)", r"roi_heads.rank_head.pos_conv.\1"),
        (sh + r"\.pos_embedding", "roi_heads.rank_head.pos_embedding"),
        (sh + r"\.transformer_encoder\.(layers\.\d+\..+)", r"roi_heads.rank_head.encoder.\1"),
    ]
    return rules


PPA_KEY_MAP = KeyMap(
    rules=_rules(),
    drop=[
        # detectron2 registers these as non-persistent buffers; old dumps may still carry them.
        r"pixel_mean",
        r"pixel_std",
    ],
)
"""Official PPA state-dict keys -> :class:`~salrank.modeling.ppa.PPA` parameter names."""


def describe_checkpoint(keys: Iterable[str]) -> str:
    """A short description of what kind of model a state dict belongs to, from its keys."""
    keys = list(keys)
    prefixes = sorted({".".join(k.split(".")[:2]) for k in keys})
    has = lambda prefix: any(k.startswith(prefix) for k in keys)
    if has("backbone.patch_embed."):
        if has("gaze_shift."):
            return "a SeqRank checkpoint (Swin backbone with gaze_shift.* ranking modules)"
        if has("pose_shift.") or has("actor_interaction."):
            return "a PoseSOR checkpoint (Swin backbone with pose_shift.*/actor_interaction.* modules)"
        return "a Swin-transformer model (" + ", ".join(prefixes[:6]) + ")"
    if has("backbone.bottom_up.stem.stem_1/"):
        if not has("roi_heads.sor_head."):
            return "a CenterMask VoVNet detector without a SOR head (e.g. the centermask2 pretraining weights)"
        return "an official PPA (CenterMask VoVNet + SOR head) checkpoint"
    if has("backbone.bottom_up.res2."):
        return "a ResNet-FPN detectron2 model (e.g. PPA's Mask R-CNN ablation), not CenterMask/VoVNet"
    if has("roi_heads.rank_head.") or has("backbone.stage2.blocks."):
        return "a salrank-native PPA state dict (load it with load_state_dict, not through the official key map)"
    return f"an unknown model with {len(keys)} keys (first module names: {', '.join(prefixes[:6]) or 'none'})"


def load_official_ppa_checkpoint(
    model: nn.Module, path: str | os.PathLike[str], *, strict: bool = True, state: Mapping[str, Tensor] | None = None
) -> LoadReport:
    """Load an official PPA checkpoint (``weights_only=True``) into a salrank PPA model.

    Args:
        model: a :class:`~salrank.modeling.ppa.PPA` built with the matching config.
        path: the official ``.pth`` (``{"model": state_dict}``).
        strict: raise :class:`~salrank.errors.CheckpointError` when any key is missing, unexpected or of
            the wrong shape (the default); otherwise the report lists them.
        state: an already-read state dict (then ``path`` only names it in messages).

    Raises:
        CheckpointError: the file is not a PPA checkpoint (a SeqRank/PoseSOR file, a detector without a
            SOR head, ...; the message says what it looks like) or does not fit the model.
    """
    sd = dict(state) if state is not None else read_official_checkpoint(path)
    if not any(k.startswith("roi_heads.sor_head.") for k in sd) or not any(k.startswith("backbone.bottom_up.") for k in sd):
        raise CheckpointError(f"not an official PPA checkpoint: this file looks like {describe_checkpoint(sd)}", path)
    mapped, dropped, unmapped = PPA_KEY_MAP.apply(sd)
    if strict and unmapped:
        raise CheckpointError(
            f"{len(unmapped)} official key(s) have no place in salrank's PPA (another variant?): " + ", ".join(unmapped[:10]), path
        )
    report = load_state_dict_into(model, mapped, strict=strict, source=path)  # raises before loading anything
    report.unexpected = sorted(set(report.unexpected) | set(unmapped))
    report.dropped = dropped
    return report


def load_centermask_detector_checkpoint(
    model: nn.Module, path: str | os.PathLike[str], *, state: Mapping[str, Tensor] | None = None
) -> LoadReport:
    """Initialise a PPA model for training from an official CenterMask2 detector (or a PPA checkpoint).

    The official recipe starts from CenterMask2's COCO model (``MODEL.WEIGHTS:
    centermask2-V-39-eSE-FPN-ms-3x.pth``): backbone, FPN, FCOS, mask and MaskIoU heads, without a SOR
    head, and with 80-class predictors where PPA has one class. detectron2 loads such a file
    non-strictly; so does this: every key goes through :data:`PPA_KEY_MAP`, tensors of another shape
    and the missing SOR head keep their initial values, and the report lists them.

    Raises:
        CheckpointError: the file holds no CenterMask VoVNet backbone (says what it looks like instead).
    """
    sd = dict(state) if state is not None else read_official_checkpoint(path)
    if not any(k.startswith("backbone.bottom_up.") for k in sd):
        raise CheckpointError(f"not a CenterMask/PPA checkpoint: this file looks like {describe_checkpoint(sd)}", path)
    mapped, dropped, unmapped = PPA_KEY_MAP.apply(sd)
    report = load_state_dict_into(model, mapped, strict=False, source=path)
    report.unexpected = sorted(set(report.unexpected) | set(unmapped))
    report.dropped = dropped
    return report
