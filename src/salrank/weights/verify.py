"""Checking that a weights file is what a zoo entry says it is.

The released checkpoints have no published checksums, so a downloaded or hand-copied file is checked
by its structure:

1. it loads with :func:`salrank.checkpoint.read_official_checkpoint` (``weights_only=True``);
2. its keys match a *signature*: key patterns that must be present, patterns that must be absent and
   counts of repeated blocks, derived from the official full-size key listings
   (``shared/fixtures/models/*/keys-*.json``) and the official module code. The signature names what
   the file is (e.g. "SeqRank original: FrcPN neck, 6 SRM blocks"), so a file of the wrong variant is
   refused with a message saying what it is;
3. it passes the entry's *size profile*: the shapes and block counts of the released full-size model
   (Swin-L, VoVNet-39-eSE, ...), so a small or retrained-at-another-size file is not taken for the
   released one.

A SHA-256 is checked as well when the entry has one or the user gives one. Result files
(``*_results.pth`` / ``*_coco_format.pth``: per-image predictions) are recognised and explained.

Signatures work on ``{key: shape}`` so they can be tested on key listings without building tensors.
"""

from __future__ import annotations

import hashlib
import os
import pickletools
import re
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from salrank.errors import CheckpointError, InputError

if TYPE_CHECKING:
    from salrank.weights.zoo import ZooEntry

Shapes = Mapping[str, tuple[int, ...]]


@dataclass(frozen=True)
class CountCheck:
    """The number of distinct values of the first group of ``pattern`` over all keys must be ``expected``."""

    pattern: str
    expected: int
    what: str

    def count(self, shapes: Shapes, prefix: str = "") -> int:
        rx = re.compile(self.pattern.format(p=re.escape(prefix)))
        return len({m.group(1) for k in shapes for m in [rx.match(k)] if m})


@dataclass(frozen=True)
class ShapeCheck:
    """Key ``key`` must exist with shape ``shape``."""

    key: str
    shape: tuple[int, ...]
    what: str


@dataclass(frozen=True)
class Signature:
    """What the keys of one kind of checkpoint look like.

    Attributes:
        kind: identifier, e.g. ``"seqrank-original"``.
        architecture: ``seqrank``, ``posesor``, ``ppa``, ``swin``, ...
        variant: the variant within the architecture.
        label: how to call it in a message.
        required: regexes (``re.match`` on each key); each must match at least one key.
        forbidden: regexes that must match no key.
        counts: block counts that define the variant.
        prefix: the key prefix of the backbone inside the file (used by size profiles).
    """

    kind: str
    architecture: str
    variant: str
    label: str
    required: tuple[str, ...]
    forbidden: tuple[str, ...] = ()
    counts: tuple[CountCheck, ...] = ()
    prefix: str = ""

    def problems(self, shapes: Shapes) -> list[str]:
        """Why ``shapes`` does not have this signature (empty when it does)."""
        out = []
        keys = list(shapes)
        for pattern in self.required:
            rx = re.compile(pattern)
            if not any(rx.match(k) for k in keys):
                out.append(f"no key matches {pattern!r}")
        for pattern in self.forbidden:
            rx = re.compile(pattern)
            hit = next((k for k in keys if rx.match(k)), None)
            if hit is not None:
                out.append(f"has {hit!r}, which a {self.label} checkpoint does not have")
        for check in self.counts:
            n = check.count(shapes, self.prefix)
            if n != check.expected:
                out.append(f"{n} {check.what}, expected {check.expected}")
        return out

    def required_hits(self, shapes: Shapes) -> int:
        """How many of the required patterns match (used to name the nearest kind)."""
        return sum(any(re.match(p, k) for k in shapes) for p in self.required)


