"""Typed configuration of SeqRank, and reading/writing the official detectron2 yaml configs.

:class:`SeqRankConfig` holds every number that defines a SeqRank model, grouped like the official
config (``MODEL.BACKBONE``/``SWIN``, ``NECK``, ``COMMON``, ``SIS_HEAD`` = the Fovea Module,
``GAZE_SHIFT_HEAD`` = the Sequential Ranking Module, ``PIXEL_MEAN``/``STD``, ``INPUT.FT_SIZE_*``),
plus what the official code hard-codes (the 0.001 stop thresholds of the read-out loop) and the
options that improve on the official behaviour, all off by default.

* :func:`seqrank_swinL_config` gives the two released models (``"correct"``: FPN neck, 2 SRM blocks;
  ``"original"``: FrcPN neck, 6 SRM blocks).
* :func:`seqrank_config_from_official_yaml` reads an official ``config.yaml`` (a full ``cfg.dump()`` such
  as ``assets/seqrank_results/*/config.yaml``, or ``configs/*.yaml`` with ``_BASE_``);
  :func:`seqrank_config_to_official_yaml` writes the official keys back.
* :func:`build_backbone` is the small backbone factory: Swin (any size), the official ResNet/ResNeXt
  configs, or EfficientNet-Lite (for the light ``seqrank-lite`` models).
"""

from __future__ import annotations

import ast
import os
from dataclasses import dataclass, field, replace
from typing import Any

import yaml
from torch import Tensor, nn

from salrank.config import (
    cfg_get,
    config_from_dict,
    config_to_dict,
    read_official_config,
)
from salrank.errors import InputError
from salrank.modeling.backbones import ResNetConfig, SwinConfig
from salrank.modeling.backbones import build_backbone as build_shared_backbone
from salrank.modeling.backbones.resnet import OFFICIAL_NAMES as RESNET_OFFICIAL_NAMES

__all__ = [
    "BACKBONE_KINDS",
    "SEQRANK_PRESETS",
    "BackboneConfig",
    "EfficientNetLiteBackbone",
    "FoveaConfig",
    "InputConfig",
    "RankingConfig",
    "ReadoutConfig",
    "SeqRankConfig",
    "TransformerConfig",
    "build_backbone",
    "seqrank_config_from_official_yaml",
    "seqrank_config_to_official_yaml",
    "seqrank_preset",
    "seqrank_swinL_config",
    "seqrank_tiny_config",
]

BACKBONE_KINDS = ("swin", "resnet", "efficientnet_lite")
NECKS = ("FPN", "FrcPN")
POSITION_ENCODINGS = ("APE", "SINE", "RANDOM")
SRM_GATES = ("official", "softmax", "sigmoid")
FEATURE_NAMES = ("res2", "res3", "res4", "res5")

# detectron2's own defaults for keys a non-dump yaml may leave out (a dump always has them)
_D2_PIXEL_MEAN = (103.53, 116.28, 123.675)
_D2_PIXEL_STD = (1.0, 1.0, 1.0)


# --------------------------------------------------------------------------------------------------
# Backbone


