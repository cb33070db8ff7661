"""Typed configuration of PPA, and reading it from the official detectron2/CenterMask2 yaml files.

:class:`PPAConfig` holds every number the inference path needs, grouped as the official config is
(backbone, FCOS, ROI heads, SOR head, input). :func:`ppa_config_from_official_yaml` reads an official
file (``configs/sor/ppa.yaml`` with its ``_BASE_``, or a full ``cfg.dump()``), filling anything the
file leaves out with the official defaults (CenterMask2's ``centermask/config/defaults.py`` on top of
detectron2's), and applies what ``train_sor.py::setup`` does before evaluating: the FCOS test score
threshold is forced to 0.3.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from typing import Any

from salrank.config import cfg_get, read_official_config
from salrank.errors import InputError
from salrank.modeling.backbones.vovnet import VOVNET_SPECS, VoVNetSpec

__all__ = [
    "RANK_HEAD_NAMES",
    "FCOSConfig",
    "InputConfig",
    "PPAConfig",
    "ROIHeadsConfig",
    "RankHeadConfig",
    "ppa_config_from_official_yaml",
    "ppa_tiny_config",
    "ppa_v39_config",
]

RANK_HEAD_NAMES = (
    "SelfAttentionWithPosConvCat",
    "SelfAttentionWithPosCat",
    "SelfAttentionPredictor",
    "SinglePredictor",
    "SinglePredictorWithPos",
    "SelfAttentionWithOtherPos",
    "SelfAttentionWithOtherPosQuant",
)
"""Official SOR head names (``MODEL.SOR.NAME``); the first is the paper's PPA head."""

OFFICIAL_TEST_SCORE_THRESHOLD = 0.3
"""``train_sor.py::setup`` overrides ``FCOS.INFERENCE_TH_TEST`` with this before every evaluation."""


@dataclass
class FCOSConfig:
    """The FCOS detector head and its test-time post-processing (``MODEL.FCOS``)."""

    num_classes: int = 1
    in_features: tuple[str, ...] = ("p3", "p4", "p5", "p6", "p7")
    strides: tuple[int, ...] = (8, 16, 32, 64, 128)
    num_cls_convs: int = 4
    num_box_convs: int = 4
    num_share_convs: int = 0
    norm: str = "GN"
    """``"GN"`` (GroupNorm with 32 groups after every tower conv) or ``"none"``."""
    use_scale: bool = True
    prior_prob: float = 0.01
    score_threshold: float = OFFICIAL_TEST_SCORE_THRESHOLD
    """Class-probability threshold for candidate locations (``INFERENCE_TH_TEST``, forced to 0.3)."""
    pre_nms_topk: int = 1000
    """Candidates kept per pyramid level before NMS."""
    nms_threshold: float = 0.6
    post_nms_topk: int = 50
    """Detections kept per image after NMS (``POST_NMS_TOPK_TEST``)."""
    thresh_with_ctr: bool = False
    """Multiply the class probability by the centerness before thresholding."""
    score_threshold_train: float = 0.05
    """Candidate threshold of the proposals FCOS hands to the ROI heads in training (``INFERENCE_TH_TRAIN``)."""
    pre_nms_topk_train: int = 1000
    """Candidates kept per level before NMS in training (``PRE_NMS_TOPK_TRAIN``)."""
    post_nms_topk_train: int = 100
    """Proposals kept per image after NMS in training (``POST_NMS_TOPK_TRAIN``)."""