# ----------------------------------------------------------------------------------------------------
# Signature table. Derived from the official full-size key listings and the official modules:
# SeqRank `seqrank/neck/{fpn,frcpn}.py` + `SequentialRankingModule` (gaze_shift.blocks.N),
# PoseSOR `network/modules/pai.py` vs `pai_id2.py` (ID2 drops the scene tokens: no
# `actor_interaction.blocks.N.scene_norm.*`; every other key is the same), PPA (CenterMask2 VoVNet
# `backbone.bottom_up.*`, FCOS `proposal_generator.fcos_head.*`, `roi_heads.{mask,maskiou,sor}_head.*`).
# The kinds are mutually exclusive: at most one matches any file.
# ----------------------------------------------------------------------------------------------------

_SEQRANK_COMMON = (r"neck\.lateral_conv\.\d+\.", r"instance_seg\.lookByMultiQ_layers\.\d+\.", r"gaze_shift\.blocks\.\d+\.")
_POSESOR_COMMON = (r"actor_interaction\.blocks\.\d+\.", r"actor_interaction\.j$", r"pose_shift\.", r"neck\.lateral_conv\.\d+\.")
_NOT_POSESOR = (r"actor_interaction\.", r"pose_shift\.")

SIGNATURES: tuple[Signature, ...] = (
    Signature(
        kind="seqrank-original",
        architecture="seqrank",
        variant="original",
        label="SeqRank original (FrcPN neck, 6 SRM blocks)",
        required=(*_SEQRANK_COMMON, r"neck\.frcs\.\d+\."),
        forbidden=(r"neck\.fpn_layers\.", *_NOT_POSESOR),
        counts=(CountCheck(r"gaze_shift\.blocks\.(\d+)\.", 6, "SRM blocks (gaze_shift.blocks.N)"),),
        prefix="backbone.",
    ),
    Signature(
        kind="seqrank-correct",
        architecture="seqrank",
        variant="correct",
        label="SeqRank corrected (FPN neck, 2 SRM blocks)",
        required=(*_SEQRANK_COMMON, r"neck\.fpn_layers\.\d+\."),
        forbidden=(r"neck\.frcs\.", *_NOT_POSESOR),
        counts=(CountCheck(r"gaze_shift\.blocks\.(\d+)\.", 2, "SRM blocks (gaze_shift.blocks.N)"),),
        prefix="backbone.",
    ),
    Signature(
        kind="posesor-pai",
        architecture="posesor",
        variant="pai",
        label="PoseSOR (PAI with scene tokens + PDR)",
        required=(*_POSESOR_COMMON, r"actor_interaction\.blocks\.\d+\.scene_norm\."),
        forbidden=(r"gaze_shift\.",),
        prefix="backbone.",
    ),
    Signature(
        kind="posesor-id2",
        architecture="posesor",
        variant="id2",
        label="PoseSOR ID2 ablation ('w/o pose knowledge': PAI without scene tokens)",
        required=_POSESOR_COMMON,
        forbidden=(r"gaze_shift\.", r"actor_interaction\.blocks\.\d+\.scene_norm\."),
        prefix="backbone.",
    ),
    Signature(
        kind="ppa",
        architecture="ppa",
        variant="centermask-vovnet",
        label="PPA (CenterMask2 VoVNet + FCOS + SOR head)",
        required=(
            r"backbone\.bottom_up\.stem\.",
            r"backbone\.bottom_up\.stage\d\.OSA\d_\d+\.",
            r"backbone\.fpn_lateral\d\.",
            r"proposal_generator\.fcos_head\.",
            r"roi_heads\.mask_head\.",
            r"roi_heads\.sor_head\.",
        ),
    ),
    Signature(
        kind="centermask2",
        architecture="ppa",
        variant="detector-only",
        label="CenterMask2 detector without an SOR head (e.g. PPA's initial weights "
        "centermask2-V-39-eSE-FPN-ms-3x.pth)",
        required=(r"backbone\.bottom_up\.stem\.", r"proposal_generator\.fcos_head\.", r"roi_heads\.mask_head\."),
        forbidden=(r"roi_heads\.sor_head\.",),
    ),
    Signature(
        kind="swin-imagenet",
        architecture="swin",
        variant="classification",
        label="Swin Transformer ImageNet classification weights (Microsoft release format)",
        required=(r"patch_embed\.proj\.weight$", r"layers\.\d+\.blocks\.\d+\.attn\.qkv\.weight$"),
        forbidden=(r"backbone\.",),
    ),
    Signature(
        kind="swin-imagenet-d2",
        architecture="swin",
        variant="classification-d2",
        label="Swin Transformer ImageNet weights converted for detectron2 (keys prefixed 'backbone.', "
        "as made by SeqRank's pretrained/convert_backbone.py)",
        required=(r"backbone\.patch_embed\.proj\.weight$", r"backbone\.layers\.\d+\.blocks\.\d+\.attn\.qkv\.weight$"),
        forbidden=(r"(?!backbone\.)",),
        prefix="backbone.",
    ),
    Signature(
        kind="resnet-torchvision",
        architecture="resnet",
        variant="torchvision",
        label="ResNet/ResNeXt ImageNet weights (torchvision format)",
        required=(r"conv1\.weight$", r"bn1\.running_mean$", r"layer1\.0\.conv1\.weight$", r"layer4\.\d+\."),
        forbidden=(r"backbone\.", r"module\."),
    ),
    Signature(
        kind="efficientnet-lite",
        architecture="efficientnet-lite",
        variant="imagenet",
        label="EfficientNet-Lite ImageNet weights (efficientnet_pytorch key names, no squeeze-excitation)",
        required=(r"_conv_stem\.weight$", r"_blocks\.\d+\._depthwise_conv\.weight$", r"_conv_head\.weight$"),
        forbidden=(r"_blocks\.\d+\._se_",),
    ),
    Signature(
        kind="efficientnet",
        architecture="efficientnet-lite",
        variant="with-se",
        label="EfficientNet-B* weights (with squeeze-excitation blocks, not a Lite model)",
        required=(r"_conv_stem\.weight$", r"_blocks\.\d+\._depthwise_conv\.weight$", r"_blocks\.\d+\._se_reduce\."),
    ),
)