@dataclass
class BackboneConfig:
    """Which backbone to build, with its own config.

    ``kind`` selects one of ``swin`` (:class:`~salrank.modeling.backbones.SwinConfig`, the D2/Mask2Former
    Swin with per-output LayerNorms), ``resnet`` (:class:`~salrank.modeling.backbones.ResNetConfig`,
    SeqRank's ``ResNeXt50``/``ResNeXt101``/``ResNet152``) or ``efficientnet_lite`` (variant name,
    ``"lite0"`` .. ``"lite4"``). Only the selected field is used.
    """

    kind: str = "swin"
    swin: SwinConfig | None = field(default_factory=SwinConfig.large)
    resnet: ResNetConfig | None = None
    efficientnet_lite: str | None = None
    """EfficientNet-Lite variant (``"lite0"`` .. ``"lite4"``)."""

    def __post_init__(self) -> None:
        if self.kind not in BACKBONE_KINDS:
            raise InputError(f"unknown backbone kind {self.kind!r}; choose from {', '.join(BACKBONE_KINDS)}")
        if self.kind == "swin" and self.swin is None:
            self.swin = SwinConfig.large()
        if self.kind == "resnet" and self.resnet is None:
            self.resnet = ResNetConfig.resnext50_32x4d()
        if self.kind == "efficientnet_lite" and self.efficientnet_lite is None:
            self.efficientnet_lite = "lite0"
        if self.kind != "swin":
            self.swin = None
        if self.kind != "resnet":
            self.resnet = None
        if self.kind != "efficientnet_lite":
            self.efficientnet_lite = None

    @classmethod
    def swin_large(cls) -> BackboneConfig:
        return cls(kind="swin", swin=SwinConfig.large())

    @classmethod
    def resnet_official(cls, name: str) -> BackboneConfig:
        """SeqRank's ResNet backbones by their official ``MODEL.BACKBONE.NAME``."""
        if name not in RESNET_OFFICIAL_NAMES:
            raise InputError(f"unknown official ResNet backbone {name!r}; known: {', '.join(RESNET_OFFICIAL_NAMES)}")
        depth, groups, width = RESNET_OFFICIAL_NAMES[name]
        return cls(kind="resnet", swin=None, resnet=ResNetConfig(depth=depth, groups=groups, width_per_group=width))

    @classmethod
    def efficientnet(cls, variant: str = "lite0") -> BackboneConfig:
        return cls(kind="efficientnet_lite", swin=None, efficientnet_lite=variant)

    @property
    def official_name(self) -> str | None:
        """The official ``MODEL.BACKBONE.NAME`` of this backbone (``None`` if the official code has none)."""
        if self.kind == "swin":
            return "D2SwinTransformer"
        if self.kind == "resnet":
            assert self.resnet is not None
            key = (self.resnet.depth, self.resnet.groups, self.resnet.width_per_group)
            for name, spec in RESNET_OFFICIAL_NAMES.items():
                if spec == key:
                    return name
        return None


class EfficientNetLiteBackbone(nn.Module):
    """EfficientNet-Lite as a SeqRank backbone: ``forward(images) -> {"res2": ..., "res5": ...}``.

    A thin adapter around :class:`~salrank.modeling.backbones.efficientnet_lite.EfficientNetLite`
    (without its classifier); the wrapped network is ``self.body``, so its ImageNet weights load into
    ``backbone.body`` with :func:`~salrank.modeling.backbones.efficientnet_lite.load_efficientnet_lite_weights`.
    """

    def __init__(self, variant: str = "lite0", out_features: tuple[str, ...] = FEATURE_NAMES) -> None:
        super().__init__()
        from salrank.modeling.backbones.efficientnet_lite import EfficientNetLite

        self.body = EfficientNetLite(variant, num_classes=0)
        self.out_features = tuple(out_features)

    @property
    def out_channels(self) -> dict[str, int]:
        return {k: c for k, c in self.body.out_channels.items() if k in self.out_features}

    @property
    def out_strides(self) -> dict[str, int]:
        return {k: s for k, s in self.body.out_strides.items() if k in self.out_features}

    @property
    def size_divisibility(self) -> int:
        return self.body.size_divisibility

    def forward(self, images: Tensor) -> dict[str, Tensor]:
        return self.body.forward_features(images, self.out_features)


def build_backbone(config: BackboneConfig, out_features: tuple[str, ...] = FEATURE_NAMES) -> nn.Module:
    """The backbone module of a :class:`BackboneConfig`; it exposes ``out_channels`` / ``out_strides``."""
    if config.kind == "swin":
        assert config.swin is not None
        swin = config.swin if tuple(config.swin.out_features) == tuple(out_features) else replace(config.swin, out_features=out_features)
        return build_shared_backbone(swin)
    if config.kind == "resnet":
        assert config.resnet is not None
        resnet = config.resnet if tuple(config.resnet.out_features) == tuple(out_features) else replace(config.resnet, out_features=out_features)
        return build_shared_backbone(resnet)
    assert config.efficientnet_lite is not None
    return EfficientNetLiteBackbone(config.efficientnet_lite, out_features)


