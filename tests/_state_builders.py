"""Synthetic state dicts with the official models' key names, for the weights tests.

They follow the official full-size listings (``shared/fixtures/models/*/keys-*.json``); their tensors are
stride-0 expansions of one element, so full-size shapes cost nothing on disk.
"""

from __future__ import annotations

from pathlib import Path

import torch


def _t(*shape: int) -> torch.Tensor:
    """A tensor of ``shape`` that stores one element."""
    return torch.zeros(1).expand(*shape) if shape else torch.zeros(())




def swin_state(prefix: str = "backbone.", full: bool = True, head: bool = False) -> dict[str, torch.Tensor]:
    embed, depths, heads, window = (192, (2, 2, 18, 2), (6, 12, 24, 48), 12) if full else (32, (2, 2, 2, 2), (1, 2, 4, 8), 4)
    sd = {
        f"{prefix}patch_embed.proj.weight": _t(embed, 3, 4, 4),
        f"{prefix}patch_embed.proj.bias": _t(embed),
        f"{prefix}patch_embed.norm.weight": _t(embed),
    }
    for i, (depth, h) in enumerate(zip(depths, heads)):
        dim = embed * 2**i
        for j in range(depth):
            b = f"{prefix}layers.{i}.blocks.{j}."
            sd[b + "norm1.weight"] = _t(dim)
            sd[b + "attn.relative_position_bias_table"] = _t((2 * window - 1) ** 2, h)
            sd[b + "attn.relative_position_index"] = torch.zeros(1, dtype=torch.long).expand(window**2, window**2)
            sd[b + "attn.qkv.weight"] = _t(3 * dim, dim)
            sd[b + "mlp.fc1.weight"] = _t(4 * dim, dim)
        if i < 3:
            sd[f"{prefix}layers.{i}.downsample.reduction.weight"] = _t(2 * dim, 4 * dim)
    if head:
        sd[f"{prefix}norm.weight"] = _t(embed * 8)
        sd[f"{prefix}head.weight"] = _t(21841, embed * 8)
    else:
        for i in range(4):
            sd[f"{prefix}norm{i}.weight"] = _t(embed * 2**i)
    return sd


def seqrank_state(variant: str = "correct", full: bool = True, srm_blocks: int | None = None) -> dict[str, torch.Tensor]:
    c, q = (256, 100) if full else (32, 12)
    sd = swin_state(full=full)
    for i in range(4):
        sd[f"neck.lateral_conv.{i}.0.weight"] = _t(c, 8, 1, 1)
        sd[f"neck.lateral_conv.{i}.2.norm.weight"] = _t(c)
    for i in range(3):
        if variant == "correct":
            sd[f"neck.fpn_layers.{i}.scale.weight"] = _t(c, c, 3, 3)
            sd[f"neck.fpn_layers.{i}.conv.0.weight"] = _t(c, c, 1, 1)
        else:
            sd[f"neck.frcs.{i}.conv1.0.weight"] = _t(c, c, 1, 1)
            sd[f"neck.frcs.{i}.conv2.0.weight"] = _t(c, c, 1, 1)
        sd[f"instance_seg.roi_layers.{i}.grid_embedding"] = _t(1, c)
    sd["instance_seg.q"] = _t(1, q, c)
    sd["instance_seg.qpe"] = _t(1, q, c)
    sd["instance_seg.level_embed.weight"] = _t(3, c)
    for i in range(6):
        sd[f"instance_seg.lookByMultiQ_layers.{i}.linear1.0.weight"] = _t(c, c)
        sd[f"instance_seg.lookByMultiQ_layers.{i}.cross_attn.q_proj.weight"] = _t(c, c)
    sd["instance_seg.head.score_head.weight"] = _t(1, c)
    sd["gaze_shift.prev_emb"] = _t(c)
    n = srm_blocks if srm_blocks is not None else (2 if variant == "correct" else 6)
    for i in range(n):
        sd[f"gaze_shift.blocks.{i}.self_attn1.q_proj.weight"] = _t(c, c)
        sd[f"gaze_shift.blocks.{i}.softmax_head.weight"] = _t(1, c)
    sd["gaze_shift.head.0.weight"] = _t(c, c)
    sd["pe_layer.ape"] = _t(c, 25, 25)
    return sd


def posesor_state(id2: bool = False, full: bool = True) -> dict[str, torch.Tensor]:
    c, q = (256, 100) if full else (32, 12)
    sd = swin_state(full=full)
    for i in range(4):
        sd[f"neck.lateral_conv.{i}.0.weight"] = _t(c, 8, 1, 1)
    for i in range(3):
        sd[f"neck.fpn_layers.{i}.scale.weight"] = _t(c, c, 3, 3)
    sd["instance_seg.q"] = _t(1, q, c)
    sd["instance_seg.qpe"] = _t(1, q, c)
    for i in range(6):
        sd[f"instance_seg.lookByMultiQ_layers.{i}.cross_attn.q_proj.weight"] = _t(c, c)
    sd["actor_interaction.j"] = _t(1, 17, c)
    sd["actor_interaction.jpe"] = _t(1, 17, c)
    for i in range(3):
        b = f"actor_interaction.blocks.{i}."
        sd[b + "inner_joints_ia.cross_attn.q_proj.weight"] = _t(c, c)
        sd[b + "q_linear.weight"] = _t(c, c)
        sd[b + "sub_pose.0.weight"] = _t(68, 17)
        sd[b + "sub_pose_norm.weight"] = _t(c)
        if not id2:
            sd[b + "scene_norm.weight"] = _t(c)
        sd[b + "xi_sa.q_proj.weight"] = _t(c, c)
    sd["actor_interaction.head.query_emb.weight"] = _t(c, c)
    sd["pose_shift.bg_coord_rep"] = _t(1, 17, c)
    sd["pose_shift.to_directions.0.weight"] = _t(c, c)
    sd["pose_shift.head.rank_head.weight"] = _t(20, c)
    sd["pe_layer.ape"] = _t(c, 25, 25)
    return sd