SIGNATURE_BY_KIND = {s.kind: s for s in SIGNATURES}


# ----------------------------------------------------------------------------------------------------
# Size profiles: what the released full-size files have (from the official key listings and configs).
# Keys are formatted with the signature's prefix ``{p}`` (``"backbone."`` inside a detector).
# ----------------------------------------------------------------------------------------------------

_SWIN_L = (
    ShapeCheck("{p}patch_embed.proj.weight", (192, 3, 4, 4), "Swin-L patch embedding (embed dim 192)"),
    ShapeCheck("{p}layers.0.blocks.0.attn.relative_position_bias_table", (529, 6), "window 12, 6 heads in stage 1"),
    ShapeCheck("{p}layers.3.blocks.0.attn.relative_position_bias_table", (529, 48), "window 12, 48 heads in stage 4"),
    CountCheck(r"{p}layers\.0\.blocks\.(\d+)\.", 2, "Swin blocks in stage 1"),
    CountCheck(r"{p}layers\.1\.blocks\.(\d+)\.", 2, "Swin blocks in stage 2"),
    CountCheck(r"{p}layers\.2\.blocks\.(\d+)\.", 18, "Swin blocks in stage 3"),
    CountCheck(r"{p}layers\.3\.blocks\.(\d+)\.", 2, "Swin blocks in stage 4"),
)
_SOR_QUERIES = (
    ShapeCheck("instance_seg.q", (1, 100, 256), "100 object queries of width 256"),
    ShapeCheck("pe_layer.ape", (256, 25, 25), "learnable 25x25 position embedding"),
    CountCheck(r"instance_seg\.lookByMultiQ_layers\.(\d+)\.", 6, "decoder blocks (instance_seg.lookByMultiQ_layers.N)"),
)
_VOVNET_39_ESE = (
    ShapeCheck("backbone.bottom_up.stem.stem_1/conv.weight", (64, 3, 3, 3), "VoVNet stem width 64"),
    ShapeCheck(
        "backbone.bottom_up.stage2.OSA2_1.layers.0.OSA2_1_0/conv.weight", (128, 128, 3, 3), "V-39 stage-2 width 128"
    ),
    ShapeCheck(
        "backbone.bottom_up.stage5.OSA5_2.concat.OSA5_2_concat/conv.weight",
        (1024, 2144, 1, 1),
        "V-39 stage-5 output 1024",
    ),
    CountCheck(r"backbone\.bottom_up\.stage2\.OSA2_(\d+)\.", 1, "OSA blocks in stage 2"),
    CountCheck(r"backbone\.bottom_up\.stage3\.OSA3_(\d+)\.", 1, "OSA blocks in stage 3"),
    CountCheck(r"backbone\.bottom_up\.stage4\.OSA4_(\d+)\.", 2, "OSA blocks in stage 4"),
    CountCheck(r"backbone\.bottom_up\.stage5\.OSA5_(\d+)\.", 2, "OSA blocks in stage 5"),
    CountCheck(r"backbone\.bottom_up\.stage2\.OSA2_1\.layers\.(\d+)\.", 5, "conv layers per OSA block"),
    ShapeCheck("backbone.bottom_up.stage5.OSA5_2.ese.fc.weight", (1024, 1024, 1, 1), "eSE attention of stage 5"),
)