# --------------------------------------------------------------------------------------------------
# Model sections


@dataclass
class TransformerConfig:
    """``MODEL.COMMON``: the width of every transformer layer of the Fovea and Ranking modules."""

    embed_dim: int = 256
    num_heads: int = 8
    hidden_dim: int = 2048
    """Hidden width of the feed-forward blocks and of the SRM's peripheral MLP."""
    dropout_attn: float = 0.0
    dropout_ffn: float = 0.0
    num_queries: int = 100


@dataclass
class FoveaConfig:
    """``MODEL.SIS_HEAD`` and ``MODEL.MODULES.MULTIQ``: the Fovea Module (instance decoder)."""

    num_blocks: int = 6
    key_features: tuple[str, ...] = ("res5", "res4", "res3")
    """Block ``k`` reads ``key_features[k % len]`` (with that level's embedding and grid size)."""
    mask_key: str = "res2"
    grid_sizes: tuple[tuple[int, int], ...] = ((1, 1), (2, 2), (3, 3))
    """RoI grid (rows, columns) of the multi-eye read-out, one per key feature."""


@dataclass
class RankingConfig:
    """``MODEL.GAZE_SHIFT_HEAD``: the Sequential Ranking Module."""

    num_blocks: int = 2
    key: str = "res5"
    """Neck level whose tokens the SRM attends to."""
    gate: str = "official"
    """The per-query gate at the end of each block. ``"official"``: ``q * softmax(gate(q), dim=-1)``
    over a size-1 axis, which is always ``q * 1.0`` (the official no-op, kept). Improvements (not in
    any released model, so only for training new ones): ``"softmax"`` normalises the gate logits
    over the queries, ``"sigmoid"`` gates each query independently."""


@dataclass
class InputConfig:
    """Preprocessing: square resize to ``test_size`` (aspect ratio not kept) and normalisation."""

    pixel_mean: tuple[float, float, float] = (123.675, 116.28, 103.53)
    pixel_std: tuple[float, float, float] = (58.395, 57.12, 57.375)
    test_size: int = 800
    """``INPUT.FT_SIZE_TEST``."""
    train_size: int = 800
    """``INPUT.FT_SIZE_TRAIN``."""


@dataclass
class ReadoutConfig:
    """The step-by-step ranking read-out (official values hard-coded in ``SeqRank.forward``)."""

    objectness_threshold: float = 0.001
    """Stop when the selected query's objectness probability is below this."""
    saliency_threshold: float = 0.001
    """Stop when the selected query's saliency probability is below this."""
    max_steps: int | None = None
    """At most this many ranking steps (objects); ``None`` = the number of queries (official)."""
    mask_threshold: float = 0.5
    exclude_visited: bool = False
    """Improvement: never select an already visited query again. Off in the official code, where the
    argmax runs over all queries, so one object can be emitted several times."""


