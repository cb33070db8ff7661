"""SeqRank (Guan & Lau, "SeqRank: Sequential Ranking of Salient Objects", AAAI 2024).

Official code: ``seqrank/SeqRank.py`` (meta-architecture), ``dataset/sor_dataset_mapper_test.py``
(test-time input).

The method in four parts:

1. **Input.** The RGB photo is resized to a square ``test_size`` x ``test_size`` (800; bilinear, aspect
   ratio not kept) and normalised with the ImageNet mean and standard deviation (0-255 scale).
2. **Features.** A backbone (Swin-L in the released models) gives ``res2 .. res5`` (strides 4-32); a
   neck (FPN in the corrected models, FrcPN in the original ones) maps them to ``embed_dim`` channels;
   a positional encoding (learnable 25x25, resized) is computed for every level.
3. **Fovea Module** (:mod:`.fovea_module`): 100 object queries are decoded into objects, each with a
   mask, an objectness score and a box.
4. **Sequential Ranking Module** (:mod:`.ranking_module`) and the read-out loop (:mod:`.inference`):
   the SRM scores which query attention shifts to next given those already visited; the loop picks
   the best query step by step until objectness or saliency drops below 0.001. The emitted queries,
   in order, are the ranking. Each object's mask is its 1/4-resolution mask logit bilinearly upsampled
   to the photo's size, ``sigmoid > 0.5``; its box is the predicted ``(cx, cy, h, w)`` converted to
   corners in the photo's pixels (not clipped, as the official code).

Training uses :meth:`SeqRank.forward` (features + FOM outputs for a normalised batch) and
:meth:`SeqRank.saliency_logits` (the SRM for a given visiting history, called once per step by the
teacher-forced loss).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from salrank.config import config_from_dict
from salrank.errors import InputError
from salrank.modeling.backbones.swin import WindowAttention
from salrank.modeling.base import SORModel
from salrank.modeling.layers import Attention
from salrank.modeling.necks import NeckConfig, build_neck
from salrank.modeling.registry import register_model
from salrank.modeling.seqrank.config import SeqRankConfig, build_backbone
from salrank.modeling.seqrank.fovea_module import (
    FoveaModule,
    FoveaOutput,
)
from salrank.modeling.seqrank.inference import (
    RankedQueries,
    RankingTrace,
    sequential_readout,
)
from salrank.modeling.seqrank.position import build_position_encoding
from salrank.modeling.seqrank.ranking_module import (
    RankingBlock,
    RankingContext,
    SequentialRankingModule,
)
from salrank.ops.boxes import box_cxcyhw_to_xyxy
from salrank.structures import RankedInstances

__all__ = ["SeqRank", "SeqRankOutput", "build_seqrank", "resize_square"]

# Upsampled mask logits held at once when pasting masks (float32 elements, ~64 MiB)
_MASK_CHUNK_ELEMENTS = 1 << 24


def resize_square(image: np.ndarray, size: int) -> np.ndarray:
    """The official test-time resize: ``albumentations.Resize(size, size)``, i.e. OpenCV bilinear
    (``cv2.INTER_LINEAR``) to ``size x size`` without keeping the aspect ratio. ``uint8`` in and out."""
    import cv2

    return cv2.resize(np.ascontiguousarray(image), (size, size), interpolation=cv2.INTER_LINEAR)


@dataclass
class SeqRankOutput:
    """The network's outputs for a batch, before the ranking loop."""

    features: dict[str, Tensor]
    """Neck outputs ``(B, C, H_l, W_l)`` per level (``res2 .. res5``)."""
    pos: dict[str, Tensor]
    """Positional encoding ``(1, C, H_l, W_l)`` of the levels the heads read."""
    fovea: FoveaOutput
    """Queries, their PE and the FOM predictions (final and intermediate)."""