def _resnet(blocks: tuple[int, int, int, int], conv2: tuple[int, ...], name: str) -> tuple[object, ...]:
    return (
        *(CountCheck(rf"layer{i + 1}\.(\d+)\.", n, f"blocks in layer{i + 1}") for i, n in enumerate(blocks)),
        ShapeCheck("layer1.0.conv2.weight", conv2, f"{name} first 3x3 conv (width/groups)"),
        ShapeCheck("fc.weight", (1000, 2048), "ImageNet-1k classifier"),
    )


SIZE_PROFILES: dict[str, tuple[object, ...]] = {
    "seqrank-swinl-original": (*_SWIN_L, *_SOR_QUERIES),
    "seqrank-swinl-correct": (*_SWIN_L, *_SOR_QUERIES),
    "posesor-swinl": (
        *_SWIN_L,
        ShapeCheck("instance_seg.q", (1, 100, 256), "100 object queries of width 256"),
        ShapeCheck("actor_interaction.j", (1, 17, 256), "17 joint queries"),
        ShapeCheck("pose_shift.head.rank_head.weight", (20, 256), "20 rank levels"),
        CountCheck(r"actor_interaction\.blocks\.(\d+)\.", 3, "PAI blocks"),
        CountCheck(r"instance_seg\.lookByMultiQ_layers\.(\d+)\.", 6, "decoder blocks"),
    ),
    "ppa-v39-ese": (
        *_VOVNET_39_ESE,
        ShapeCheck("backbone.fpn_output3.weight", (256, 256, 3, 3), "FPN width 256"),
        ShapeCheck("roi_heads.sor_head.sor.weight", (5, 1024), "5 rank classes from a 1024-wide SOR feature"),
        CountCheck(r"roi_heads\.sor_head\.transformer_encoder\.layers\.(\d+)\.", 4, "SOR transformer layers"),
    ),
    "swin-l-22k": (
        *_SWIN_L,
        ShapeCheck("{p}norm.weight", (1536,), "final norm of width 1536"),
        ShapeCheck("{p}head.weight", (21841, 1536), "ImageNet-22k classifier (21841 classes)"),
    ),
    "resnet50": _resnet((3, 4, 6, 3), (64, 64, 3, 3), "ResNet-50"),
    "resnext50-32x4d": _resnet((3, 4, 6, 3), (128, 4, 3, 3), "ResNeXt-50 32x4d"),
    "resnext101-32x8d": _resnet((3, 4, 23, 3), (256, 8, 3, 3), "ResNeXt-101 32x8d"),
    "resnet152": _resnet((3, 8, 36, 3), (64, 64, 3, 3), "ResNet-152"),
    "efficientnet-lite0": (
        CountCheck(r"_blocks\.(\d+)\.", 16, "MBConv blocks"),
        ShapeCheck("_conv_stem.weight", (32, 3, 3, 3), "stem"),
        ShapeCheck("_conv_head.weight", (1280, 320, 1, 1), "Lite0 head (320 -> 1280)"),
        ShapeCheck("_fc.weight", (1000, 1280), "ImageNet-1k classifier"),
    ),
    "efficientnet-lite2": (
        CountCheck(r"_blocks\.(\d+)\.", 21, "MBConv blocks"),
        ShapeCheck("_conv_stem.weight", (32, 3, 3, 3), "stem"),
        ShapeCheck("_conv_head.weight", (1280, 352, 1, 1), "Lite2 head (352 -> 1280)"),
        ShapeCheck("_fc.weight", (1000, 1280), "ImageNet-1k classifier"),
    ),
}