@dataclass
class SeqRankConfig:
    """Everything that defines a SeqRank model. Defaults are the corrected released model
    (Swin-L, FPN neck, 2 SRM blocks, 800x800 input); see :func:`seqrank_swinL_config`."""

    backbone: BackboneConfig = field(default_factory=BackboneConfig.swin_large)
    feature_keys: tuple[str, ...] = FEATURE_NAMES
    """Backbone outputs fed to the neck (``MODEL.BACKBONE.FEATURE_KEYS``), finest first."""
    neck: str = "FPN"
    """``"FPN"`` (corrected models) or ``"FrcPN"`` (original models)."""
    position_encoding: str = "APE"
    """``MODEL.PE``: ``"APE"`` (learnable 25x25, every released model), ``"SINE"`` or ``"RANDOM"``."""
    common: TransformerConfig = field(default_factory=TransformerConfig)
    fovea: FoveaConfig = field(default_factory=FoveaConfig)
    ranking: RankingConfig = field(default_factory=RankingConfig)
    input: InputConfig = field(default_factory=InputConfig)
    readout: ReadoutConfig = field(default_factory=ReadoutConfig)
    fast_inference: bool = True
    """Use the optimised inference arithmetic (fused attention, cached step-invariant tensors, split
    peripheral MLP, batched RoI read-out). It computes the same function as the official code; results
    differ by float rounding only (~1e-6). ``False`` evaluates every official formula step by step."""

    def __post_init__(self) -> None:
        self.feature_keys = tuple(self.feature_keys)
        problems = []
        if self.neck not in NECKS:
            problems.append(f"unknown neck {self.neck!r} (choose from {', '.join(NECKS)})")
        if self.position_encoding not in POSITION_ENCODINGS:
            problems.append(f"unknown position encoding {self.position_encoding!r} (choose from {', '.join(POSITION_ENCODINGS)})")
        if self.ranking.gate not in SRM_GATES:
            problems.append(f"unknown SRM gate {self.ranking.gate!r} (choose from {', '.join(SRM_GATES)})")
        c = self.common
        if c.embed_dim % c.num_heads:
            problems.append(f"{c.num_heads} heads do not divide the embedding width {c.embed_dim}")
        if c.num_queries < 1:
            problems.append("num_queries must be positive")
        f = self.fovea
        f.key_features = tuple(f.key_features)
        f.grid_sizes = tuple((int(g[0]), int(g[1])) for g in f.grid_sizes)
        if len(f.key_features) != len(f.grid_sizes):
            problems.append(f"FOM key features {list(f.key_features)} and grid sizes {list(f.grid_sizes)} differ in length")
        for key in (*f.key_features, f.mask_key, self.ranking.key):
            if key not in self.feature_keys:
                problems.append(f"feature {key!r} is not a neck output ({', '.join(self.feature_keys)})")
        if f.num_blocks < 0 or self.ranking.num_blocks < 1:
            problems.append("the FOM needs >= 0 blocks and the SRM >= 1 block")
        if problems:
            raise InputError("invalid SeqRank config: " + "; ".join(problems))

    @property
    def variant(self) -> str:
        """``"correct"`` (FPN, 2 SRM blocks), ``"original"`` (FrcPN, 6 SRM blocks) or ``"custom"``."""
        if self.neck == "FPN" and self.ranking.num_blocks == 2:
            return "correct"
        if self.neck == "FrcPN" and self.ranking.num_blocks == 6:
            return "original"
        return "custom"

    @property
    def is_official(self) -> bool:
        """Whether the read-out behaves exactly like the official code (no improvement switched on)."""
        r = self.readout
        return (
            not r.exclude_visited
            and self.ranking.gate == "official"
            and r.objectness_threshold == 0.001
            and r.saliency_threshold == 0.001
            and r.max_steps is None
            and r.mask_threshold == 0.5
        )

    def to_dict(self) -> dict[str, Any]:
        return config_to_dict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SeqRankConfig:
        return config_from_dict(cls, data)


# --------------------------------------------------------------------------------------------------
# Presets


def seqrank_swinL_config(variant: str = "correct", **overrides: Any) -> SeqRankConfig:
    """The released SeqRank models: Swin-L, 100 queries of width 256, 800x800 input.

    ``variant``: ``"correct"`` (FPN neck, 2 SRM blocks; ``configs/swinL_correct.yaml``) or
    ``"original"`` (FrcPN neck, 6 SRM blocks; ``configs/swinL.yaml``, the paper's model).
    ``overrides`` replace top-level fields of the result.
    """
    v = {"corrected": "correct", "orig": "original", "paper": "original"}.get(variant, variant)
    if v not in ("correct", "original"):
        raise InputError(f"unknown SeqRank variant {variant!r}; choose 'correct' or 'original'")
    cfg = SeqRankConfig(
        backbone=BackboneConfig.swin_large(),
        neck="FPN" if v == "correct" else "FrcPN",
        ranking=RankingConfig(num_blocks=2 if v == "correct" else 6),
    )
    return replace(cfg, **overrides) if overrides else cfg