@dataclass
class ROIHeadsConfig:
    """CenterMask's ROI heads: pooling, the spatial-attention mask head and the MaskIoU head."""

    in_features: tuple[str, ...] = ("p3", "p4", "p5")
    num_classes: int = 1
    pooler_resolution: int = 14
    pooler_sampling_ratio: int = 0
    pooler_type: str = "ROIAlignV2"
    """``"ROIAlignV2"`` (aligned RoIAlign) or ``"ROIAlign"``."""
    assign_criterion: str = "ratio"
    """Pyramid-level assignment: ``"ratio"`` (CenterMask, box area relative to the image) or ``"area"`` (FPN)."""
    mask_conv_dim: int = 256
    mask_num_conv: int = 4
    mask_norm: str = ""
    cls_agnostic_mask: bool = False
    maskiou_conv_dim: int = 256
    maskiou_num_conv: int = 4
    mask_threshold: float = 0.5
    """Binarisation threshold of the pasted masks (``detector_postprocess``)."""
    proposal_iou_threshold: float = 0.5
    """Training: a proposal is foreground when its best IoU with a GT box is at least this
    (``ROI_HEADS.IOU_THRESHOLDS``; no low-quality matches)."""
    batch_size_per_image: int = 512
    """Training: proposals sampled per image (``ROI_HEADS.BATCH_SIZE_PER_IMAGE``)."""
    positive_fraction: float = 0.25
    """Training: at most this fraction of the sampled proposals is foreground (``ROI_HEADS.POSITIVE_FRACTION``)."""
    proposal_append_gt: bool = True
    """Training: the GT boxes join the proposals (``ROI_HEADS.PROPOSAL_APPEND_GT``)."""


@dataclass
class RankHeadConfig:
    """The SOR (ranking) head, ``MODEL.SOR``."""

    name: str = "SelfAttentionWithPosConvCat"
    """One of :data:`RANK_HEAD_NAMES`; see :mod:`salrank.modeling.ppa.rank_head` for what each adds."""
    num_ranks: int = 5
    conv_dim: int = 256
    num_conv: int = 4
    dense_dim: int = 1024
    obj_dim: int = 1024
    d_model: int = 1024
    n_head: int = 4
    num_layers: int = 4
    use_pos: bool = True
    """Append the two absolute-coordinate channels to the pooled features (``TRANSFORMER.USE_POS``)."""
    img_width: int = 640
    img_height: int = 480
    """The image size the official code hard-codes for its coordinates (``TRANSFORMER.IMG_WIDTH/HEIGHT``)."""
    quant_num: int = 4
    """Grid size of the quantised box-centre embedding (``SelfAttentionWithOtherPosQuant`` only)."""
    rank_threshold: float = 0.1
    """Minimum read-out probability for a detection to receive a rank."""


@dataclass
class InputConfig:
    """Test-time preprocessing (``INPUT`` and ``MODEL.PIXEL_*``)."""

    format: str = "BGR"
    pixel_mean: tuple[float, float, float] = (103.53, 116.28, 123.675)
    pixel_std: tuple[float, float, float] = (1.0, 1.0, 1.0)
    min_size_test: int = 480
    max_size_test: int = 1333