def identify(shapes: Shapes) -> Signature | None:
    """The signature ``shapes`` (``{key: shape}``) has, or ``None``."""
    for sig in SIGNATURES:
        if not sig.problems(shapes):
            return sig
    return None


def nearest_signature(shapes: Shapes) -> tuple[Signature, list[str]] | None:
    """The signature that matches the most required patterns, with its problems (for messages)."""
    best: tuple[int, Signature] | None = None
    for sig in SIGNATURES:
        hits = sig.required_hits(shapes)
        if hits and (best is None or hits > best[0]):
            best = (hits, sig)
    if best is None:
        return None
    return best[1], best[1].problems(shapes)


def profile_problems(profile: str, shapes: Shapes, prefix: str = "") -> list[str]:
    """Where ``shapes`` differs from the full-size profile ``profile``."""
    if profile not in SIZE_PROFILES:
        raise KeyError(f"unknown size profile {profile!r}")
    out = []
    for check in SIZE_PROFILES[profile]:
        if isinstance(check, ShapeCheck):
            key = check.key.format(p=prefix)
            got = shapes.get(key)
            if got is None:
                out.append(f"missing {key} ({check.what})")
            elif tuple(got) != tuple(check.shape):
                out.append(f"{key} has shape {tuple(got)}, expected {check.shape} ({check.what})")
        elif isinstance(check, CountCheck):
            n = check.count(shapes, prefix)
            if n != check.expected:
                out.append(f"{n} {check.what}, expected {check.expected}")
    return out


def matching_entries(shapes: Shapes) -> list[str]:
    """Names of the zoo entries whose signature and full-size profile ``shapes`` passes."""
    from salrank.weights.zoo import list_entries

    sig = identify(shapes)
    if sig is None:
        return []
    return [
        e.name
        for e in list_entries()
        if sig.kind in e.checkpoint_kinds
        and (e.size_profile is None or not profile_problems(e.size_profile, shapes, sig.prefix))
    ]


def describe_shapes(shapes: Shapes) -> str:
    """A short description of what a state dict is, for messages about unrecognised files."""
    sig = identify(shapes)
    if sig is not None:
        fits = matching_entries(shapes)
        return sig.label + (f", matching the zoo entr{'y' if len(fits) == 1 else 'ies'} {', '.join(fits)}" if fits else "")
    tops: dict[str, int] = {}
    for k in shapes:
        top = k.split(".", 1)[0]
        tops[top] = tops.get(top, 0) + 1
    parts = ", ".join(f"{k}.* ({n})" for k, n in sorted(tops.items(), key=lambda kv: -kv[1])[:8])
    return f"an unrecognised state dict with {len(shapes)} tensors; top-level names: {parts}"


# ----------------------------------------------------------------------------------------------------
# Files
# ----------------------------------------------------------------------------------------------------

_RESULT_FIELDS = {"image_name", "masks", "saliency", "scores"}