def seqrank_tiny_config(**overrides: Any) -> SeqRankConfig:
    """A very small SeqRank (Swin with 16 channels, 8 queries of width 16, 64x64 input) for tests,
    examples and smoke runs. With random weights it ranks nothing meaningful."""
    cfg = SeqRankConfig(
        backbone=BackboneConfig(
            kind="swin",
            swin=SwinConfig(embed_dim=16, depths=(2, 2, 2, 2), num_heads=(1, 2, 4, 8), window_size=4, drop_path_rate=0.0),
        ),
        common=TransformerConfig(embed_dim=16, num_heads=2, hidden_dim=32, num_queries=8),
        input=InputConfig(test_size=64, train_size=64),
    )
    return replace(cfg, **overrides) if overrides else cfg


SEQRANK_PRESETS = {
    "seqrank-swinl-correct": lambda: seqrank_swinL_config("correct"),
    "seqrank-swinl": lambda: seqrank_swinL_config("original"),
    "seqrank-swinl-original": lambda: seqrank_swinL_config("original"),
}
"""Named configs; the model zoo's SeqRank entries name theirs (``ZooEntry.config``)."""


def seqrank_preset(name: str) -> SeqRankConfig:
    """The config registered as ``name`` in :data:`SEQRANK_PRESETS`."""
    if name not in SEQRANK_PRESETS:
        raise InputError(f"unknown SeqRank config preset {name!r}; known: {', '.join(sorted(SEQRANK_PRESETS))}")
    return SEQRANK_PRESETS[name]()


# --------------------------------------------------------------------------------------------------
# Official yaml


def _literal(value: Any) -> Any:
    """detectron2 decodes string values such as ``"(256,512,1024,2048)"`` with ``literal_eval``."""
    if isinstance(value, str):
        try:
            return ast.literal_eval(value)
        except (ValueError, SyntaxError):
            return value
    return value


def _seq(value: Any) -> tuple:
    value = _literal(value)
    return tuple(value) if isinstance(value, (list, tuple)) else (value,)