def ppa_state(full: bool = True, sor_head: bool = True, stage4_blocks: int = 2) -> dict[str, torch.Tensor]:
    stem, conv, out, fpn = ((64, 64, 128), (128, 160, 192, 224), (256, 512, 768, 1024), 256) if full else (
        (16, 16, 32), (16, 24, 32, 40), (32, 64, 96, 128), 32)
    sd: dict[str, torch.Tensor] = {}
    for k, ch in enumerate(stem, 1):
        sd[f"backbone.bottom_up.stem.stem_{k}/conv.weight"] = _t(ch, 3 if k == 1 else stem[k - 2], 3, 3)
        sd[f"backbone.bottom_up.stem.stem_{k}/norm.running_mean"] = _t(ch)
    blocks = {2: 1, 3: 1, 4: stage4_blocks, 5: 2}
    in_ch = stem[-1]
    for s, nb in blocks.items():
        for b in range(1, nb + 1):
            name = f"backbone.bottom_up.stage{s}.OSA{s}_{b}"
            for layer in range(5):
                sd[f"{name}.layers.{layer}.OSA{s}_{b}_{layer}/conv.weight"] = _t(conv[s - 2], in_ch if layer == 0 else conv[s - 2], 3, 3)
            sd[f"{name}.concat.OSA{s}_{b}_concat/conv.weight"] = _t(out[s - 2], in_ch + 5 * conv[s - 2], 1, 1)
            sd[f"{name}.ese.fc.weight"] = _t(out[s - 2], out[s - 2], 1, 1)
            in_ch = out[s - 2]
    for lvl in (3, 4, 5):
        sd[f"backbone.fpn_lateral{lvl}.weight"] = _t(fpn, out[lvl - 2], 1, 1)
        sd[f"backbone.fpn_output{lvl}.weight"] = _t(fpn, fpn, 3, 3)
    sd["backbone.top_block.p6.weight"] = _t(fpn, fpn, 3, 3)
    sd["proposal_generator.fcos_head.cls_tower.0.weight"] = _t(fpn, fpn, 3, 3)
    sd["proposal_generator.fcos_head.cls_logits.weight"] = _t(1, fpn, 3, 3)
    sd["roi_heads.mask_head.mask_fcn1.weight"] = _t(fpn, fpn, 3, 3)
    sd["roi_heads.maskiou_head.maskiou_fc1.weight"] = _t(1024, 12544)
    if sor_head:
        d = 1024 if full else 64
        sd["roi_heads.sor_head.sor_fcn1.weight"] = _t(fpn, fpn + 5, 3, 3)
        sd["roi_heads.sor_head.sor.weight"] = _t(5, d)
        sd["roi_heads.sor_head.pos_conv.weight"] = _t(2, 2, 3, 3)
        for layer in range(4):
            sd[f"roi_heads.sor_head.transformer_encoder.layers.{layer}.linear1.weight"] = _t(4 * d, d)
    return sd


def resnet_state(blocks=(3, 4, 6, 3), conv2=(64, 64, 3, 3)) -> dict[str, torch.Tensor]:
    sd = {"conv1.weight": _t(64, 3, 7, 7), "bn1.running_mean": _t(64), "fc.weight": _t(1000, 2048)}
    for i, n in enumerate(blocks, 1):
        for j in range(n):
            sd[f"layer{i}.{j}.conv1.weight"] = _t(64, 64, 1, 1)
            sd[f"layer{i}.{j}.conv2.weight"] = _t(*conv2) if (i, j) == (1, 0) else _t(64, 64, 3, 3)
    return sd


def efficientnet_state(n_blocks: int = 16, head_in: int = 320, se: bool = False) -> dict[str, torch.Tensor]:
    sd = {"_conv_stem.weight": _t(32, 3, 3, 3), "_conv_head.weight": _t(1280, head_in, 1, 1), "_fc.weight": _t(1000, 1280)}
    for j in range(n_blocks):
        sd[f"_blocks.{j}._depthwise_conv.weight"] = _t(32, 1, 3, 3)
        if se:
            sd[f"_blocks.{j}._se_reduce.weight"] = _t(8, 32, 1, 1)
    return sd


def shapes_of(sd: dict[str, torch.Tensor]) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in sd.items()}


def save(path: Path, sd: dict[str, torch.Tensor], wrap: bool = True) -> Path:
    torch.save({"model": sd} if wrap else sd, path)
    return path