def sha256_of(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    """The SHA-256 (hex) of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while True:
            block = fh.read(chunk)
            if not block:
                break
            h.update(block)
    return h.hexdigest()


def looks_like_html(head: bytes) -> bool:
    """Whether the first bytes of a file are an HTML page (e.g. a saved Google Drive error page)."""
    text = head.lstrip()[:512].lower()
    return text.startswith((b"<!doctype html", b"<html", b"<head", b"<body")) or (
        text.startswith(b"<") and b"<html" in text
    )


def _pickle_strings(path: Path, limit_ops: int = 2_000_000) -> set[str]:
    """Short strings (dict keys, class names) in a torch/pickle file, read without unpickling anything."""
    found: set[str] = set()

    def scan(data: bytes) -> None:
        try:
            for i, (op, arg, _pos) in enumerate(pickletools.genops(data)):
                if i > limit_ops:
                    break
                if isinstance(arg, str) and len(arg) <= 64:
                    found.add(arg)
                if op.name in ("GLOBAL", "INST") and isinstance(arg, str):
                    found.update(arg.split(" "))
        except Exception:  # a truncated or odd stream: keep what was read
            pass

    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as zf:
                names = [n for n in zf.namelist() if n.endswith("data.pkl")]
                if names:
                    scan(zf.read(names[0]))
        else:
            with open(path, "rb") as fh:
                scan(fh.read(64 << 20))
    except (OSError, zipfile.BadZipFile):
        pass
    return found


def _result_file_message(path: Path, count: int | None, pose: bool) -> str:
    what = "PoseSOR" if pose else "SeqRank/PoseSOR"
    n = f" for {count} images" if count is not None else ""
    return (
        f"this is a {what} *result* file (per-image predictions{n}: masks, scores, saliency"
        f"{', joints' if pose else ''}), like the released *_results.pth / *_coco_format.pth files, "
        "not model weights. Evaluate it with 'salrank eval --pred FILE'; for weights use the checkpoint "
        "('ckp.pth' / 'checkpoint.pth') links of the model zoo ('salrank weights info NAME')."
    )


def _explain_unloadable(path: Path, error: Exception) -> CheckpointError:
    """A readable error for a file that ``read_official_checkpoint`` refused."""
    strings = _pickle_strings(path)
    if {"image_name", "masks", "saliency"} <= strings:
        return CheckpointError(_result_file_message(path, None, "joints" in strings), path)
    msg = getattr(error, "message", str(error))
    return CheckpointError(f"not a usable checkpoint: {msg}", path)


@dataclass
class VerifyReport:
    """What :func:`verify_file` found."""

    path: Path
    kind: str
    label: str
    num_tensors: int
    sha256: str | None = None
    notes: list[str] = field(default_factory=list)


def load_shapes(path: str | os.PathLike[str]) -> dict[str, tuple[int, ...]]:
    """``{key: shape}`` of a checkpoint, read with ``weights_only=True``; explains result files and HTML."""
    from salrank.checkpoint import read_official_checkpoint
    from salrank.utils.io import safe_torch_load

    p = Path(path)
    if not p.is_file():
        raise InputError("file not found", p)
    with open(p, "rb") as fh:
        head = fh.read(4096)
    if not head:
        raise CheckpointError("the file is empty", p)
    if looks_like_html(head):
        raise CheckpointError(
            "this is an HTML page, not a checkpoint (typically a Google Drive confirmation, quota or "
            "sign-in page saved instead of the file). Download the file again from the link.",
            p,
        )
    try:
        state = read_official_checkpoint(p)
    except CheckpointError as exc:
        if "prediction/result file" in exc.message:
            data = safe_torch_load(p)
            first = next(iter(data.values()))
            pose = isinstance(first, Mapping) and "joints" in first
            raise CheckpointError(_result_file_message(p, len(data), pose), p) from None
        raise _explain_unloadable(p, exc) from None
    except InputError as exc:
        raise _explain_unloadable(p, exc) from None
    return {k: tuple(v.shape) for k, v in state.items()}


def verify_shapes(shapes: Shapes, entry: ZooEntry, source: str | os.PathLike[str] | None = None) -> Signature:
    """Check ``shapes`` against ``entry``'s signature(s) and size profile; the matching signature."""
    from salrank.weights.zoo import entries_with_kind

    expected = " or ".join(SIGNATURE_BY_KIND[k].label for k in entry.checkpoint_kinds) or entry.architecture
    sig = identify(shapes)
    if sig is None:
        near = nearest_signature(shapes)
        if near is not None:
            near_sig, problems = near
            detail = f"its keys are close to {near_sig.label} but: " + "; ".join(problems[:4])
        else:
            detail = f"it is {describe_shapes(shapes)}"
        raise CheckpointError(f"this does not look like {expected} (needed for {entry.name}): {detail}", source)
    if sig.kind not in entry.checkpoint_kinds:
        others = [e.name for e in entries_with_kind(sig.kind)]
        hint = f" It fits the zoo entr{'y' if len(others) == 1 else 'ies'} {', '.join(others)}." if others else ""
        raise CheckpointError(f"this is a {sig.label} checkpoint, not {entry.name} ({expected}).{hint}", source)
    if entry.size_profile:
        problems = profile_problems(entry.size_profile, shapes, sig.prefix)
        if problems:
            raise CheckpointError(
                f"this is a {sig.label} checkpoint, but not the released full-size {entry.name}: "
                + "; ".join(problems[:5])
                + (f" (+{len(problems) - 5} more)" if len(problems) > 5 else ""),
                source,
            )
    return sig


def _what_it_is(path: Path, digest: str | None) -> str:
    """`` (it is ...)`` for a file that failed a checksum: the zoo entry with that hash, or its structure."""
    from salrank.weights.zoo import list_entries

    for other in list_entries():
        if digest and (other.sha256 == digest or (other.sha256_prefix and digest.startswith(other.sha256_prefix))):
            return f" (this is the file of {other.name})"
    try:
        shapes = load_shapes(path)
    except InputError as exc:
        return f" ({exc.message})"
    return f" (it is {describe_shapes(shapes)})"


def verify_file(
    path: str | os.PathLike[str],
    entry: ZooEntry,
    *,
    sha256: str | None = None,
    compute_sha256: bool = True,
) -> VerifyReport:
    """Check that ``path`` is the weights file of ``entry``; raise :class:`CheckpointError` if it is not.

    Args:
        path: the file.
        entry: the zoo entry it should be.
        sha256: a checksum to enforce (overrides the entry's).
        compute_sha256: hash the file even when there is nothing to compare with (for the report).
    """
    p = Path(path)
    if not p.is_file():
        raise InputError("file not found", p)
    expected_sha = (sha256 or entry.sha256 or "").lower() or None
    digest = None
    if expected_sha or entry.sha256_prefix or compute_sha256:
        digest = sha256_of(p)
    if expected_sha and digest != expected_sha:
        raise CheckpointError(
            f"SHA-256 mismatch for {entry.name}: file has {digest}, expected {expected_sha}{_what_it_is(p, digest)}", p
        )
    if not expected_sha and entry.sha256_prefix and digest and not digest.startswith(entry.sha256_prefix):
        raise CheckpointError(
            f"SHA-256 mismatch for {entry.name}: file has {digest}, expected one starting with "
            f"{entry.sha256_prefix}{_what_it_is(p, digest)}",
            p,
        )
    shapes = load_shapes(p)
    sig = verify_shapes(shapes, entry, p)
    notes = []
    if expected_sha:
        notes.append("SHA-256 matches")
    elif entry.sha256_prefix:
        notes.append(f"SHA-256 starts with the published prefix {entry.sha256_prefix}")
    else:
        notes.append("no published checksum: checked by structure only")
        if entry.dataset in ("assr", "irsr"):
            notes.append("the training set (ASSR vs IRSR) cannot be told from the keys")
    return VerifyReport(path=p, kind=sig.kind, label=sig.label, num_tensors=len(shapes), sha256=digest, notes=notes)


def identify_file(path: str | os.PathLike[str]) -> tuple[Signature | None, dict[str, tuple[int, ...]]]:
    """The signature of a checkpoint file (or ``None``) and its ``{key: shape}``."""
    shapes = load_shapes(path)
    return identify(shapes), shapes