def seqrank_config_from_official_yaml(source: str | os.PathLike[str] | dict[str, Any]) -> SeqRankConfig:
    """A :class:`SeqRankConfig` from an official SeqRank config file or its loaded dict.

    Reads full ``cfg.dump()`` files (``assets/seqrank_results/*/config.yaml``, the fixtures'
    ``config.yaml``) and the repository's ``configs/*.yaml`` (``_BASE_`` is followed). Keys the file
    leaves out take the official defaults (``configs/add_custom_config.py``, then detectron2's).
    The read-out and the improvement options are not part of the official config: they take their
    official defaults.

    Raises:
        InputError: not a SeqRank config, or a variant salrank cannot build (SMT backbones, another
            head), or inconsistent channel counts.
    """
    cfg, path = read_official_config(source, "seqrank", "SeqRank")

    def get(key: str, default: Any) -> Any:
        return _literal(cfg_get(cfg, key, default))

    for key, needed in (("MODEL.SIS_HEAD.NAME", "FoveaModule"), ("MODEL.GAZE_SHIFT_HEAD.NAME", "SequentialRankingModule")):
        if get(key, needed) != needed:
            raise InputError(f"{key} is {get(key, needed)!r}; salrank implements {needed} only", path)

    name = str(get("MODEL.BACKBONE.NAME", "ResNeXt50"))
    feature_keys = tuple(str(k) for k in _seq(get("MODEL.BACKBONE.FEATURE_KEYS", FEATURE_NAMES)))
    if name == "D2SwinTransformer":
        backbone = BackboneConfig(kind="swin", swin=SwinConfig.from_official_cfg(_decoded(cfg)))
        channels = backbone.swin.num_features  # type: ignore[union-attr]
    elif name in RESNET_OFFICIAL_NAMES:
        backbone = BackboneConfig.resnet_official(name)
        channels = backbone.resnet.num_features  # type: ignore[union-attr]
    else:
        raise InputError(
            f"backbone {name!r} is not supported (supported: D2SwinTransformer, {', '.join(RESNET_OFFICIAL_NAMES)}; "
            "the SMT backbones of the official code are not implemented)",
            path,
        )
    declared = tuple(int(c) for c in _seq(get("MODEL.BACKBONE.NUM_FEATURES", (256, 512, 1024, 2048))))
    all_channels = dict(zip(FEATURE_NAMES, channels))
    actual = tuple(all_channels[k] for k in feature_keys if k in all_channels)
    if declared[: len(actual)] != actual:
        raise InputError(
            f"MODEL.BACKBONE.NUM_FEATURES {list(declared)} does not match the {name} outputs {list(actual)} "
            "(the official model would not build either)",
            path,
        )
    grid = tuple(tuple(int(v) for v in _seq(g)) for g in _seq(get("MODEL.MODULES.MULTIQ.GRID_SIZES", ((1, 1), (2, 2), (3, 3)))))
    try:
        return SeqRankConfig(
            backbone=backbone,
            feature_keys=feature_keys,
            neck=str(get("MODEL.NECK.NAME", "FPN")),
            position_encoding=str(get("MODEL.PE", "APE")),
            common=TransformerConfig(
                embed_dim=int(get("MODEL.COMMON.EMBED_DIM", 256)),
                num_heads=int(get("MODEL.COMMON.NUM_HEADS", 8)),
                hidden_dim=int(get("MODEL.COMMON.HIDDEN_DIM", 2048)),
                dropout_attn=float(get("MODEL.COMMON.DROPOUT_ATTN", 0.0)),
                dropout_ffn=float(get("MODEL.COMMON.DROPOUT_FFN", 0.0)),
                num_queries=int(get("MODEL.COMMON.NUM_QUERIES", 100)),
            ),
            fovea=FoveaConfig(
                num_blocks=int(get("MODEL.SIS_HEAD.NUM_BLOCKS", 6)),
                key_features=tuple(str(k) for k in _seq(get("MODEL.SIS_HEAD.KEY_FEATURES", ("res5", "res4", "res3")))),
                mask_key=str(get("MODEL.SIS_HEAD.MASK_KEY", "res2")),
                grid_sizes=grid,  # type: ignore[arg-type]
            ),
            ranking=RankingConfig(
                num_blocks=int(get("MODEL.GAZE_SHIFT_HEAD.NUM_BLOCKS", 2)),
                key=str(get("MODEL.GAZE_SHIFT_HEAD.KEY", "res5")),
            ),
            input=InputConfig(
                pixel_mean=tuple(float(v) for v in _seq(get("MODEL.PIXEL_MEAN", _D2_PIXEL_MEAN))),  # type: ignore[arg-type]
                pixel_std=tuple(float(v) for v in _seq(get("MODEL.PIXEL_STD", _D2_PIXEL_STD))),  # type: ignore[arg-type]
                test_size=int(get("INPUT.FT_SIZE_TEST", 800)),
                train_size=int(get("INPUT.FT_SIZE_TRAIN", 800)),
            ),
        )
    except InputError as exc:
        raise InputError(exc.message, path) from None


def _decoded(cfg: dict[str, Any]) -> dict[str, Any]:
    """``cfg`` with detectron2-style string literals (``"(2, 2, 18, 2)"``) decoded, recursively."""
    out: dict[str, Any] = {}
    for key, value in cfg.items():
        out[key] = _decoded(value) if isinstance(value, dict) else _literal(value)
    return out


