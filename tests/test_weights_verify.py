"""Structural verification of weights files (salrank.weights.verify).

Synthetic state dicts follow the key names of the official full-size listings
(``shared/fixtures/models/*/keys-*.json``); their tensors are stride-0 expansions of one element, so
full-size shapes cost nothing on disk. The real tiny official checkpoints and the full key listings
are checked through the ``shared_fixtures`` fixture.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from salrank.errors import CheckpointError, InputError
from salrank.weights import get_entry, identify, identify_file, verify_file
from salrank.weights.verify import (
    SIGNATURES,
    describe_shapes,
    load_shapes,
    matching_entries,
    profile_problems,
    verify_shapes,
)


def _t(*shape: int) -> torch.Tensor:
    """A tensor of ``shape`` that stores one element."""
    return torch.zeros(1).expand(*shape) if shape else torch.zeros(())


# ---------------------------------------------------------------- synthetic builders (official key names)


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


# ---------------------------------------------------------------- identification


@pytest.mark.parametrize(
    "builder, kind",
    [
        (lambda: seqrank_state("original"), "seqrank-original"),
        (lambda: seqrank_state("correct"), "seqrank-correct"),
        (lambda: posesor_state(), "posesor-pai"),
        (lambda: posesor_state(id2=True), "posesor-id2"),
        (lambda: ppa_state(), "ppa"),
        (lambda: ppa_state(sor_head=False), "centermask2"),
        (lambda: swin_state(prefix="", head=True), "swin-imagenet"),
        (lambda: swin_state(prefix="backbone.", head=True), "swin-imagenet-d2"),
        (lambda: resnet_state(), "resnet-torchvision"),
        (lambda: efficientnet_state(), "efficientnet-lite"),
        (lambda: efficientnet_state(se=True), "efficientnet"),
    ],
)
def test_identify_synthetic(builder, kind):
    shapes = shapes_of(builder())
    sig = identify(shapes)
    assert sig is not None and sig.kind == kind
    # the kinds are mutually exclusive
    assert sum(not s.problems(shapes) for s in SIGNATURES) == 1


def test_identify_tiny_sizes_too():
    assert identify(shapes_of(seqrank_state("original", full=False))).kind == "seqrank-original"
    assert identify(shapes_of(posesor_state(full=False))).kind == "posesor-pai"
    assert identify(shapes_of(ppa_state(full=False))).kind == "ppa"


def test_unknown_state_dict():
    shapes = {"encoder.weight": (3, 3), "decoder.bias": (3,)}
    assert identify(shapes) is None
    assert "unrecognised" in describe_shapes(shapes) and "encoder" in describe_shapes(shapes)


# ---------------------------------------------------------------- verification against entries


@pytest.mark.parametrize(
    "name, builder",
    [
        ("seqrank-assr", lambda: seqrank_state("original")),
        ("seqrank-irsr", lambda: seqrank_state("original")),
        ("seqrank-assr-correct", lambda: seqrank_state("correct")),
        ("seqrank-irsr-correct", lambda: seqrank_state("correct")),
        ("posesor-assr", lambda: posesor_state()),
        ("posesor-irsr", lambda: posesor_state()),
        ("posesor-assr-nopose", lambda: posesor_state(id2=True)),
        ("ppa-assr", lambda: ppa_state()),
        ("swin-large-22k", lambda: swin_state(prefix="", head=True)),
        ("swin-large-22k", lambda: swin_state(prefix="backbone.", head=True)),
        ("resnet50-imagenet", lambda: resnet_state()),
        ("resnext50-32x4d-imagenet", lambda: resnet_state(conv2=(128, 4, 3, 3))),
        ("resnext101-32x8d-imagenet", lambda: resnet_state((3, 4, 23, 3), (256, 8, 3, 3))),
        ("resnet152-imagenet", lambda: resnet_state((3, 8, 36, 3))),
        ("efficientnet-lite0-imagenet", lambda: efficientnet_state(16, 320)),
        ("efficientnet-lite2-imagenet", lambda: efficientnet_state(21, 352)),
    ],
)
def test_right_file_passes(name, builder):
    entry = get_entry(name)
    shapes = shapes_of(builder())
    assert verify_shapes(shapes, entry).kind in entry.checkpoint_kinds
    assert name in matching_entries(shapes)


def test_original_refused_as_correct_with_explanation():
    with pytest.raises(CheckpointError) as err:
        verify_shapes(shapes_of(seqrank_state("original")), get_entry("seqrank-assr-correct"))
    msg = str(err.value)
    assert "SeqRank original (FrcPN neck, 6 SRM blocks) checkpoint, not seqrank-assr-correct" in msg
    assert "seqrank-assr, seqrank-irsr" in msg


def test_correct_refused_as_original():
    with pytest.raises(CheckpointError, match=r"SeqRank corrected \(FPN neck, 2 SRM blocks\) checkpoint, not seqrank-irsr"):
        verify_shapes(shapes_of(seqrank_state("correct")), get_entry("seqrank-irsr"))


def test_posesor_variants_refused_crosswise():
    with pytest.raises(CheckpointError, match="ID2 ablation.*not posesor-assr.*posesor-assr-nopose"):
        verify_shapes(shapes_of(posesor_state(id2=True)), get_entry("posesor-assr"))
    with pytest.raises(CheckpointError, match="PoseSOR \\(PAI with scene tokens.*not posesor-assr-nopose"):
        verify_shapes(shapes_of(posesor_state()), get_entry("posesor-assr-nopose"))


def test_other_architecture_refused():
    with pytest.raises(CheckpointError, match="this is a PPA .* checkpoint, not seqrank-assr"):
        verify_shapes(shapes_of(ppa_state()), get_entry("seqrank-assr"))
    with pytest.raises(CheckpointError, match="CenterMask2 detector without an SOR head.*not ppa-assr"):
        verify_shapes(shapes_of(ppa_state(sor_head=False)), get_entry("ppa-assr"))
    with pytest.raises(CheckpointError, match="with squeeze-excitation"):
        verify_shapes(shapes_of(efficientnet_state(se=True)), get_entry("efficientnet-lite0-imagenet"))


def test_wrong_block_count_named_by_nearest_kind():
    shapes = shapes_of(seqrank_state("correct", srm_blocks=4))
    assert identify(shapes) is None
    with pytest.raises(CheckpointError) as err:
        verify_shapes(shapes, get_entry("seqrank-assr-correct"))
    assert "close to SeqRank corrected" in str(err.value)
    assert "4 SRM blocks (gaze_shift.blocks.N), expected 2" in str(err.value)


def test_size_profile_refuses_small_or_other_variant():
    with pytest.raises(CheckpointError) as err:
        verify_shapes(shapes_of(seqrank_state("correct", full=False)), get_entry("seqrank-assr-correct"))
    assert "not the released full-size seqrank-assr-correct" in str(err.value)
    assert "expected (192, 3, 4, 4)" in str(err.value)
    with pytest.raises(CheckpointError, match="23 blocks in layer3, expected 6"):
        verify_shapes(shapes_of(resnet_state((3, 4, 23, 3), (256, 8, 3, 3))), get_entry("resnext50-32x4d-imagenet"))
    with pytest.raises(CheckpointError, match="21 MBConv blocks, expected 16"):
        verify_shapes(shapes_of(efficientnet_state(21, 352)), get_entry("efficientnet-lite0-imagenet"))
    with pytest.raises(CheckpointError, match="4 OSA blocks in stage 4, expected 2"):
        verify_shapes(shapes_of(ppa_state(stage4_blocks=4)), get_entry("ppa-assr"))
    assert profile_problems("swin-l-22k", shapes_of(swin_state(prefix="", head=True))) == []


# ---------------------------------------------------------------- files


def test_verify_file_roundtrip(tmp_path):
    path = save(tmp_path / "ckp.pth", seqrank_state("correct"))
    report = verify_file(path, get_entry("seqrank-assr-correct"))
    assert report.kind == "seqrank-correct"
    assert report.num_tensors == len(seqrank_state("correct"))
    assert len(report.sha256) == 64
    assert any("structure only" in n for n in report.notes)
    assert any("ASSR vs IRSR" in n for n in report.notes)


def test_bare_state_dict_and_training_checkpoint(tmp_path):
    bare = save(tmp_path / "bare.pth", posesor_state(), wrap=False)
    assert identify_file(bare)[0].kind == "posesor-pai"
    training = tmp_path / "model_final.pth"
    torch.save({"model": ppa_state(), "iteration": 53999, "trainer": {"iteration": 53999}}, training)
    assert verify_file(training, get_entry("ppa-assr")).kind == "ppa"


def test_sha256_enforced(tmp_path):
    path = save(tmp_path / "ckp.pth", seqrank_state("original"))
    entry = get_entry("seqrank-assr")
    from salrank.weights.verify import sha256_of

    digest = sha256_of(path)
    assert "SHA-256 matches" in verify_file(path, entry, sha256=digest).notes
    with pytest.raises(CheckpointError, match="SHA-256 mismatch.*SeqRank original"):
        verify_file(path, entry, sha256="0" * 64)


def test_sha256_prefix_of_torchvision_entry(tmp_path):
    path = save(tmp_path / "resnet50.pth", resnet_state(), wrap=False)
    with pytest.raises(CheckpointError, match="expected one starting with 0676ba61"):
        verify_file(path, get_entry("resnet50-imagenet"))


def test_results_file_is_explained(tmp_path):
    results = {
        f"COCO_val2014_00000000019{i}": {
            "image_name": f"COCO_val2014_00000000019{i}",
            "masks": [{"size": [480, 640], "counts": b"PPYo0"}],
            "bboxes": [[1.0, 2.0, 30.0, 40.0]],
            "scores": [0.9],
            "saliency": [0.7],
            "num": 1,
        }
        for i in range(3)
    }
    path = tmp_path / "seqrank_assr_swinL_results.pth"
    torch.save(results, path)
    with pytest.raises(CheckpointError) as err:
        verify_file(path, get_entry("seqrank-assr"))
    msg = str(err.value)
    assert "result* file" in msg and "3 images" in msg and "salrank eval" in msg


def test_posesor_results_with_numpy_are_explained_without_unpickling(tmp_path):
    # PoseSOR stores joints as numpy arrays: weights_only refuses the file, and salrank reads its
    # pickle opcodes (no code runs) to say what it is.
    results = {
        "img": {
            "image_name": "img",
            "masks": [{"size": [4, 4], "counts": b"04"}],
            "joints": [np.zeros((17, 3), dtype=np.float32)],
            "scores": [0.5],
            "saliency": [0.5],
            "num": 1,
        }
    }
    path = tmp_path / "assr_test_coco_format.pth"
    torch.save(results, path)
    with pytest.raises(CheckpointError, match=r"PoseSOR \*result\* file.*joints"):
        load_shapes(path)


def test_html_and_empty_and_garbage_files(tmp_path):
    html = tmp_path / "ckp.pth"
    html.write_text("<!DOCTYPE html><html><head><title>Google Drive - Virus scan warning</title></head></html>")
    with pytest.raises(CheckpointError, match="HTML page, not a checkpoint"):
        verify_file(html, get_entry("seqrank-assr"))
    empty = tmp_path / "empty.pth"
    empty.write_bytes(b"")
    with pytest.raises(CheckpointError, match="empty"):
        load_shapes(empty)
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"\x00\x01 not a torch file" * 10)
    with pytest.raises(CheckpointError, match="not a usable checkpoint"):
        load_shapes(garbage)
    with pytest.raises(InputError, match="file not found"):
        verify_file(tmp_path / "missing.pth", get_entry("seqrank-assr"))


# ---------------------------------------------------------------- the real official artefacts


@pytest.mark.fixtures
@pytest.mark.parametrize(
    "folder, kind, entries",
    [
        ("seqrank_correct", "seqrank-correct", ["seqrank-assr-correct", "seqrank-irsr-correct"]),
        ("seqrank_orig", "seqrank-original", ["seqrank-assr", "seqrank-irsr"]),
        ("posesor", "posesor-pai", ["posesor-assr", "posesor-irsr"]),
        ("ppa", "ppa", ["ppa-assr"]),
    ],
)
def test_official_tiny_checkpoints_and_full_key_listings(shared_fixtures, folder, kind, entries):
    """The official tiny checkpoints are recognised (and refused as the full-size release); the official
    full-size key listings pass the signature and the size profile of their entries."""
    sig, shapes = identify_file(shared_fixtures / "models" / folder / "checkpoint.pth")
    assert sig is not None and sig.kind == kind
    with pytest.raises(CheckpointError, match="not the released full-size"):
        verify_file(shared_fixtures / "models" / folder / "checkpoint.pth", get_entry(entries[0]))

    listing = json.loads((shared_fixtures / "models" / folder / f"keys-{folder}.json").read_text())
    full = {k: tuple(v) for k, v in listing["keys"].items()}
    assert identify(full).kind == kind
    assert sorted(matching_entries(full)) == sorted(entries)
    if folder == "posesor":
        # pai_id2.py only drops the scene-token LayerNorm of each PAI block
        id2 = {k: v for k, v in full.items() if ".scene_norm." not in k}
        assert len(full) - len(id2) == 6
        assert identify(id2).kind == "posesor-id2"
        assert matching_entries(id2) == ["posesor-assr-nopose"]
