"""PoseSOR: Human Pose Can Guide Our Attention (Guan & Lau, ECCV 2024), without detectron2.

The network ranks salient objects by reasoning about the people in the image:

* a **Swin-L backbone**, an **FPN neck** and a learned positional encoding (APE) give ``res2 .. res5``
  maps of 256 channels (shared blocks of :mod:`salrank.modeling.backbones` / ``necks`` / ``layers``);
* the **SIS decoder** (:mod:`.sis_decoder`) turns 100 queries into object proposals with an objectness;
* the **query selection** (:mod:`.query_selection`) keeps the likely objects;
* **Pose-Aware Interaction** (:mod:`.pose_interaction`) gives each object 17 joint tokens, lets them
  read the object's region and meet the scene, and predicts heatmaps, keypoints, refined masks and boxes;
* **Pose-Driven Ranking** (:mod:`.pose_ranking`) predicts where attention goes after each object and a
  20-way rank class;
* the **read-out** (:mod:`.readout`) turns rank classes into rank scores, orders the objects, and merges
  duplicates.

:class:`PoseSOR` implements :class:`~salrank.modeling.base.SORModel`: ``predict`` takes RGB photos and
returns :class:`~salrank.structures.RankedInstances` with masks, scores (objectness), saliency (rank
score), boxes and 17 keypoints per object (pixels + visibility). ``forward`` is the batched network for
training: it returns the SIS output; :meth:`PoseSOR.interact_and_rank` runs PAI and PDR on given object
slots (training: the Hungarian-matched queries in ground-truth order; inference: the selected hits).

Training note (for the loss code, not implemented here): the official training flips images with
probability 0.5 and maps keypoint ``x`` to ``1 - x`` **without swapping left/right joints**, so the
released models learned mirrored joint identities on half their samples; keep or fix this knowingly.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
import torch
from torch import Tensor

from salrank.modeling.backbones import build_backbone
from salrank.modeling.base import SORModel, eval_mode, named_images
from salrank.modeling.layers import LearnablePE
from salrank.modeling.necks import build_neck
from salrank.modeling.posesor.config import PoseSORConfig
from salrank.modeling.posesor.pose_interaction import PAIOutput, PoseAwareInteraction
from salrank.modeling.posesor.pose_ranking import PDROutput, PoseDrivenRanking
from salrank.modeling.posesor.query_selection import (
    QuerySlots,
    gather_query_slots,
    select_hit_queries,
)
from salrank.modeling.posesor.readout import (
    boxes_to_pixels,
    heatmap_argmax,
    merge_duplicates,
    rank_scores,
    upsample_masks,
)
from salrank.modeling.posesor.sis_decoder import SISDecoder, SISOutput
from salrank.modeling.registry import register_model
from salrank.structures import RankedInstances

__all__ = ["PoseSOR", "PoseSORFeatures", "PoseSORPrediction", "build_posesor", "resize_for_posesor"]

logger = logging.getLogger(__name__)


@dataclass
class PoseSORFeatures:
    """The neck features of a batch and their positional encodings (``{"res2": (B, C, H/4, W/4), ...}``)."""

    feats: dict[str, Tensor]
    pe: dict[str, Tensor]


@dataclass
class PoseSORPrediction:
    """Everything PoseSOR predicts for one image, before conversion to :class:`RankedInstances`.

    Lists and arrays are in final rank order (after the duplicate merge). Coordinates are pixels of the
    original image.
    """

    image_name: str
    height: int
    width: int
    masks: np.ndarray
    """``bool`` ``(N, H, W)``."""
    scores: np.ndarray
    """``(N,)`` objectness probability (the max over merged objects)."""
    saliency: np.ndarray
    """``(N,)`` rank score."""
    boxes: np.ndarray
    """``(N, 4)`` ``x1 y1 x2 y2`` pixels (PAI box head)."""
    joints: np.ndarray
    """``(N, 17, 3)`` heatmap-argmax joints: ``x, y`` pixels and the visibility probability."""
    explicit_joints: np.ndarray
    """``(N, 17, 3)`` the keypoint head's joints: ``x, y`` pixels and the visibility probability."""
    query_index: np.ndarray
    """``(N,)`` SIS query of each object."""
    merged_queries: list[list[int]]
    """For each object, the SIS queries merged into it (itself first)."""
    rank_probabilities: np.ndarray
    """``(N, L)`` softmax of the rank logits."""
    extras: dict[str, Any] = field(default_factory=dict)

    def to_ranked_instances(self, model: str = "posesor") -> RankedInstances:
        """The result as :class:`RankedInstances`: ``keypoints`` are the heatmap-argmax joints; ``extras``
        hold ``explicit_keypoints``, ``query_index``, ``merged_queries``, ``rank_probabilities`` and
        whatever was requested (``partitions``, ``partition_logits``, ``heatmaps``)."""
        result = RankedInstances(
            image_name=self.image_name,
            height=self.height,
            width=self.width,
            masks=self.masks,
            scores=self.scores,
            saliency=self.saliency,
            boxes=self.boxes,
            keypoints=self.joints,
            model=model,
        )
        result.extras.update(
            explicit_keypoints=self.explicit_joints,
            query_index=self.query_index,
            merged_queries=self.merged_queries,
            rank_probabilities=self.rank_probabilities,
            **self.extras,
        )
        return result