class SeqRank(SORModel):
    """The SeqRank network; build it with :func:`build_seqrank` or ``SeqRank(cfg)``.

    Official module names -> salrank: ``backbone``, ``neck`` (kept), ``pe_layer`` -> ``pos_embed``,
    ``instance_seg`` -> ``fovea``, ``gaze_shift`` -> ``ranking`` (see :mod:`.key_map`).
    """

    architecture = "seqrank"
    has_keypoints = False

    def __init__(self, cfg: SeqRankConfig | None = None) -> None:
        super().__init__()
        cfg = cfg if cfg is not None else SeqRankConfig()
        self.cfg = cfg
        c = cfg.common
        self.backbone = build_backbone(cfg.backbone, cfg.feature_keys)
        channels = self.backbone.out_channels
        missing = [k for k in cfg.feature_keys if k not in channels]
        if missing:
            raise InputError(f"the backbone has no output {missing} (it gives {', '.join(channels)})")
        self.neck = build_neck(
            NeckConfig(name=cfg.neck, dim=c.embed_dim, in_channels=tuple(channels[k] for k in cfg.feature_keys), in_features=cfg.feature_keys)
        )
        self.pos_embed = build_position_encoding(cfg.position_encoding, c.embed_dim)
        f = cfg.fovea
        self.fovea = FoveaModule(
            c.num_queries, c.embed_dim, c.num_heads, c.hidden_dim, c.dropout_attn, c.dropout_ffn,
            f.num_blocks, f.key_features, f.mask_key, f.grid_sizes,
        )  # fmt: skip
        self.ranking = SequentialRankingModule(
            c.embed_dim, c.num_heads, c.hidden_dim, c.dropout_attn, c.dropout_ffn, cfg.ranking.num_blocks, cfg.ranking.gate
        )
        self.register_buffer("pixel_mean", torch.tensor(cfg.input.pixel_mean, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("pixel_std", torch.tensor(cfg.input.pixel_std, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)
        self.result_name = {"correct": "seqrank-correct", "original": "seqrank-original"}.get(cfg.variant, "seqrank")
        """Written as ``model`` into every result (the zoo loader sets the zoo entry's name)."""
        self.fast_inference = cfg.fast_inference
        self.memoize_ranking = cfg.fast_inference
        """Reuse SRM logits of visiting states met before (exact; see :mod:`.inference`)."""
        self.set_fast_inference(cfg.fast_inference)

    # ------------------------------------------------------------------ settings
    @property
    def variant(self) -> str:
        """``"correct"``, ``"original"`` or ``"custom"`` (see :attr:`SeqRankConfig.variant`)."""
        return self.cfg.variant

    def set_fast_inference(self, enabled: bool) -> SeqRank:
        """Switch between the optimised arithmetic (default) and the official formulas evaluated step
        by step (explicit softmax attention, concatenated peripheral MLP, per-box RoIAlign, the no-op
        gate computed, the SRM evaluated at every step for every image until the whole batch has
        stopped, the Swin window attention in the official order of operations).

        In front of an FPN neck the fast path also uses the fused Swin window attention; in front of
        FrcPN it does not: FrcPN compares features with their local mean, and the fused kernel's
        rounding (~1e-6) flips the few comparisons that are ties at float precision, which changes
        outputs visibly (``SwinConfig.fused_attention=True`` forces it anyway)."""
        self.fast_inference = bool(enabled)
        self.memoize_ranking = self.fast_inference
        swin = self.cfg.backbone.swin
        fused_window = bool(swin is not None and (getattr(swin, "fused_attention", False) or (self.fast_inference and self.cfg.neck == "FPN")))
        for module in self.modules():
            if isinstance(module, Attention):
                module.fused = self.fast_inference
            elif isinstance(module, RankingBlock):
                module.fast = self.fast_inference
            elif isinstance(module, WindowAttention):
                module.fused = fused_window
        self.fovea.batched_roi_align = self.fast_inference
        return self

    # ------------------------------------------------------------------ input
    def preprocess(self, image: np.ndarray) -> Tensor:
        """The official test input of an RGB ``uint8`` ``(H, W, 3)`` photo: ``(3, S, S)`` float32 in 0..255."""
        image = np.asarray(image)
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise InputError(f"expected an RGB uint8 image of shape (H, W, 3), got {image.dtype} {image.shape}")
        size = self.cfg.input.test_size
        return torch.from_numpy(resize_square(image, size)).permute(2, 0, 1).float()

    def normalize(self, images: Tensor) -> Tensor:
        """``(images - pixel_mean) / pixel_std`` for a ``(B, 3, H, W)`` batch in 0..255."""
        return (images.to(self.pixel_mean.device, torch.float32) - self.pixel_mean) / self.pixel_std

    # ------------------------------------------------------------------ network
    def forward(self, images: Tensor, all_masks: bool = True) -> SeqRankOutput:
        """Features and FOM predictions of a normalised batch ``(B, 3, S, S)`` (see :meth:`normalize`).

        ``all_masks=False`` skips the mask logits of the intermediate FOM stages (inference needs only
        the final ones); the training losses use them when auxiliary losses are on.
        """
        feats = self.backbone(images)
        features = self.neck({k: feats[k] for k in self.cfg.feature_keys})
        needed = {*self.fovea.key_features, self.cfg.ranking.key}
        pos = {k: self.position_encoding(features[k]) for k in features if k in needed}
        fovea = self.fovea(features, pos, all_masks=all_masks)
        return SeqRankOutput(features=features, pos=pos, fovea=fovea)

    def position_encoding(self, feature: Tensor) -> Tensor:
        """The positional encoding ``(1, C, H, W)`` for a feature map of that size."""
        h, w = feature.shape[-2:]
        return self.pos_embed.for_size(h, w, feature.device).unsqueeze(0).to(feature.dtype)

    def ranking_inputs(self, out: SeqRankOutput) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """``(q, qpe, z, zpe)``: the SRM inputs (queries and the ``ranking.key`` level as tokens)."""
        key = self.cfg.ranking.key
        z = out.features[key].flatten(2).transpose(1, 2)
        zpe = out.pos[key].flatten(2).transpose(1, 2).expand(z.shape[0], -1, -1)
        return out.fovea.queries, out.fovea.query_pos, z, zpe

    def saliency_logits(self, out: SeqRankOutput, visits: Tensor) -> Tensor:
        """SRM saliency logits ``(B, nq)`` for a visiting history ``(B, nq)`` (0 = not visited,
        ``k`` = visited at step ``k``): what the teacher-forced training loss evaluates at every step."""
        q, qpe, z, zpe = self.ranking_inputs(out)
        return self.ranking(q, qpe, z, zpe, visits)

    # ------------------------------------------------------------------ ranking
    @torch.no_grad()
    def rank(self, out: SeqRankOutput, trace: RankingTrace | None = None) -> list[RankedQueries]:
        """Run the read-out loop (:func:`~salrank.modeling.seqrank.inference.sequential_readout`) on ``out``."""
        q, qpe, z, zpe = self.ranking_inputs(out)
        r = self.cfg.readout
        if self.fast_inference:
            full = self.ranking.prepare(q, qpe, z, zpe)
            cache: dict[tuple[int, ...], RankingContext] = {}

            def step(visits: Tensor, rows: Tensor) -> Tensor:
                key = tuple(rows.tolist())
                if key not in cache:
                    cache.clear()
                    cache[key] = full if len(key) == q.shape[0] else full.select(rows)
                return self.ranking.step(cache[key], visits)

        else:

            def step(visits: Tensor, rows: Tensor) -> Tensor:
                return self.ranking(q[rows], qpe[rows], z[rows], zpe[rows], visits)

        objectness = out.fovea.final.objectness
        assert objectness is not None
        return sequential_readout(
            step,
            objectness,
            max_steps=r.max_steps,
            objectness_threshold=r.objectness_threshold,
            saliency_threshold=r.saliency_threshold,
            exclude_visited=r.exclude_visited,
            drop_finished=self.fast_inference,
            memoize=self.memoize_ranking,
            trace=trace,
        )

    def to_instances(
        self, out: SeqRankOutput, rankings: Sequence[RankedQueries], sizes: Sequence[tuple[int, int]], names: Sequence[str]
    ) -> list[RankedInstances]:
        """The ranked objects of every image at its original ``(height, width)``."""
        final = out.fovea.final
        assert final.masks is not None
        boxes = box_cxcyhw_to_xyxy(final.boxes.float().sigmoid())
        results = []
        for b, (ranking, (h, w), name) in enumerate(zip(rankings, sizes, names)):
            index = torch.tensor(ranking.query_index, dtype=torch.long, device=boxes.device)
            masks = paste_masks(final.masks[b].float(), ranking.query_index, (h, w), self.cfg.readout.mask_threshold)
            scale = torch.tensor([w, h, w, h], dtype=torch.float32, device=boxes.device)
            result = RankedInstances(
                image_name=name,
                height=h,
                width=w,
                masks=masks,
                scores=np.asarray(ranking.objectness, np.float32),
                saliency=np.asarray(ranking.saliency, np.float32),
                boxes=(boxes[b, index] * scale).cpu().numpy(),
                model=self.result_name,
            )
            result.extras.update(query_index=np.asarray(ranking.query_index, np.int64), srm_calls=ranking.srm_calls)
            results.append(result)
        return results

    @torch.no_grad()
    def predict_resized(
        self,
        images: Tensor,
        sizes: Sequence[tuple[int, int]],
        names: Sequence[str] | None = None,
        trace: RankingTrace | None = None,
        record: dict[str, Any] | None = None,
    ) -> list[RankedInstances]:
        """Rank already resized images ``(B, 3, S, S)`` (0..255, as :meth:`preprocess` gives them);
        results are brought back to each image's original ``(height, width)`` in ``sizes``.

        ``record`` (a dict) receives the network outputs (``"outputs"``) for inspection.
        """
        names = list(names) if names is not None else [f"image_{i}" for i in range(images.shape[0])]
        out = self(self.normalize(images), all_masks=record is not None)
        if record is not None:
            record["outputs"] = out
        rankings = self.rank(out, trace=trace)
        return self.to_instances(out, rankings, sizes, names)

    @torch.no_grad()
    def predict(self, images: Sequence[np.ndarray], names: Sequence[str] | None = None) -> list[RankedInstances]:
        """Rank the salient objects of RGB ``uint8`` ``(H, W, 3)`` photos, as one batch.

        Each image gets exactly the ranking it gets alone (see :mod:`.inference`); masks and boxes are
        at each photo's own size.
        """
        if names is not None and len(names) != len(images):
            raise ValueError(f"{len(images)} images but {len(names)} names")
        if not len(images):
            return []
        names = list(names) if names is not None else [f"image_{i}" for i in range(len(images))]
        batch = []
        for image, name in zip(images, names):
            try:
                batch.append(self.preprocess(image))
            except InputError as exc:
                raise InputError(exc.message, image=name) from None
        sizes = [(int(np.asarray(im).shape[0]), int(np.asarray(im).shape[1])) for im in images]
        was_training = self.training
        self.eval()
        try:
            return self.predict_resized(torch.stack(batch).to(self.device), sizes, names)
        finally:
            self.train(was_training)


def paste_masks(mask_logits: Tensor, query_index: Sequence[int], size: tuple[int, int], threshold: float = 0.5) -> np.ndarray:
    """``bool`` ``(N, H, W)`` masks of the queries ``query_index`` (with repeats) from ``(nq, h, w)`` logits.

    The official read-out: bilinear upsampling (``align_corners=False``) of the logit map to the
    photo's size, ``sigmoid``, ``> threshold``. Each distinct query is upsampled once.
    """
    h, w = size
    out = np.zeros((len(query_index), h, w), dtype=bool)
    if not len(query_index):
        return out
    unique = sorted({int(k) for k in query_index})
    chunk = max(1, _MASK_CHUNK_ELEMENTS // max(1, h * w))
    rows: dict[int, np.ndarray] = {}
    for start in range(0, len(unique), chunk):
        part = unique[start : start + chunk]
        logits = mask_logits[torch.tensor(part, device=mask_logits.device)]
        up = F.interpolate(logits.unsqueeze(0), size=(h, w), mode="bilinear", align_corners=False)[0]
        binary = (up.sigmoid() > threshold).cpu().numpy()
        for k, m in zip(part, binary):
            rows[k] = m
    for i, k in enumerate(query_index):
        out[i] = rows[int(k)]
    return out


@register_model("seqrank")
def build_seqrank(cfg: SeqRankConfig | dict[str, Any] | None = None) -> SeqRank:
    """A SeqRank model in eval mode with random weights (load weights with
    :func:`~salrank.modeling.seqrank.load_official_seqrank_checkpoint` or :func:`salrank.load_model`).

    ``cfg``: a :class:`SeqRankConfig`, its dict form, or ``None`` for the corrected Swin-L model.
    """
    if isinstance(cfg, dict):
        cfg = config_from_dict(SeqRankConfig, cfg)
    model = SeqRank(cfg)
    model.eval()
    return model
