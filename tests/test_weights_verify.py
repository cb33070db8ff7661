"""Structural verification of weights files (salrank.weights.verify).

Synthetic state dicts follow the key names of the official full-size listings
(``shared/fixtures/models/*/keys-*.json``); their tensors are stride-0 expansions of one element, so
full-size shapes cost nothing on disk. The real tiny official checkpoints and the full key listings
are checked through the ``shared_fixtures`` fixture.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from _state_builders import efficientnet_state, posesor_state, ppa_state, resnet_state, save, seqrank_state, shapes_of, swin_state

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
