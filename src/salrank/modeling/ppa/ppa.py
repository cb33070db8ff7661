"""PPA: Salient Object Ranking with Position-Preserved Attention (Fang et al., ICCV 2021).

PPA is an instance-segmentation network with a ranking branch:

* a **VoVNet-eSE backbone** and an **FPN with P6/P7** give a five-level feature pyramid;
* **FCOS** detects the salient objects (one class) on P3-P7;
* **CenterMask's ROI heads** pool each detection from P3-P5 (level chosen by the box-to-image area
  ratio) and predict its 28x28 mask and a mask-quality score;
* the **Position-Preserved Attention head** ranks the detections: absolute-coordinate channels survive
  the ROI pooling, are fused with the object features, and a transformer over the image's detections
  predicts 5 rank classes, read out greedily into at most 5 ranked objects.

:class:`PPA` reproduces the official evaluation path (``GeneralizedRCNN`` in eval mode after
``train_sor.py::setup``) and returns :class:`~salrank.structures.RankedInstances`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from salrank.config import config_from_dict
from salrank.errors import InputError
from salrank.modeling.backbones.vovnet import VoVNet
from salrank.modeling.base import SORModel, eval_mode, named_images
from salrank.modeling.necks.fcos_fpn import FCOSFPN
from salrank.modeling.ppa.config import PPAConfig
from salrank.modeling.ppa.detections import PPADetections
from salrank.modeling.ppa.fcos import FCOSHead, fcos_detections, fcos_locations
from salrank.modeling.ppa.postprocess import paste_masks_in_image, postprocess_boxes
from salrank.modeling.ppa.preprocess import normalize_and_pad, to_model_input
from salrank.modeling.ppa.roi_heads import CenterMaskROIHeads
from salrank.modeling.ppa.training import (
    ImageROIOutputs,
    PPATrainOutputs,
    PPATrainTargets,
    label_proposals,
    sample_foreground,
    train_proposals,
)
from salrank.modeling.registry import register_model
from salrank.structures import RankedInstances

__all__ = ["PPA", "PPAPrediction", "build_ppa"]

logger = logging.getLogger(__name__)


class PPAPrediction:
    """Everything PPA predicts for one image, at the original image size (all detections).

    ``detections`` holds the network outputs (at the network-input resolution, see
    :class:`PPADetections`; ``detections.pred_ranks``: 4 = most salient ... 0, -1 = unranked) and
    ``boxes`` the same boxes scaled to the output size and clipped. Detections whose box became empty
    there have been dropped (as detectron2's ``detector_postprocess`` does); ``detection_index`` maps
    each row back to the post-NMS FCOS detections. :meth:`masks` pastes masks on demand.
    """

    def __init__(self, det: PPADetections, boxes: Tensor, keep: Tensor, output_hw: tuple[int, int], mask_threshold: float) -> None:
        self.height, self.width = output_hw
        self.detection_index = torch.nonzero(keep).squeeze(1)
        kept = det.select(self.detection_index)
        self.detections = kept
        self.boxes = boxes[self.detection_index]
        self.mask_threshold = mask_threshold

    def __len__(self) -> int:
        return len(self.detections)

    def masks(self, index: Tensor | None = None) -> Tensor:
        """``bool`` ``(n, H, W)`` pasted masks of the detections at ``index`` (all by default)."""
        det = self.detections
        if det.mask_probs is None:
            raise ValueError("no masks were predicted")
        idx = torch.arange(len(det), device=det.mask_probs.device) if index is None else index
        return paste_masks_in_image(det.mask_probs[idx, 0], self.boxes[idx], (self.height, self.width), self.mask_threshold)


class PPA(SORModel):
    """The PPA network (see the module docstring). Build it with :func:`build_ppa` or ``PPA(cfg)``."""

    architecture = "ppa"
    has_keypoints = False

    def __init__(self, cfg: PPAConfig | None = None) -> None:
        super().__init__()
        cfg = cfg if cfg is not None else PPAConfig()
        cfg.validate()
        self.cfg = cfg
        self.backbone = VoVNet(cfg.resolved_vovnet_spec(), cfg.backbone_norm, cfg.backbone_out_features)
        shapes = self.backbone.output_shape()
        self.neck = FCOSFPN(
            [shapes[f].channels for f in cfg.backbone_out_features],
            [shapes[f].stride for f in cfg.backbone_out_features],
            cfg.fpn_out_channels,
            cfg.fpn_top_levels,
            cfg.fpn_fuse_type,
        )
        for name, stride in zip(cfg.fcos.in_features, cfg.fcos.strides):
            if self.neck.out_strides.get(name) != stride:
                raise InputError(f"FCOS input {name} with stride {stride} is not an FPN output ({self.neck.out_strides})")
        missing = set(cfg.roi_heads.in_features) - set(self.neck.out_strides)
        if missing:
            raise InputError(f"ROI_HEADS.IN_FEATURES {sorted(missing)} are not FPN outputs ({list(self.neck.out_strides)})")
        self.fcos = FCOSHead(cfg.fcos, cfg.fpn_out_channels)
        self.roi_heads = CenterMaskROIHeads(cfg, self.neck.out_strides)
        self.register_buffer("pixel_mean", torch.tensor(cfg.input.pixel_mean, dtype=torch.float32).view(3, 1, 1), persistent=False)
        self.register_buffer("pixel_std", torch.tensor(cfg.input.pixel_std, dtype=torch.float32).view(3, 1, 1), persistent=False)
        self.size_divisibility = self.neck.size_divisibility
        self.channels_last = False
        self.set_channels_last(True)

    def optimize_for_inference(self) -> dict[str, int]:
        """Frozen BatchNorm folded into the VoVNet convs and fused FCOS towers (same outputs; see
        :func:`~salrank.modeling.ppa.inference_forms.optimize_ppa_for_inference`)."""
        from salrank.modeling.ppa.inference_forms import optimize_ppa_for_inference

        return optimize_ppa_for_inference(self)

    def set_channels_last(self, enabled: bool = True) -> PPA:
        """Run the convolutions in NHWC ("channels last") layout (the default) or in NCHW.

        NHWC is about 10 % faster on CPU with oneDNN (no layout reorders between layers); it sums in a
        different order, so values differ from the official model's at the float-rounding level
        (~1e-5 on logits, no detection, mask or rank changes on the fixture). NCHW runs the exact
        kernels of the official model (bit-identical outputs on the same CPU and thread count).
        """
        self.channels_last = bool(enabled)
        fmt = torch.channels_last if enabled else torch.contiguous_format
        for param in self.parameters():
            if param.dim() == 4:
                param.data = param.data.contiguous(memory_format=fmt)
        return self

    # ------------------------------------------------------------------ network
    def forward(self, images: Tensor, image_sizes: Sequence[tuple[int, int]]) -> list[PPADetections]:
        """Detections (with masks and ranks) for a normalised, padded batch ``(B, 3, H, W)``.

        ``image_sizes`` are the ``(h, w)`` of each image before padding. Each image's detections form
        their own ranking sequence (the official test path assumes one image per batch).
        """
        return [self._run(images, image_sizes, i) for i in range(images.shape[0])]

    def _run(self, images: Tensor, image_sizes: Sequence[tuple[int, int]], i: int, record: dict[str, Any] | None = None) -> PPADetections:
        x = images[i : i + 1]
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        stages = self.backbone(x)
        pyramid = self.neck([stages[f] for f in self.cfg.backbone_out_features])
        levels = [pyramid[f] for f in self.cfg.fcos.in_features]
        outputs = self.fcos(levels)
        locations = fcos_locations([tuple(f.shape[-2:]) for f in levels], self.cfg.fcos.strides, x.device)
        det = fcos_detections(locations, outputs, self.cfg.fcos.strides, tuple(image_sizes[i]), self.cfg.fcos)
        if record is not None:
            record.update({f"backbone.{k}": v for k, v in stages.items()})
            record.update({f"fpn.{k}": v for k, v in pyramid.items()})
            record["fcos_head.cls_logits"], record["fcos_head.bbox_reg"], record["fcos_head.ctrness_logits"] = outputs
            record["detections_before_roi_heads"] = det.select(torch.arange(len(det), device=det.boxes.device))
        return self.roi_heads(pyramid, det, record)

    # ------------------------------------------------------------------ training
    def prepare_train_images(self, images: Tensor | Sequence[Tensor]) -> tuple[Tensor, list[tuple[int, int]]]:
        """A normalised, padded batch from RGB ``uint8`` ``(3, H_i, W_i)`` training images, and their sizes.

        The images are already resized (shortest edge) and flipped by the data pipeline; this puts them
        in the model's channel order (BGR for the released model), subtracts the pixel mean, divides by
        the pixel std and pads bottom/right to the size divisibility, as ``GeneralizedRCNN`` does.
        """
        items = list(images) if isinstance(images, (list, tuple)) else list(images.unbind(0))
        if self.cfg.input.format == "BGR":
            items = [im.flip(0) for im in items]
        sizes = [(int(im.shape[-2]), int(im.shape[-1])) for im in items]
        batch = normalize_and_pad([im.float() for im in items], self.pixel_mean, self.pixel_std, self.size_divisibility)
        return batch, sizes

    def forward_train(self, images: Tensor, image_sizes: Sequence[tuple[int, int]], targets: Sequence[PPATrainTargets]) -> PPATrainOutputs:
        """The training forward (see :mod:`salrank.modeling.ppa.training`) of a normalised, padded batch.

        The backbone, FPN and FCOS run on the whole batch; proposals, their labelling and sampling and
        the ROI heads run image by image (each image's proposals form their own ranking sequence).
        """
        x = images.contiguous(memory_format=torch.channels_last) if self.channels_last else images
        stages = self.backbone(x)
        pyramid = self.neck([stages[f] for f in self.cfg.backbone_out_features])
        levels = [pyramid[f] for f in self.cfg.fcos.in_features]
        outputs = self.fcos(levels)
        strides = tuple(self.cfg.fcos.strides)
        locations = fcos_locations([tuple(f.shape[-2:]) for f in levels], strides, x.device)
        r = self.cfg.roi_heads
        rois = []
        for i, target in enumerate(targets):
            size = (int(image_sizes[i][0]), int(image_sizes[i][1]))
            proposals = train_proposals(locations, outputs, strides, size, self.cfg.fcos, i)
            num_proposals = int(proposals.shape[0])
            gt_boxes = target.boxes.to(proposals.dtype)
            if r.proposal_append_gt:
                proposals = torch.cat((proposals, gt_boxes), dim=0)
            matched, foreground = label_proposals(proposals, gt_boxes, r.proposal_iou_threshold)
            keep = sample_foreground(foreground, r.batch_size_per_image, r.positive_fraction)
            boxes, matched = proposals[keep], matched[keep]
            if keep.numel():
                features = {name: pyramid[name][i : i + 1] for name in r.in_features}
                mask_logits, maskiou, sor_logits = self.roi_heads.forward_train(features, boxes, size)
            else:
                m = 2 * r.pooler_resolution
                mask_logits = boxes.new_zeros((0, m, m))
                maskiou = boxes.new_zeros((0,))
                sor_logits = boxes.new_zeros((0, self.cfg.rank_head.num_ranks))
            rois.append(
                ImageROIOutputs(
                    proposal_boxes=boxes,
                    matched_gt=matched,
                    rank_targets=target.rank_classes.to(matched.device)[matched] if keep.numel() else matched,
                    mask_logits=mask_logits,
                    maskiou=maskiou,
                    sor_logits=sor_logits,
                    num_proposals=num_proposals,
                )
            )
        return PPATrainOutputs(fcos=outputs, locations=locations, strides=strides, image_sizes=[tuple(s) for s in image_sizes], rois=rois)

    @torch.no_grad()
    def run_image(self, image: Tensor, output_hw: tuple[int, int] | None = None, record: dict[str, Any] | None = None) -> PPAPrediction:
        """Run on one image already in the model's format and size (``(3, H, W)``, BGR, 0-255).

        This is the official ``model([{"image": image, "height": ..., "width": ...}])`` call:
        ``output_hw`` (default: the input size) is where boxes and masks are brought back to.
        """
        if self.training:
            raise RuntimeError("run_image is an inference method; call model.eval() first")
        image_size = (int(image.shape[-2]), int(image.shape[-1]))
        batch = normalize_and_pad([image], self.pixel_mean, self.pixel_std, self.size_divisibility)
        det = self._run(batch, [image_size], 0, record)
        out_hw = image_size if output_hw is None else (int(output_hw[0]), int(output_hw[1]))
        boxes, keep = postprocess_boxes(det.boxes, image_size, out_hw)
        return PPAPrediction(det, boxes, keep, out_hw, self.cfg.roi_heads.mask_threshold)

    # ------------------------------------------------------------------ public API
    def preprocess(self, image_rgb: np.ndarray) -> Tensor:
        """The official test-time input for an RGB ``uint8`` photo: channel order and shortest-edge resize."""
        c = self.cfg.input
        return to_model_input(image_rgb, c.format, c.min_size_test, c.max_size_test)

    @torch.no_grad()
    def predict(self, images: Sequence[np.ndarray], names: Sequence[str] | None = None) -> list[RankedInstances]:
        """Rank the salient objects of RGB ``uint8`` ``(H, W, 3)`` images (see :func:`to_ranked_instances`)."""
        results = []
        with eval_mode(self):
            for name, image in named_images(images, names):
                tensor = self.preprocess(image).to(self.device)
                prediction = self.run_image(tensor, output_hw=image.shape[:2])
                result = to_ranked_instances(prediction, name, num_ranks=self.cfg.rank_head.num_ranks)
                logger.debug("%s: %d detections, %d ranked", name, len(prediction), len(result))
                results.append(result)
        return results


def rank_saliency(rank_class: np.ndarray, num_ranks: int = 5) -> np.ndarray:
    """The ASSR rank value of an official rank class: 1.0 for the most salient class, 0.1 less per step.

    With 5 ranks this is ``(r + 6) / 10`` (1.0, 0.9, 0.8, 0.7, 0.6), the grey level the official
    visualiser paints into the rank map and the ``rank_order`` convention of the ASSR annotations.
    """
    return (1.0 - 0.1 * (num_ranks - 1 - rank_class.astype(np.float64))).astype(np.float32)


def to_ranked_instances(prediction: PPAPrediction, name: str, num_ranks: int = 5, model: str = "ppa") -> RankedInstances:
    """The ranked detections of a :class:`PPAPrediction`, most salient first.

    * ``scores``: the FCOS detection score (``sqrt(class probability x centerness)``), the confidence
      the official instances carry as ``scores``; the MaskIoU-calibrated ``mask_scores`` are in extras.
    * ``saliency``: :func:`rank_saliency` of the official rank class (1.0 for rank 1, 0.9, ...; a rank
      class the read-out skipped leaves its gap, exactly as the official rank map does).
    * ``extras``: ``rank_class`` (official ``pred_ranks``, 4 = most salient), ``rank_probability``
      (read-out probability), ``mask_scores``, ``maskiou``, ``sor_logits``, ``detection_index`` and
      ``unranked``: the same fields (plus ``boxes`` and ``scores``) for the detections without a rank.
    """
    det = prediction.detections
    n = len(det)
    if n == 0 or det.pred_ranks is None:
        out = RankedInstances.empty(name, prediction.height, prediction.width, model=model)
        out.extras.update(rank_class=np.zeros(0, np.int64), unranked=_detection_fields(prediction, torch.zeros(0, dtype=torch.int64)))
        return out
    ranks = det.pred_ranks.cpu()
    ranked = torch.nonzero(ranks >= 0).squeeze(1)
    ranked = ranked[torch.argsort(ranks[ranked], descending=True, stable=True)]
    unranked = torch.nonzero(ranks < 0).squeeze(1)
    masks = prediction.masks(ranked.to(det.boxes.device)).cpu().numpy()
    rank_class = ranks[ranked].numpy()
    fields = _detection_fields(prediction, ranked)
    result = RankedInstances(
        image_name=name,
        height=prediction.height,
        width=prediction.width,
        masks=masks,
        scores=fields.pop("scores"),
        saliency=rank_saliency(rank_class, num_ranks),
        boxes=fields.pop("boxes"),
        model=model,
    )
    result.extras.update(rank_class=rank_class, **fields, unranked=_detection_fields(prediction, unranked))
    return result


def _detection_fields(prediction: PPAPrediction, index: Tensor) -> dict[str, np.ndarray]:
    det = prediction.detections

    def arr(t: Tensor | None) -> np.ndarray:
        return np.zeros(0, np.float32) if t is None else t[index.to(t.device)].detach().cpu().numpy()

    return {
        "boxes": arr(prediction.boxes),
        "scores": arr(det.scores),
        "mask_scores": arr(det.mask_scores),
        "maskiou": arr(det.maskiou),
        "sor_logits": arr(det.sor_logits),
        "rank_probability": arr(det.rank_probs),
        "detection_index": arr(prediction.detection_index),
    }


@register_model("ppa")
def build_ppa(cfg: PPAConfig | dict[str, Any] | None = None) -> PPA:
    """A PPA model (eval mode) with random weights; load official ones with ``load_official_ppa_checkpoint``.

    ``cfg`` is a :class:`PPAConfig`, its dict form (``config_to_dict``) or ``None`` for the released model.
    """
    if isinstance(cfg, dict):
        cfg = config_from_dict(PPAConfig, cfg)
    model = PPA(cfg)
    model.eval()
    return model
