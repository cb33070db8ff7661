"""Typed configuration of PoseSOR, and reading/writing it as the official detectron2 yaml.

:class:`PoseSORConfig` holds every number that defines a PoseSOR model at inference time, grouped as the
official ``configs/base.yaml`` groups them: the backbone (``MODEL.SWIN`` / ``MODEL.BACKBONE``), the neck,
the shared transformer sizes (``MODEL.COMMON``), the SIS decoder (``MODEL.SIS_HEAD``), the Pose-Aware
Interaction module (``MODEL.ACTOR_INTERACTION``), the Pose-Driven Ranking module (``MODEL.POSE_SHIFT``),
the input (``INPUT.TEST_IMAGE_SIZE``, ``MODEL.PIXEL_*``) and the test-time read-out (``TEST.*``).

The ablations of the paper are switches of :class:`PAIConfig` / :class:`PDRConfig`; each official module
name (``PAIID2`` ... , ``PDRID8`` ...) maps to one combination (:data:`PAI_VARIANTS`,
:data:`PDR_VARIANTS`). The README's "w/o pose knowledge" model is ``PAIID2`` (no scene tokens):
:func:`posesor_swinl_config` with ``variant="id2"``.

Presets are registered under the model-zoo names (``posesor-swinl``, ``posesor-swinl-id2``), see
:func:`posesor_preset`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from salrank.config import (
    cfg_get,
    config_from_dict,
    config_to_dict,
    read_official_config,
)
from salrank.errors import InputError
from salrank.modeling.backbones import (
    ResNetConfig,
    SwinConfig,
    backbone_config_from_official,
)
from salrank.modeling.necks import NeckConfig

__all__ = [
    "FEATURE_NAMES",
    "PAI_VARIANTS",
    "PDR_VARIANTS",
    "POSESOR_PRESETS",
    "PAIConfig",
    "PDRConfig",
    "PoseSORBackboneConfig",
    "PoseSORConfig",
    "PoseSORInputConfig",
    "PoseSORTestConfig",
    "SISDecoderConfig",
    "posesor_config_from_official_yaml",
    "posesor_preset",
    "posesor_swinl_config",
    "posesor_tiny_config",
    "register_posesor_preset",
]

FEATURE_NAMES = ("res2", "res3", "res4", "res5")


@dataclass
class PoseSORBackboneConfig:
    """The backbone: ``kind`` ``"swin"`` (every released model; :class:`SwinConfig`) or ``"resnet"``
    (the official code's ``ResNeXt50``-style backbones; :class:`ResNetConfig`). Only the selected field is used."""

    kind: str = "swin"
    swin: SwinConfig | None = field(default_factory=SwinConfig.large)
    resnet: ResNetConfig | None = None

    def __post_init__(self) -> None:
        if self.kind not in ("swin", "resnet"):
            raise InputError(f"unknown backbone kind {self.kind!r}; PoseSOR supports 'swin' and 'resnet'")
        if self.kind == "swin":
            self.swin = self.swin if self.swin is not None else SwinConfig.large()
            self.resnet = None
        else:
            self.resnet = self.resnet if self.resnet is not None else ResNetConfig.resnext50_32x4d()
            self.swin = None

    @classmethod
    def of(cls, config: SwinConfig | ResNetConfig) -> PoseSORBackboneConfig:
        """Wrap a backbone config."""
        if isinstance(config, SwinConfig):
            return cls(kind="swin", swin=config)
        return cls(kind="resnet", swin=None, resnet=config)

    @property
    def config(self) -> SwinConfig | ResNetConfig:
        """The selected backbone's config."""
        out = self.swin if self.kind == "swin" else self.resnet
        assert out is not None
        return out


@dataclass
class SISDecoderConfig:
    """The salient-instance-segmentation transformer decoder (``MODEL.SIS_HEAD``, official ``TransformerDecoder``)."""

    num_blocks: int = 6
    """Decoder blocks; block ``k`` attends to ``key_features[k % len(key_features)]``."""
    key_features: tuple[str, ...] = ("res5", "res4", "res3")
    mask_key: str = "res2"
    """Feature the mask logits are read from (stride 4)."""


@dataclass
class PAIConfig:
    """The Pose-Aware Interaction module (``MODEL.ACTOR_INTERACTION``) and its ablation switches.

    The switches reproduce the official ablation modules (``network/modules/pai_id*.py``); all ``True``
    is the full model ``PAI``. See :data:`PAI_VARIANTS` for the official names.
    """

    num_blocks: int = 3
    mask_key: str = "res2"
    """Feature the PAI head reads masks and heatmaps from (stride 4)."""
    key_feature: str = "res3"
    """Feature the joint tokens and the scene tokens look at (stride 8)."""
    scene_bins: tuple[int, int] = (4, 4)
    """Adaptive average pooling grid of the scene tokens."""
    scene_tokens: bool = True
    """Actor-scene interaction sees pooled scene tokens (``False``: ID2 "w/o pose knowledge", ID6)."""
    object_gating: bool = True
    """Joint tokens look at object-gated features (``False``: ID3, the gate is replaced by ones)."""
    sub_pose_tokens: bool = True
    """Actor-scene interaction uses sub-pose tokens built from the joints (``False``: ID4, ID6 use the
    object queries instead)."""
    joint_interaction: bool = True
    """The intra-object joint/object attention step exists (``False``: ID8, which also has no object
    gate and no sub-pose MLP)."""
    interaction_blocks: bool = True
    """The interaction blocks and the learned joint PE exist at all (``False``: ID9, the PAI head reads
    the initial joint tokens directly)."""
    num_layers: int = 1
    """``NUM_LAYERS`` of the official config; read by the official code but never used."""

    @property
    def official_name(self) -> str:
        """The official module name (``MODEL.ACTOR_INTERACTION.NAME``) of this switch combination."""
        for name, flags in PAI_VARIANTS.items():
            if all(getattr(self, k) == v for k, v in flags.items()):
                return name
        raise InputError(f"this combination of PAI switches is not an official PoseSOR module: {self._flags()}")

    @property
    def keeps_scene_norm(self) -> bool:
        """Whether the blocks have the scene LayerNorm: when scene tokens are used, and in ID6, which
        keeps it unused in its state dict (ID2 removes it)."""
        return self.scene_tokens or (self.interaction_blocks and self.official_name == "PAIID6")

    def _flags(self) -> dict[str, bool]:
        return {k: getattr(self, k) for k in PAI_VARIANTS["PAI"]}


PAI_VARIANTS: dict[str, dict[str, bool]] = {
    "PAI": {"scene_tokens": True, "object_gating": True, "sub_pose_tokens": True, "joint_interaction": True, "interaction_blocks": True},
    "PAIID2": {"scene_tokens": False, "object_gating": True, "sub_pose_tokens": True, "joint_interaction": True, "interaction_blocks": True},
    "PAIID3": {"scene_tokens": True, "object_gating": False, "sub_pose_tokens": True, "joint_interaction": True, "interaction_blocks": True},
    "PAIID4": {"scene_tokens": True, "object_gating": True, "sub_pose_tokens": False, "joint_interaction": True, "interaction_blocks": True},
    "PAIID6": {"scene_tokens": False, "object_gating": True, "sub_pose_tokens": False, "joint_interaction": True, "interaction_blocks": True},
    "PAIID8": {"scene_tokens": True, "object_gating": False, "sub_pose_tokens": False, "joint_interaction": False, "interaction_blocks": True},
    "PAIID9": {"scene_tokens": False, "object_gating": False, "sub_pose_tokens": False, "joint_interaction": False, "interaction_blocks": False},
}
"""Official PAI module names -> :class:`PAIConfig` switches (``network/modules/pai*.py``).

ID2: no scene tokens (the README's "w/o pose knowledge" model). ID3: no object gating. ID4: no sub-pose
tokens. ID6: neither scene nor sub-pose tokens. ID8: no joint interaction (no intra-object attention,
gate or sub-pose MLP; the actor-scene step runs on the object queries). ID9: no interaction blocks and no
learned joint PE.
"""


@dataclass
class PDRConfig:
    """The Pose-Driven Ranking module (``MODEL.POSE_SHIFT``) and its ablation switches."""

    mask_key: str = "res3"
    """Feature the partition ("where attention goes next") maps and the background token come from."""
    num_directions: int = 8
    direction_tokens: bool = True
    """Direction tokens, coordinate cues and the next-object representation (``False``: ``PDRRI``, which
    keeps the pairwise relation term on the queries themselves)."""
    pairwise_relation: bool = True
    """The pairwise relation MLP averaged over objects (``False``: ``PDRDCL``)."""
    ranking_module: bool = True
    """The whole module (``False``: ``PDRID8``, only the head on the PAI queries)."""

    @property
    def official_name(self) -> str:
        """The official module name (``MODEL.POSE_SHIFT.NAME``) of this switch combination."""
        for name, flags in PDR_VARIANTS.items():
            if all(getattr(self, k) == v for k, v in flags.items()):
                return name
        raise InputError(
            "this combination of PDR switches is not an official PoseSOR module: "
            + str({k: getattr(self, k) for k in PDR_VARIANTS["PDR"]})
        )


PDR_VARIANTS: dict[str, dict[str, bool]] = {
    "PDR": {"direction_tokens": True, "pairwise_relation": True, "ranking_module": True},
    "PDRDCL": {"direction_tokens": True, "pairwise_relation": False, "ranking_module": True},
    "PDRRI": {"direction_tokens": False, "pairwise_relation": True, "ranking_module": True},
    "PDRID8": {"direction_tokens": False, "pairwise_relation": False, "ranking_module": False},
}
"""Official PDR module names -> :class:`PDRConfig` switches (``network/modules/pdr*.py``)."""


@dataclass
class PoseSORInputConfig:
    """Test-time preprocessing: square resize (``INPUT.TEST_IMAGE_SIZE``) and normalisation."""

    test_image_size: int = 768
    """Images are resized to ``size x size`` (cv2 bilinear, aspect ratio not kept), as the official mapper."""
    pixel_mean: tuple[float, float, float] = (123.675, 116.28, 103.53)
    pixel_std: tuple[float, float, float] = (58.395, 57.12, 57.375)
    """RGB, on the 0-255 scale."""


@dataclass
class PoseSORTestConfig:
    """The inference read-out (``TEST.*``)."""

    obj_threshold: float = 0.1
    """Queries with objectness probability ``>= min(top-1 - 1e-6, obj_threshold)`` go through PAI/PDR."""
    maskness_threshold: float = 0.95
    """Post-processing merges objects whose overlap / smaller area exceeds this."""
    mask_threshold: float = 0.5
    """Binarisation of the refined mask probabilities. The official read-out hard-codes 0.5 (it does not
    read ``TEST.THRESHOLD``, which only its evaluator uses), so the official yaml does not set this."""
    merge: bool = True
    """Apply the official maskness-merge post-processing (``post_process``)."""


@dataclass
class PoseSORConfig:
    """Everything that defines a PoseSOR model (Guan & Lau, ECCV 2024) at inference time.

    Defaults are the released models: Swin-L, FPN, 256-d transformers with 8 heads and 2048-d FFNs, 100
    queries, 17 COCO joints, 20 rank levels, 768x768 input (``configs/swinL.yaml`` and the model cards).

    Performance options (exact in real arithmetic, so they change results only by float rounding, far
    below the 1e-4 fidelity tolerance; the explicit official formulation stays available for checks):

    * ``gated_attention``: ``"factorized"`` evaluates PAI's per-object gated cross-attention without
      materialising per-object key/value tensors (see :mod:`.pose_interaction`); ``"explicit"`` builds them
      as the official code does.
    * ``pairwise``: ``"factorized"`` evaluates PDR's pairwise MLP with the first layer split per object and
      the mean taken before the last linear layer; ``"explicit"`` builds the ``(n, n, 2C)`` pairs.
    * ``joint_argmax``: ``"certified"`` finds each heatmap's full-resolution argmax from the low-resolution
      map with a certified bound and falls back to the official full-resolution path where the bound
      cannot decide; ``"full"`` always upsamples (see :mod:`.readout`).
    """

    backbone: PoseSORBackboneConfig = field(default_factory=PoseSORBackboneConfig)
    neck: str = "FPN"
    """``"FPN"`` (every released model) or ``"FrcPN"``."""
    embed_dim: int = 256
    num_heads: int = 8
    hidden_dim: int = 2048
    num_queries: int = 100
    num_joints: int = 17
    max_rank_level: int = 20
    dropout_attn: float = 0.0
    dropout_ffn: float = 0.0
    sis: SISDecoderConfig = field(default_factory=SISDecoderConfig)
    pai: PAIConfig = field(default_factory=PAIConfig)
    pdr: PDRConfig = field(default_factory=PDRConfig)
    input: PoseSORInputConfig = field(default_factory=PoseSORInputConfig)
    test: PoseSORTestConfig = field(default_factory=PoseSORTestConfig)
    gated_attention: str = "factorized"
    pairwise: str = "factorized"
    joint_argmax: str = "certified"

    @property
    def variant(self) -> str:
        """``"full"`` for the paper model, ``"id2"`` for "w/o pose knowledge", else the official module names."""
        pai, pdr = self.pai.official_name, self.pdr.official_name
        if pdr == "PDR":
            if pai == "PAI":
                return "full"
            if pai == "PAIID2":
                return "id2"
        return f"{pai}+{pdr}"

    @property
    def backbone_channels(self) -> tuple[int, ...]:
        """Channels of ``res2 .. res5`` of the backbone."""
        return tuple(self.backbone.config.num_features)

    def neck_config(self) -> NeckConfig:
        return NeckConfig(name=self.neck, dim=self.embed_dim, in_channels=self.backbone_channels, in_features=FEATURE_NAMES)

    def validate(self) -> None:
        """Raise :class:`InputError` for a combination the model cannot build."""
        if self.neck not in ("FPN", "FrcPN"):
            raise InputError(f"unsupported neck {self.neck!r} (PoseSOR uses 'FPN'; 'FrcPN' is also available)")
        if self.embed_dim % self.num_heads:
            raise InputError(f"EMBED_DIM {self.embed_dim} is not divisible by NUM_HEADS {self.num_heads}")
        for name in (*self.sis.key_features, self.sis.mask_key, self.pai.mask_key, self.pai.key_feature, self.pdr.mask_key):
            if name not in FEATURE_NAMES:
                raise InputError(f"unknown feature {name!r}; PoseSOR features are {', '.join(FEATURE_NAMES)}")
        if not self.sis.key_features:
            raise InputError("SIS_HEAD.KEY_FEATURES must name at least one feature")
        self.pai.official_name  # noqa: B018 - raises for a combination that is no official module
        self.pdr.official_name  # noqa: B018
        for option, allowed in (("gated_attention", ("factorized", "explicit")), ("pairwise", ("factorized", "explicit")), ("joint_argmax", ("certified", "full"))):
            if getattr(self, option) not in allowed:
                raise InputError(f"{option} must be one of {', '.join(allowed)}, not {getattr(self, option)!r}")
        if self.input.test_image_size < 32:
            raise InputError(f"TEST_IMAGE_SIZE {self.input.test_image_size} is too small (the backbone's stride is 32)")

    # ------------------------------------------------------------------ dict / official yaml
    def to_dict(self) -> dict[str, Any]:
        """Plain-dict form (``config_to_dict``), e.g. to store beside salrank weights."""
        return config_to_dict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PoseSORConfig:
        """Inverse of :meth:`to_dict` (unknown keys raise :class:`InputError`)."""
        cfg = config_from_dict(cls, dict(data))
        cfg.validate()
        return cfg

    def to_official_yaml(self) -> dict[str, Any]:
        """The official config keys of this model (nested dicts; ``yaml.safe_dump`` it to get a file).

        Only what the official model and test path read is written; merged on the official defaults
        (``add_custom_config``) it builds the same network, and :func:`posesor_config_from_official_yaml`
        reads it back to this config.
        """
        if self.backbone.kind != "swin":
            raise InputError("to_official_yaml supports Swin backbones only")
        b = self.backbone.swin
        assert b is not None
        return {
            "MODEL": {
                "META_ARCHITECTURE": "PoseSOR",
                "PIXEL_MEAN": list(self.input.pixel_mean),
                "PIXEL_STD": list(self.input.pixel_std),
                "PE": "APE",
                "BACKBONE": {"NAME": "D2SwinTransformer", "NUM_FEATURES": list(b.num_features), "FEATURE_KEYS": list(FEATURE_NAMES)},
                "SWIN": {
                    "EMBED_DIM": b.embed_dim,
                    "DEPTHS": list(b.depths),
                    "NUM_HEADS": list(b.num_heads),
                    "WINDOW_SIZE": b.window_size,
                    "PATCH_SIZE": b.patch_size,
                    "MLP_RATIO": b.mlp_ratio,
                    "QKV_BIAS": b.qkv_bias,
                    "QK_SCALE": b.qk_scale,
                    "DROP_RATE": b.drop_rate,
                    "ATTN_DROP_RATE": b.attn_drop_rate,
                    "DROP_PATH_RATE": b.drop_path_rate,
                    "APE": b.ape,
                    "PATCH_NORM": b.patch_norm,
                    "PRETRAIN_IMG_SIZE": b.pretrain_img_size,
                    "OUT_FEATURES": list(b.out_features),
                    "USE_CHECKPOINT": b.use_checkpoint,
                },
                "NECK": {"NAME": self.neck},
                "SIS_HEAD": {
                    "NAME": "TransformerDecoder",
                    "NUM_BLOCKS": self.sis.num_blocks,
                    "KEY_FEATURES": list(self.sis.key_features),
                    "MASK_KEY": self.sis.mask_key,
                },
                "ACTOR_INTERACTION": {
                    "NAME": self.pai.official_name,
                    "NUM_LAYERS": self.pai.num_layers,
                    "NUM_BLOCKS": self.pai.num_blocks,
                    "MASK_KEY": self.pai.mask_key,
                    "KEY_FEATURE": self.pai.key_feature,
                    "SCENE_BINS": list(self.pai.scene_bins),
                },
                "POSE_SHIFT": {"NAME": self.pdr.official_name, "MASK_KEY": self.pdr.mask_key, "NUM_DIRECTIONS": self.pdr.num_directions},
                "COMMON": {
                    "EMBED_DIM": self.embed_dim,
                    "NUM_HEADS": self.num_heads,
                    "HIDDEN_DIM": self.hidden_dim,
                    "DROPOUT_ATTN": self.dropout_attn,
                    "DROPOUT_FFN": self.dropout_ffn,
                    "NUM_JOINTS": self.num_joints,
                    "NUM_QUERIES": self.num_queries,
                    "MAX_RANK_LEVEL": self.max_rank_level,
                },
            },
            "INPUT": {"TEST_IMAGE_SIZE": self.input.test_image_size},
            "TEST": {
                "OBJ_THRESHOLD": self.test.obj_threshold,
                "MASKNESS_THRESHOLD": self.test.maskness_threshold,
                },
        }


# ---------------------------------------------------------------------------------------------------
# Presets (registered under the model zoo's config names)
# ---------------------------------------------------------------------------------------------------


def posesor_swinl_config(variant: str = "full", **overrides: Any) -> PoseSORConfig:
    """The released PoseSOR models: Swin-L + FPN + SIS decoder + PAI + PDR at 768x768.

    Args:
        variant: ``"full"`` (the ASSR/IRSR model cards) or ``"id2"`` (the README's "w/o pose knowledge"
            ablation, PAI without scene tokens). Official module names (``"PAIID3"``, ...) also work.
        overrides: top-level :class:`PoseSORConfig` fields to replace.
    """
    pai = PAIConfig()
    name = {"full": "PAI", "id2": "PAIID2"}.get(variant, variant)
    if name not in PAI_VARIANTS:
        raise InputError(f"unknown PoseSOR variant {variant!r}; use 'full', 'id2' or one of {', '.join(PAI_VARIANTS)}")
    pai = replace(pai, **PAI_VARIANTS[name])
    cfg = PoseSORConfig(pai=pai)
    cfg = replace(cfg, **overrides) if overrides else cfg
    cfg.validate()
    return cfg


def posesor_tiny_config(variant: str = "full", **overrides: Any) -> PoseSORConfig:
    """A tiny PoseSOR (the shapes of the official fixture: Swin 32-d, 32-d transformers, 12 queries, 256 px).

    For tests and examples; with random weights it produces random rankings.
    """
    name = {"full": "PAI", "id2": "PAIID2"}.get(variant, variant)
    if name not in PAI_VARIANTS:
        raise InputError(f"unknown PoseSOR variant {variant!r}")
    cfg = PoseSORConfig(
        backbone=PoseSORBackboneConfig.of(
            SwinConfig(embed_dim=32, depths=(2, 2, 2, 2), num_heads=(1, 2, 4, 8), window_size=4, pretrain_img_size=384, drop_path_rate=0.2)
        ),
        embed_dim=32,
        num_heads=4,
        hidden_dim=64,
        num_queries=12,
        pai=PAIConfig(**PAI_VARIANTS[name]),
        input=PoseSORInputConfig(test_image_size=256),
    )
    cfg = replace(cfg, **overrides) if overrides else cfg
    cfg.validate()
    return cfg


POSESOR_PRESETS: dict[str, Callable[[], PoseSORConfig]] = {}
"""Named PoseSOR configs: the model zoo's ``config`` names (``posesor-swinl``, ``posesor-swinl-id2``) and ``posesor-tiny``."""


def register_posesor_preset(name: str, factory: Callable[[], PoseSORConfig]) -> None:
    """Register a named config (a zoo entry's ``config`` field refers to it)."""
    if name in POSESOR_PRESETS and POSESOR_PRESETS[name] is not factory:
        raise ValueError(f"PoseSOR preset {name!r} is registered twice")
    POSESOR_PRESETS[name] = factory


def _swinl_full() -> PoseSORConfig:
    return posesor_swinl_config("full")


def _swinl_id2() -> PoseSORConfig:
    return posesor_swinl_config("id2")


def _tiny() -> PoseSORConfig:
    return posesor_tiny_config("full")


register_posesor_preset("posesor-swinl", _swinl_full)
register_posesor_preset("posesor-swinl-id2", _swinl_id2)
register_posesor_preset("posesor-tiny", _tiny)


def posesor_preset(name: str) -> PoseSORConfig:
    """A fresh copy of the preset ``name`` (see :data:`POSESOR_PRESETS`)."""
    if name not in POSESOR_PRESETS:
        raise InputError(f"unknown PoseSOR config preset {name!r}; known: {', '.join(sorted(POSESOR_PRESETS))}")
    return POSESOR_PRESETS[name]()


# ---------------------------------------------------------------------------------------------------
# Official yaml
# ---------------------------------------------------------------------------------------------------

# The official `add_custom_config` defaults that differ from salrank's dataclass defaults: a yaml that
# does not set a key gets these (what detectron2's merge onto the defaults gives).
_OFFICIAL_DEFAULTS: dict[str, Any] = {
    "MODEL.NECK.NAME": "FPN",
    "MODEL.PE": "APE",
    "MODEL.SIS_HEAD.NAME": "TransformerDecoder",
    "MODEL.SIS_HEAD.NUM_BLOCKS": 3,
    "MODEL.SIS_HEAD.KEY_FEATURES": ["res5", "res4", "res3"],
    "MODEL.SIS_HEAD.MASK_KEY": "res2",
    "MODEL.ACTOR_INTERACTION.NAME": "",
    "MODEL.ACTOR_INTERACTION.NUM_LAYERS": 3,
    "MODEL.ACTOR_INTERACTION.NUM_BLOCKS": 3,
    "MODEL.ACTOR_INTERACTION.MASK_KEY": "res2",
    "MODEL.ACTOR_INTERACTION.SCENE_BINS": [4, 5],
    "MODEL.ACTOR_INTERACTION.KEY_FEATURE": "res2",
    "MODEL.POSE_SHIFT.NAME": "",
    "MODEL.POSE_SHIFT.MASK_KEY": "res2",
    "MODEL.POSE_SHIFT.NUM_DIRECTIONS": 8,
    "MODEL.COMMON.EMBED_DIM": 256,
    "MODEL.COMMON.NUM_HEADS": 8,
    "MODEL.COMMON.HIDDEN_DIM": 2048,
    "MODEL.COMMON.DROPOUT_ATTN": 0.0,
    "MODEL.COMMON.DROPOUT_FFN": 0.0,
    "MODEL.COMMON.NUM_JOINTS": 17,
    "MODEL.COMMON.NUM_QUERIES": 100,
    "MODEL.COMMON.MAX_RANK_LEVEL": 20,
    "MODEL.PIXEL_MEAN": [103.53, 116.28, 123.675],  # detectron2's default (BGR order); base.yaml sets RGB
    "MODEL.PIXEL_STD": [1.0, 1.0, 1.0],
    "INPUT.TEST_IMAGE_SIZE": 512,
    "TEST.OBJ_THRESHOLD": 0.1,
    "TEST.MASKNESS_THRESHOLD": 0.95,
}


def posesor_config_from_official_yaml(source: str | os.PathLike[str] | dict[str, Any], **overrides: Any) -> PoseSORConfig:
    """Build a :class:`PoseSORConfig` from an official PoseSOR yaml (or its loaded dict).

    Accepts ``configs/swinL.yaml`` (its ``_BASE_`` is followed), the full ``config.yaml`` dumps of the model
    cards (``assets/model_cards/*/inference/config.yaml``) and the fixture configs. Keys the file does not
    set take the official ``add_custom_config`` defaults, as detectron2's merge would give them.

    Args:
        source: the yaml path or an already-loaded dict.
        overrides: top-level :class:`PoseSORConfig` fields to replace afterwards (e.g. ``joint_argmax``).

    Raises:
        InputError: the file is not a PoseSOR config, or names modules salrank does not implement (a
            positional encoding other than ``APE``, an unknown neck or ablation).
    """
    cfg, path = read_official_config(source, "posesor", "PoseSOR")

    def get(key: str) -> Any:
        return cfg_get(cfg, key, _OFFICIAL_DEFAULTS.get(key))

    pe = get("MODEL.PE")
    if pe != "APE":
        raise InputError(f"MODEL.PE={pe!r}: only the learnable positional encoding 'APE' (every released model) is supported", path)
    sis_name = get("MODEL.SIS_HEAD.NAME")
    if sis_name != "TransformerDecoder":
        raise InputError(f"MODEL.SIS_HEAD.NAME={sis_name!r}: only 'TransformerDecoder' is supported", path)
    pai_name = str(get("MODEL.ACTOR_INTERACTION.NAME"))
    if pai_name not in PAI_VARIANTS:
        raise InputError(f"MODEL.ACTOR_INTERACTION.NAME={pai_name!r} is not a PoseSOR module ({', '.join(PAI_VARIANTS)})", path)
    pdr_name = str(get("MODEL.POSE_SHIFT.NAME"))
    if pdr_name not in PDR_VARIANTS:
        raise InputError(f"MODEL.POSE_SHIFT.NAME={pdr_name!r} is not a PoseSOR module ({', '.join(PDR_VARIANTS)})", path)
    neck = str(get("MODEL.NECK.NAME"))
    if neck not in ("FPN", "FrcPN"):
        raise InputError(f"MODEL.NECK.NAME={neck!r}: supported necks are FPN and FrcPN", path)
    try:
        backbone = PoseSORBackboneConfig.of(backbone_config_from_official(cfg))
    except ValueError as exc:
        raise InputError(str(exc), path) from None
    bins = tuple(int(v) for v in get("MODEL.ACTOR_INTERACTION.SCENE_BINS"))
    if len(bins) != 2:
        raise InputError(f"MODEL.ACTOR_INTERACTION.SCENE_BINS must hold two numbers, got {list(bins)}", path)
    out = PoseSORConfig(
        backbone=backbone,
        neck=neck,
        embed_dim=int(get("MODEL.COMMON.EMBED_DIM")),
        num_heads=int(get("MODEL.COMMON.NUM_HEADS")),
        hidden_dim=int(get("MODEL.COMMON.HIDDEN_DIM")),
        num_queries=int(get("MODEL.COMMON.NUM_QUERIES")),
        num_joints=int(get("MODEL.COMMON.NUM_JOINTS")),
        max_rank_level=int(get("MODEL.COMMON.MAX_RANK_LEVEL")),
        dropout_attn=float(get("MODEL.COMMON.DROPOUT_ATTN")),
        dropout_ffn=float(get("MODEL.COMMON.DROPOUT_FFN")),
        sis=SISDecoderConfig(
            num_blocks=int(get("MODEL.SIS_HEAD.NUM_BLOCKS")),
            key_features=tuple(str(k) for k in get("MODEL.SIS_HEAD.KEY_FEATURES")),
            mask_key=str(get("MODEL.SIS_HEAD.MASK_KEY")),
        ),
        pai=PAIConfig(
            num_blocks=int(get("MODEL.ACTOR_INTERACTION.NUM_BLOCKS")),
            mask_key=str(get("MODEL.ACTOR_INTERACTION.MASK_KEY")),
            key_feature=str(get("MODEL.ACTOR_INTERACTION.KEY_FEATURE")),
            scene_bins=(bins[0], bins[1]),
            num_layers=int(get("MODEL.ACTOR_INTERACTION.NUM_LAYERS")),
            **PAI_VARIANTS[pai_name],
        ),
        pdr=PDRConfig(
            mask_key=str(get("MODEL.POSE_SHIFT.MASK_KEY")),
            num_directions=int(get("MODEL.POSE_SHIFT.NUM_DIRECTIONS")),
            **PDR_VARIANTS[pdr_name],
        ),
        input=PoseSORInputConfig(
            test_image_size=int(get("INPUT.TEST_IMAGE_SIZE")),
            pixel_mean=tuple(float(v) for v in get("MODEL.PIXEL_MEAN")),  # type: ignore[arg-type]
            pixel_std=tuple(float(v) for v in get("MODEL.PIXEL_STD")),  # type: ignore[arg-type]
        ),
        test=PoseSORTestConfig(
            obj_threshold=float(get("TEST.OBJ_THRESHOLD")),
            maskness_threshold=float(get("TEST.MASKNESS_THRESHOLD")),
        ),
    )
    if overrides:
        out = replace(out, **overrides)
    try:
        out.validate()
    except InputError as exc:
        raise InputError(exc.message, path) from None
    return out