def resize_for_posesor(image_rgb: np.ndarray, size: int) -> np.ndarray:
    """The official test mapper's resize: ``size x size`` with cv2 bilinear (albumentations ``Resize``),
    aspect ratio not kept. ``uint8`` ``(H, W, 3)`` -> ``uint8`` ``(size, size, 3)``."""
    return cv2.resize(image_rgb, (size, size), interpolation=cv2.INTER_LINEAR)


class PoseSOR(SORModel):
    """The PoseSOR network (see the module docstring). Build it with :func:`build_posesor`."""

    architecture = "posesor"
    has_keypoints = True
    return_partitions: bool = False
    """Default of :meth:`predict`'s ``return_partitions`` (set it on a model a Predictor wraps)."""
    return_heatmaps: bool = False
    """Default of :meth:`predict`'s ``return_heatmaps``."""

    def __init__(self, cfg: PoseSORConfig | None = None) -> None:
        super().__init__()
        cfg = cfg if cfg is not None else PoseSORConfig()
        cfg.validate()
        self.cfg = cfg
        self.backbone = build_backbone(cfg.backbone.config)
        self.neck = build_neck(cfg.neck_config())
        self.pos_embed = LearnablePE(cfg.embed_dim)
        self.sis_decoder = SISDecoder(
            num_queries=cfg.num_queries,
            embed_dim=cfg.embed_dim,
            num_heads=cfg.num_heads,
            hidden_dim=cfg.hidden_dim,
            num_blocks=cfg.sis.num_blocks,
            key_features=cfg.sis.key_features,
            mask_key=cfg.sis.mask_key,
            dropout_attn=cfg.dropout_attn,
            dropout_ffn=cfg.dropout_ffn,
        )
        self.pose_interaction = PoseAwareInteraction(
            cfg.pai,
            num_joints=cfg.num_joints,
            embed_dim=cfg.embed_dim,
            num_heads=cfg.num_heads,
            hidden_dim=cfg.hidden_dim,
            dropout_attn=cfg.dropout_attn,
            dropout_ffn=cfg.dropout_ffn,
            gated_attention=cfg.gated_attention,
        )
        self.pose_ranking = PoseDrivenRanking(
            cfg.pdr,
            num_joints=cfg.num_joints,
            embed_dim=cfg.embed_dim,
            hidden_dim=cfg.hidden_dim,
            max_rank_level=cfg.max_rank_level,
            pairwise=cfg.pairwise,
        )
        self.register_buffer("pixel_mean", torch.tensor(cfg.input.pixel_mean, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("pixel_std", torch.tensor(cfg.input.pixel_std, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)

    # ------------------------------------------------------------------ network
    def normalize(self, images: Tensor) -> Tensor:
        """``(B, 3, H, W)`` RGB on the 0-255 scale -> the network's input (``(x - mean) / std``)."""
        return (images.to(self.pixel_mean.dtype) - self.pixel_mean) / self.pixel_std

    def features(self, images: Tensor) -> PoseSORFeatures:
        """Backbone + neck + APE of a normalised batch."""
        feats = self.neck(self.backbone(images))
        return PoseSORFeatures(feats=feats, pe={k: self.pos_embed(v) for k, v in feats.items()})

    def forward(self, images: Tensor, *, all_predictions: bool = True, masks: bool = True) -> tuple[SISOutput, PoseSORFeatures]:
        """The SIS stage of a normalised batch ``(B, 3, H, W)`` (training entry point).

        Returns the SIS output (per-block predictions when ``all_predictions``) and the features that
        :meth:`interact_and_rank` needs.
        """
        features = self.features(images)
        sis = self.sis_decoder(features.feats, features.pe, all_predictions=all_predictions, masks=masks)
        return sis, features

    def select_slots(self, sis: SISOutput, *, pad_pe: str = "random", generator: torch.Generator | None = None) -> QuerySlots:
        """The inference query selection (objectness ``>= min(top-1 - 1e-6, TEST.OBJ_THRESHOLD)``) packed into slots."""
        bi, qi, ti, n = select_hit_queries(sis.out.scores.float(), self.cfg.test.obj_threshold)
        return gather_query_slots(sis.q, sis.qpe, bi, qi, ti, n, pad_pe=pad_pe, generator=generator)

    def interact_and_rank(
        self, slots: QuerySlots, features: PoseSORFeatures, *, all_predictions: bool = True, heatmaps: str = "all"
    ) -> tuple[PAIOutput, PDROutput]:
        """PAI and PDR on object slots (training: matched queries in GT order; inference: hits)."""
        pai = self.pose_interaction(
            slots.q, slots.qpe, features.feats, features.pe, slots.mask, all_predictions=all_predictions, heatmaps=heatmaps
        )
        pdr = self.pose_ranking(pai.q, pai.pose, features.feats, slots.mask)
        return pai, pdr

    # ------------------------------------------------------------------ inference
    def preprocess(self, image_rgb: np.ndarray) -> Tensor:
        """The official test input of an RGB ``uint8`` photo: ``(3, S, S)`` float32 on the 0-255 scale."""
        resized = resize_for_posesor(image_rgb, self.cfg.input.test_image_size)
        return torch.from_numpy(np.ascontiguousarray(resized)).permute(2, 0, 1).float()

    @torch.no_grad()
    def run_image(
        self,
        image: Tensor,
        output_size: tuple[int, int],
        name: str = "image",
        *,
        return_partitions: bool = False,
        return_heatmaps: bool = False,
        record: dict[str, Any] | None = None,
    ) -> PoseSORPrediction:
        """The official inference on one preprocessed image ``(3, S, S)`` (0-255 RGB), results at ``output_size``.

        Args:
            image: the model input (:meth:`preprocess`).
            output_size: ``(H, W)`` of the original image.
            name: image name for the result.
            return_partitions: add ``partitions`` (sigmoid, ``(N, S/8, S/8)`` at the PDR feature resolution)
                and ``partition_logits`` to the extras. The official code returns them resized to the image;
                :func:`salrank.modeling.posesor.partition_maps` does that on demand.
            return_heatmaps: add the low-resolution joint heatmap logits ``(N, 17, S/4, S/4)`` to the extras
                (large: 17 maps per object).
            record: a dict to fill with the official intermediates (SIS per block, PAI with heatmaps and
                aux predictions, PDR, rank scores, pre-merge read-out) for fidelity checks. Slower.
        """
        if self.training:
            raise RuntimeError("run_image is an inference method; call model.eval() first")
        height, width = int(output_size[0]), int(output_size[1])
        cfg = self.cfg
        full = record is not None
        x = self.normalize(image.unsqueeze(0).to(self.pixel_mean.device))
        sis, features = self.forward(x, all_predictions=full, masks=full)
        slots = self.select_slots(sis)
        pai, pdr = self.interact_and_rank(slots, features, all_predictions=full, heatmaps="last" if full else "none")
        n = slots.num_slots

        # the read-out always works on float32 values (the heads may have run under autocast)
        scores_all = rank_scores(pdr.ranks[0].float())  # n
        order = torch.argsort(-scores_all)
        objectness = sis.out.scores[0, slots.query_index, 0].float().sigmoid()  # slot order (B = 1: slot = hit order)
        masks = upsample_masks(pai.out.masks[0, order].float(), height, width, cfg.test.mask_threshold)
        feature = pai.head_feature[0]
        pose = pai.pose[0, order]
        head = self.pose_interaction.head

        if pai.out.heatmaps is not None:
            joint_xy = heatmap_argmax(pai.out.heatmaps[0, order].float(), n, height, width, cfg.joint_argmax)
        else:
            joint_xy = heatmap_argmax(lambda idx: head.heatmap_logits(pose[list(idx)], feature).float(), n, height, width, cfg.joint_argmax)
        keypoints = pai.out.keypoints[0, order].float().sigmoid()  # n, K, 3 (x/W, y/H, visibility)
        boxes = boxes_to_pixels(pai.out.boxes[0, order].float(), height, width)
        joints = torch.cat([joint_xy.float(), keypoints[:, :, 2:3].cpu()], dim=-1)
        explicit = keypoints.cpu().clone()
        explicit[:, :, 0] *= width
        explicit[:, :, 1] *= height
        obj = objectness[order].cpu()
        sal = scores_all[order].cpu()
        query_index = slots.query_index[order].cpu()

        if record is not None:
            self._record(record, sis, slots, pai, pdr, scores_all, order, obj, sal, joints, keypoints, boxes, masks, height, width)

        score_list = [float(v) for v in obj]
        if cfg.test.merge:
            kept, merged_masks, merged_scores, groups = merge_duplicates(masks, score_list, cfg.test.maskness_threshold)
        else:
            kept, merged_masks, merged_scores, groups = list(range(n)), masks, score_list, [[i] for i in range(n)]
        if record is not None:
            record["pre_post_process.kept_index_after_post_process"] = torch.tensor(kept, dtype=torch.int64)
        keep = torch.tensor(kept, dtype=torch.int64)
        extras: dict[str, Any] = {}
        if return_partitions:
            logits = pdr.partitions[0, order][keep].float().cpu()
            extras["partition_logits"] = logits.numpy()
            extras["partitions"] = logits.sigmoid().numpy()
        if return_heatmaps:
            maps = pai.out.heatmaps[0, order] if pai.out.heatmaps is not None else head.heatmap_logits(pose, feature)
            extras["heatmaps"] = maps[keep].float().cpu().numpy()
        q_order = query_index.numpy()
        return PoseSORPrediction(
            image_name=name,
            height=height,
            width=width,
            masks=merged_masks,
            scores=np.asarray(merged_scores, dtype=np.float32),
            saliency=sal[keep].numpy().astype(np.float32),
            boxes=boxes[keep].numpy().astype(np.float32),
            joints=joints[keep].numpy().astype(np.float32),
            explicit_joints=explicit[keep].numpy().astype(np.float32),
            query_index=q_order[kept],
            merged_queries=[[int(q_order[g]) for g in group] for group in groups],
            rank_probabilities=torch.softmax(pdr.ranks[0, order][keep].float(), dim=-1).cpu().numpy(),
            extras=extras,
        )

    @staticmethod
    def _record(
        record: dict[str, Any], sis: SISOutput, slots: QuerySlots, pai: PAIOutput, pdr: PDROutput, scores_all: Tensor,
        order: Tensor, obj: Tensor, sal: Tensor, joints: Tensor, keypoints: Tensor, boxes: Tensor, masks: np.ndarray,
        height: int, width: int,
    ) -> None:
        """Fill ``record`` with the official intermediates under the fixture's names (``expected.pt``)."""
        def pai_dict(p: Any) -> dict[str, Tensor]:
            d = {"keypoints": p.keypoints, "masks": p.masks, "bboxes": p.boxes}
            if p.heatmaps is not None:
                d["heatmaps"] = p.heatmaps
            return d

        record.update({
            "sis.q": sis.q, "sis.qpe": sis.qpe,
            "sis.out": {"masks": sis.out.masks, "scores": sis.out.scores},
            "sis.aux": [{"masks": p.masks, "scores": p.scores} for p in sis.aux],
            "hit_queries": slots.query_index,
            "pai.in_q_hit": slots.q, "pai.in_qpe_hit": slots.qpe, "pai.in_q_mask": slots.mask,
            "pai.pose": pai.pose, "pai.pose_pe": pai.pose_pe, "pai.q": pai.q, "pai.qpe": pai.qpe,
            "pai.out": pai_dict(pai.out), "pai.aux": [pai_dict(p) for p in pai.aux],
            "pdr.partitions": pdr.partitions, "pdr.ranks": pdr.ranks, "pdr.q": pdr.q, "pdr.nxt": pdr.nxt,
            "rank_scores": scores_all, "order_by_rank_score": order,
            "pre_post_process.num": int(order.numel()),
            "pre_post_process.scores": obj, "pre_post_process.saliency": sal,
            "pre_post_process.joints": torch.stack([joints[..., 0] / width, joints[..., 1] / height, joints[..., 2]], dim=-1),
            "pre_post_process.explict_joints": keypoints.cpu(),
            "pre_post_process.bboxes": boxes,
            "pre_post_process.mask_areas": torch.from_numpy(masks.reshape(masks.shape[0], -1).sum(axis=1).astype(np.float32)),
        })  # fmt: skip

    @torch.no_grad()
    def predict(
        self,
        images: Sequence[np.ndarray],
        names: Sequence[str] | None = None,
        *,
        return_partitions: bool | None = None,
        return_heatmaps: bool | None = None,
    ) -> list[RankedInstances]:
        """Rank the salient objects of RGB ``uint8`` ``(H, W, 3)`` images, one at a time (as the official
        evaluation, whose batches hold one image).

        Each result carries ``keypoints`` (heatmap-argmax joints, pixels + visibility) and in ``extras``:
        ``explicit_keypoints`` (the keypoint head's joints, pixels + visibility), ``query_index``,
        ``merged_queries``, ``rank_probabilities``, and on request ``partitions`` / ``partition_logits``
        ("where attention goes next", at 1/8 of the model input) and ``heatmaps``. ``None`` takes the
        model's :attr:`return_partitions` / :attr:`return_heatmaps` (both ``False`` unless set), so a
        :class:`~salrank.predictor.Predictor` can ask for them too.
        """
        if return_partitions is None:
            return_partitions = self.return_partitions
        if return_heatmaps is None:
            return_heatmaps = self.return_heatmaps
        results = []
        with eval_mode(self):
            for name, image in named_images(images, names):
                tensor = self.preprocess(image)
                pred = self.run_image(
                    tensor, image.shape[:2], name, return_partitions=return_partitions, return_heatmaps=return_heatmaps
                )
                results.append(pred.to_ranked_instances())
        return results


@register_model("posesor")
def build_posesor(cfg: PoseSORConfig | dict[str, Any] | str | None = None) -> PoseSOR:
    """A PoseSOR model (eval mode) with random weights; load official ones with ``load_official_posesor_checkpoint``.

    ``cfg`` is a :class:`PoseSORConfig`, its dict form (:meth:`PoseSORConfig.to_dict`), a preset name
    (``"posesor-swinl"``, ``"posesor-swinl-id2"``, ``"posesor-tiny"``) or ``None`` for the released model.
    """
    from salrank.modeling.posesor.config import posesor_preset

    if isinstance(cfg, str):
        cfg = posesor_preset(cfg)
    elif isinstance(cfg, dict):
        cfg = PoseSORConfig.from_dict(cfg)
    model = PoseSOR(cfg)
    model.eval()
    return model