def seqrank_config_to_official_yaml(cfg: SeqRankConfig, path: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """The official config keys of ``cfg`` (nested dicts, loadable by the official code after merging
    with its defaults); written as yaml to ``path`` when given.

    The read-out options have no official key; a config with an improvement switched on, or with an
    EfficientNet-Lite backbone, has no official equivalent and raises :class:`InputError`.
    """
    if not cfg.is_official:
        raise InputError("this config switches on options the official code does not have (read-out/gate); it has no official yaml")
    name = cfg.backbone.official_name
    if name is None:
        raise InputError(f"the {cfg.backbone.kind} backbone has no official SeqRank equivalent")
    if cfg.backbone.kind == "swin":
        channels = cfg.backbone.swin.num_features  # type: ignore[union-attr]
    else:
        channels = cfg.backbone.resnet.num_features  # type: ignore[union-attr]
    by_name = dict(zip(FEATURE_NAMES, channels))
    model: dict[str, Any] = {
        "META_ARCHITECTURE": "SeqRank",
        "PIXEL_MEAN": list(cfg.input.pixel_mean),
        "PIXEL_STD": list(cfg.input.pixel_std),
        "PE": cfg.position_encoding,
        "BACKBONE": {"NAME": name, "NUM_FEATURES": [by_name[k] for k in cfg.feature_keys], "FEATURE_KEYS": list(cfg.feature_keys)},
        "NECK": {"NAME": cfg.neck},
        "SIS_HEAD": {
            "NAME": "FoveaModule",
            "NUM_BLOCKS": cfg.fovea.num_blocks,
            "KEY_FEATURES": list(cfg.fovea.key_features),
            "MASK_KEY": cfg.fovea.mask_key,
        },
        "GAZE_SHIFT_HEAD": {"NAME": "SequentialRankingModule", "NUM_BLOCKS": cfg.ranking.num_blocks, "KEY": cfg.ranking.key},
        "COMMON": {
            "EMBED_DIM": cfg.common.embed_dim,
            "NUM_HEADS": cfg.common.num_heads,
            "HIDDEN_DIM": cfg.common.hidden_dim,
            "DROPOUT_ATTN": cfg.common.dropout_attn,
            "DROPOUT_FFN": cfg.common.dropout_ffn,
            "NUM_QUERIES": cfg.common.num_queries,
        },
        "MODULES": {"MULTIQ": {"GRID_SIZES": [list(g) for g in cfg.fovea.grid_sizes]}},
    }
    if cfg.backbone.kind == "swin":
        s = cfg.backbone.swin
        assert s is not None
        model["SWIN"] = {
            "EMBED_DIM": s.embed_dim,
            "DEPTHS": list(s.depths),
            "NUM_HEADS": list(s.num_heads),
            "WINDOW_SIZE": s.window_size,
            "PATCH_SIZE": s.patch_size,
            "MLP_RATIO": s.mlp_ratio,
            "QKV_BIAS": s.qkv_bias,
            "QK_SCALE": s.qk_scale,
            "DROP_RATE": s.drop_rate,
            "ATTN_DROP_RATE": s.attn_drop_rate,
            "DROP_PATH_RATE": s.drop_path_rate,
            "APE": s.ape,
            "PATCH_NORM": s.patch_norm,
            "PRETRAIN_IMG_SIZE": s.pretrain_img_size,
            "OUT_FEATURES": list(s.out_features),
            "USE_CHECKPOINT": s.use_checkpoint,
        }
    data = {"MODEL": model, "INPUT": {"FT_SIZE_TEST": cfg.input.test_size, "FT_SIZE_TRAIN": cfg.input.train_size}}
    if path is not None:
        from salrank.utils.io import atomic_write

        with atomic_write(path, "w") as fh:
            yaml.safe_dump(data, fh, sort_keys=False)
    return data