@dataclass
class PPAConfig:
    """Everything that defines a PPA model at inference time.

    The defaults are the released model: CenterMask with VoVNet-39-eSE, ``configs/sor/ppa.yaml``
    and the 0.3 test threshold of ``train_sor.py``.
    """

    vovnet: str = "V-39-eSE"
    """Name of the VoVNet (``MODEL.VOVNET.CONV_BODY``)."""
    vovnet_spec: VoVNetSpec | None = None
    """The VoVNet's stage spec; ``None`` looks ``vovnet`` up in the official table."""
    backbone_norm: str = "FrozenBN"
    backbone_out_features: tuple[str, ...] = ("stage3", "stage4", "stage5")
    fpn_out_channels: int = 256
    fpn_top_levels: int = 2
    fpn_fuse_type: str = "sum"
    fcos: FCOSConfig = field(default_factory=FCOSConfig)
    roi_heads: ROIHeadsConfig = field(default_factory=ROIHeadsConfig)
    rank_head: RankHeadConfig = field(default_factory=RankHeadConfig)
    input: InputConfig = field(default_factory=InputConfig)
    coordinate_frame: str = "image"
    """How absolute coordinates are normalised. ``"image"`` (salrank): by the size of the (resized)
    image being processed, so any size works; identical to the official model at 640x480.
    ``"official"``: by ``rank_head.img_width/img_height`` (640x480) as the official code does, which
    for the position channels only works on 640x480 inputs (other sizes raise an error)."""

    def resolved_vovnet_spec(self) -> VoVNetSpec:
        """The VoVNet spec to build: ``vovnet_spec`` or the official entry named ``vovnet``."""
        if self.vovnet_spec is not None:
            return self.vovnet_spec
        if self.vovnet not in VOVNET_SPECS:
            raise InputError(
                f"VoVNet {self.vovnet!r} is not an official spec ({', '.join(VOVNET_SPECS)}); "
                "give its stage spec as PPAConfig.vovnet_spec"
            )
        return VOVNET_SPECS[self.vovnet]

    def validate(self) -> None:
        """Raise :class:`InputError` for combinations the official model cannot build or run."""
        self.resolved_vovnet_spec()
        r, s = self.roi_heads, self.rank_head
        if s.name not in RANK_HEAD_NAMES:
            raise InputError(f"unknown SOR head {s.name!r}; official heads: {', '.join(RANK_HEAD_NAMES)}")
        if s.name in ("SelfAttentionWithPosConvCat", "SelfAttentionWithPosCat", "SinglePredictorWithPos") and not s.use_pos:
            raise InputError(f"SOR head {s.name} needs the position channels (MODEL.SOR.TRANSFORMER.USE_POS: True)")
        if r.mask_conv_dim != self.fpn_out_channels:
            raise InputError(
                f"ROI_MASK_HEAD.CONV_DIM ({r.mask_conv_dim}) must equal FPN.OUT_CHANNELS ({self.fpn_out_channels}): "
                "the official MaskIoU and SOR heads are built for CONV_DIM channels but receive pooled FPN features"
            )
        attention = s.name.startswith("SelfAttention")
        width = s.obj_dim + (4 if s.name == "SelfAttentionWithOtherPos" else 0)
        if attention and width != s.d_model:
            raise InputError(f"SOR head {s.name}: the transformer width D_MODEL ({s.d_model}) must equal {width}")
        if attention and s.d_model % s.n_head:
            raise InputError(f"SOR transformer: D_MODEL ({s.d_model}) must be divisible by N_HEAD ({s.n_head})")
        if r.assign_criterion not in ("ratio", "area"):
            raise InputError(f"unknown ROI level assignment {r.assign_criterion!r} (use 'ratio' or 'area')")
        if r.pooler_type not in ("ROIAlignV2", "ROIAlign"):
            raise InputError(f"unsupported ROI pooler {r.pooler_type!r} (use 'ROIAlignV2' or 'ROIAlign')")
        if self.coordinate_frame not in ("image", "official"):
            raise InputError(f"coordinate_frame must be 'image' or 'official', not {self.coordinate_frame!r}")
        if self.fcos.norm not in ("GN", "none"):
            raise InputError(f"FCOS.NORM must be 'GN' or 'none', not {self.fcos.norm!r}")
        if self.input.format not in ("BGR", "RGB"):
            raise InputError(f"INPUT.FORMAT must be 'BGR' or 'RGB', not {self.input.format!r}")


def ppa_v39_config() -> PPAConfig:
    """The released PPA model: centermask-V-39-eSE with the ``configs/sor/ppa.yaml`` SOR head."""
    return PPAConfig()


TINY_VOVNET_SPEC = VoVNetSpec(
    name="V-tiny-eSE",
    stem=(16, 16, 32),
    stage_conv_ch=(16, 24, 32, 40),
    stage_out_ch=(32, 64, 96, 128),
    layer_per_block=3,
    block_per_stage=(1, 1, 1, 1),
)
"""A narrow VoVNet for CPU tests and smoke runs (the official fixture's widths, fewer layers)."""


def ppa_tiny_config() -> PPAConfig:
    """A tiny PPA with the released model's structure (tests, CPU smoke training; not a real model).

    VoVNet :data:`TINY_VOVNET_SPEC`, 32-channel FPN and heads, a 2-layer 64-wide transformer (4 heads)
    and the paper's ``SelfAttentionWithPosConvCat`` rank head; everything else is the released config.
    """
    return PPAConfig(
        vovnet=TINY_VOVNET_SPEC.name,
        vovnet_spec=TINY_VOVNET_SPEC,
        fpn_out_channels=32,
        roi_heads=ROIHeadsConfig(mask_conv_dim=32, maskiou_conv_dim=32),
        rank_head=RankHeadConfig(conv_dim=32, dense_dim=64, obj_dim=64, d_model=64, n_head=4, num_layers=2),
    )


# --------------------------------------------------------------------------- official yaml
_REQUIRED = (
    # (key, detectron2/CenterMask default, value PPA needs, why)
    ("MODEL.MASK_ON", False, True, "PPA needs the mask branch (MODEL.MASK_ON: True)"),
    ("MODEL.MASKIOU_ON", False, True, "the PPA models use the MaskIoU head (MODEL.MASKIOU_ON: True)"),
    ("MODEL.KEYPOINT_ON", False, False, "keypoint heads are not part of PPA"),
    ("MODEL.FCOS.USE_DEFORMABLE", False, False, "deformable convolutions in the FCOS head are not supported"),
    ("MODEL.VOVNET.WITH_MODULATED_DCN", False, False, "deformable convolutions in VoVNet are not supported"),
)


def _tuple(value: Any) -> tuple:
    return tuple(value) if isinstance(value, (list, tuple)) else (value,)


def ppa_config_from_official_yaml(
    source: str | os.PathLike[str] | dict[str, Any],
    *,
    vovnet_spec: VoVNetSpec | dict[str, Any] | None = None,
    score_threshold: float | None = OFFICIAL_TEST_SCORE_THRESHOLD,
) -> PPAConfig:
    """Build a :class:`PPAConfig` from an official PPA yaml file (or its already-loaded dict).

    Args:
        source: ``configs/sor/*.yaml`` (``_BASE_`` is followed), a full ``cfg.dump()``, or a dict.
        vovnet_spec: the stage spec when ``MODEL.VOVNET.CONV_BODY`` names a spec that is not in the
            official table (the official code needs it added to ``_STAGE_SPECS``); a
            :class:`VoVNetSpec` or the official dict layout.
        score_threshold: the FCOS test threshold; by default the 0.3 that ``train_sor.py`` forces for
            evaluation. ``None`` keeps the file's ``MODEL.FCOS.INFERENCE_TH_TEST`` (default 0.05).

    Raises:
        InputError: the file is not a PPA/CenterMask config, or uses a variant salrank cannot build
            (ResNet Mask R-CNN ablations, deformable convolutions, keypoints).
    """
    cfg, path = read_official_config(source, "ppa", "PPA")

    def get(key: str, default: Any) -> Any:
        return cfg_get(cfg, key, default)

    meta = get("MODEL.META_ARCHITECTURE", "GeneralizedRCNN")
    # detectron2's defaults where the file is silent (the official base config sets all four)
    backbone_name = get("MODEL.BACKBONE.NAME", "build_resnet_backbone")
    generator = get("MODEL.PROPOSAL_GENERATOR.NAME", "RPN")
    roi_name = get("MODEL.ROI_HEADS.NAME", "Res5ROIHeads")
    mask_name = get("MODEL.ROI_MASK_HEAD.NAME", "MaskRCNNConvUpsampleHead")
    if meta != "GeneralizedRCNN" or generator != "FCOS" or roi_name != "CenterROIHeads":
        raise InputError(
            f"only the CenterMask (FCOS + CenterROIHeads) PPA models are supported; this config uses "
            f"{meta}/{generator}/{roi_name} (e.g. the ResNet Mask R-CNN ablations in configs/sor/exp/maskrcnn*.yaml)",
            path,
        )
    if backbone_name != "build_fcos_vovnet_fpn_backbone":
        raise InputError(f"only VoVNet backbones are supported (MODEL.BACKBONE.NAME is {backbone_name!r})", path)
    if mask_name != "SpatialAttentionMaskHead":
        raise InputError(f"only the SpatialAttentionMaskHead mask head is supported (got {mask_name!r})", path)
    for key, default, needed, why in _REQUIRED:
        if bool(get(key, default)) != needed:
            raise InputError(f"{key}={get(key, default)}: {why}", path)
    if any(bool(v) for v in _tuple(get("MODEL.VOVNET.STAGE_WITH_DCN", (False,) * 4))):
        raise InputError("MODEL.VOVNET.STAGE_WITH_DCN: deformable convolutions in VoVNet are not supported", path)
    fpn_norm = get("MODEL.FPN.NORM", "")
    if fpn_norm != "":
        raise InputError(f"MODEL.FPN.NORM={fpn_norm!r}: only FPNs without normalisation are supported", path)

    body = str(get("MODEL.VOVNET.CONV_BODY", "V-39-eSE"))
    spec: VoVNetSpec | None
    if isinstance(vovnet_spec, dict):
        spec = VoVNetSpec.from_dict({"name": body, **vovnet_spec})
    else:
        spec = vovnet_spec
    if spec is None and body not in VOVNET_SPECS:
        raise InputError(
            f"MODEL.VOVNET.CONV_BODY {body!r} is not an official VoVNet spec ({', '.join(VOVNET_SPECS)}); "
            "pass its stage spec with vovnet_spec=",
            path,
        )

    fcos_norm = get("MODEL.FCOS.NORM", "GN")
    fcos = FCOSConfig(
        num_classes=int(get("MODEL.FCOS.NUM_CLASSES", 1)),
        in_features=_tuple(get("MODEL.FCOS.IN_FEATURES", FCOSConfig.in_features)),
        strides=tuple(int(s) for s in _tuple(get("MODEL.FCOS.FPN_STRIDES", FCOSConfig.strides))),
        num_cls_convs=int(get("MODEL.FCOS.NUM_CLS_CONVS", 4)),
        num_box_convs=int(get("MODEL.FCOS.NUM_BOX_CONVS", 4)),
        num_share_convs=int(get("MODEL.FCOS.NUM_SHARE_CONVS", 0)),
        norm="none" if fcos_norm in ("none", "", None) else str(fcos_norm),
        use_scale=bool(get("MODEL.FCOS.USE_SCALE", True)),
        prior_prob=float(get("MODEL.FCOS.PRIOR_PROB", 0.01)),
        score_threshold=float(get("MODEL.FCOS.INFERENCE_TH_TEST", 0.05)) if score_threshold is None else float(score_threshold),
        pre_nms_topk=int(get("MODEL.FCOS.PRE_NMS_TOPK_TEST", 1000)),
        nms_threshold=float(get("MODEL.FCOS.NMS_TH", 0.6)),
        post_nms_topk=int(get("MODEL.FCOS.POST_NMS_TOPK_TEST", 100)),
        thresh_with_ctr=bool(get("MODEL.FCOS.THRESH_WITH_CTR", False)),
        score_threshold_train=float(get("MODEL.FCOS.INFERENCE_TH_TRAIN", 0.05)),
        pre_nms_topk_train=int(get("MODEL.FCOS.PRE_NMS_TOPK_TRAIN", 1000)),
        post_nms_topk_train=int(get("MODEL.FCOS.POST_NMS_TOPK_TRAIN", 100)),
    )
    roi = ROIHeadsConfig(
        in_features=_tuple(get("MODEL.ROI_HEADS.IN_FEATURES", ROIHeadsConfig.in_features)),
        num_classes=int(get("MODEL.ROI_HEADS.NUM_CLASSES", 80)),
        pooler_resolution=int(get("MODEL.ROI_MASK_HEAD.POOLER_RESOLUTION", 14)),
        pooler_sampling_ratio=int(get("MODEL.ROI_MASK_HEAD.POOLER_SAMPLING_RATIO", 0)),
        pooler_type=str(get("MODEL.ROI_MASK_HEAD.POOLER_TYPE", "ROIAlignV2")),
        assign_criterion=str(get("MODEL.ROI_MASK_HEAD.ASSIGN_CRITERION", "area")),
        mask_conv_dim=int(get("MODEL.ROI_MASK_HEAD.CONV_DIM", 256)),
        mask_num_conv=int(get("MODEL.ROI_MASK_HEAD.NUM_CONV", 0)),
        mask_norm=str(get("MODEL.ROI_MASK_HEAD.NORM", "")),
        cls_agnostic_mask=bool(get("MODEL.ROI_MASK_HEAD.CLS_AGNOSTIC_MASK", False)),
        maskiou_conv_dim=int(get("MODEL.ROI_MASKIOU_HEAD.CONV_DIM", 256)),
        maskiou_num_conv=int(get("MODEL.ROI_MASKIOU_HEAD.NUM_CONV", 4)),
        proposal_iou_threshold=float(_tuple(get("MODEL.ROI_HEADS.IOU_THRESHOLDS", (0.5,)))[0]),
        batch_size_per_image=int(get("MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE", 512)),
        positive_fraction=float(get("MODEL.ROI_HEADS.POSITIVE_FRACTION", 0.25)),
        proposal_append_gt=bool(get("MODEL.ROI_HEADS.PROPOSAL_APPEND_GT", True)),
    )
    rank = RankHeadConfig(
        name=str(get("MODEL.SOR.NAME", "SinglePredictor")),
        num_ranks=int(get("MODEL.SOR.NUM_RANKS", 5)),
        conv_dim=int(get("MODEL.SOR.CONV_DIM", 256)),
        num_conv=int(get("MODEL.SOR.NUM_CONV", 4)),
        dense_dim=int(get("MODEL.SOR.DENSE_DIM", 1024)),
        obj_dim=int(get("MODEL.SOR.OBJ_DIM", 1024)),
        d_model=int(get("MODEL.SOR.TRANSFORMER.D_MODEL", 256)),
        n_head=int(get("MODEL.SOR.TRANSFORMER.N_HEAD", 1)),
        num_layers=int(get("MODEL.SOR.TRANSFORMER.LAYERS", 1)),
        use_pos=bool(get("MODEL.SOR.TRANSFORMER.USE_POS", False)),
        img_width=int(get("MODEL.SOR.TRANSFORMER.IMG_WIDTH", 640)),
        img_height=int(get("MODEL.SOR.TRANSFORMER.IMG_HEIGHT", 480)),
        quant_num=int(get("MODEL.SOR.QUANT_NUM", 4)),
    )
    min_size = get("INPUT.MIN_SIZE_TEST", 800)
    inp = InputConfig(
        format=str(get("INPUT.FORMAT", "BGR")),
        pixel_mean=tuple(float(v) for v in get("MODEL.PIXEL_MEAN", InputConfig.pixel_mean)),  # type: ignore[arg-type]
        pixel_std=tuple(float(v) for v in get("MODEL.PIXEL_STD", InputConfig.pixel_std)),  # type: ignore[arg-type]
        min_size_test=int(min_size[0] if isinstance(min_size, (list, tuple)) else min_size),
        max_size_test=int(get("INPUT.MAX_SIZE_TEST", 1333)),
    )
    out = PPAConfig(
        vovnet=body,
        vovnet_spec=spec if spec is not None and (body not in VOVNET_SPECS or spec != VOVNET_SPECS[body]) else None,
        backbone_norm=str(get("MODEL.VOVNET.NORM", "FrozenBN")),
        backbone_out_features=_tuple(get("MODEL.VOVNET.OUT_FEATURES", ("stage2", "stage3", "stage4", "stage5"))),
        fpn_out_channels=int(get("MODEL.FPN.OUT_CHANNELS", 256)),
        fpn_top_levels=int(get("MODEL.FCOS.TOP_LEVELS", 2)),
        fpn_fuse_type=str(get("MODEL.FPN.FUSE_TYPE", "sum")),
        fcos=fcos,
        roi_heads=roi,
        rank_head=rank,
        input=inp,
    )
    fpn_in = _tuple(get("MODEL.FPN.IN_FEATURES", out.backbone_out_features))
    if tuple(fpn_in) != tuple(f for f in out.backbone_out_features if f in fpn_in) or not set(fpn_in) <= set(out.backbone_out_features):
        raise InputError(f"MODEL.FPN.IN_FEATURES {list(fpn_in)} must be among MODEL.VOVNET.OUT_FEATURES", path)
    out = replace(out, backbone_out_features=tuple(fpn_in))
    try:
        out.validate()
    except InputError as exc:
        raise InputError(exc.message, path) from None
    return out
