"""From cue maps and proposals to an attention order.

The foreground map (:func:`foreground_map`) is a weighted sum of the geodesic (background
connectivity) saliency, the classifier's objectness and colour contrast, multiplied by a soft centre
prior. Each proposal then gets an **attention score** (:func:`attention_scores`), a weighted sum of:

=================  ===========================================================================
cue                meaning
=================  ===========================================================================
``saliency``       mean foreground value inside the object (it stands out from its background)
``size``           ``sqrt(area / 12 %)`` capped at 1: larger objects are looked at earlier
                   (a non-person region above 12 % of the image loses some of it again)
``center``         the centre prior at the object's centroid
``person``         1 for people found by the pose model (people are looked at first), with a
                   further ``face`` term when the face is visible (nose and both eyes)
``animal``         the classifier's animal probability inside the object
``people_cam``     the classifier's "person-worn" probability inside (a person cue without
                   the pose model)
``border``         (negative) how many image sides a non-person region touches: regions that
                   run along the border are mostly background stuff (ground, sky, walls)
``directed``       PoseSOR's insight: attention follows where people look and point; an object
                   in the cone of a person's pointing arm or facing direction gets a share of
                   that person's score
=================  ===========================================================================

Weights are in :class:`RankingWeights`. Objects are sorted by decreasing score; the reported
``saliency`` is the score normalised so that rank 1 has 1.0 (monotone by construction).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from salrank.modeling.default.proposals import Proposal

# COCO keypoint indices
NOSE, L_EYE, R_EYE, L_EAR, R_EAR = 0, 1, 2, 3, 4
L_SHOULDER, R_SHOULDER, L_ELBOW, R_ELBOW, L_WRIST, R_WRIST = 5, 6, 7, 8, 9, 10
L_HIP, R_HIP = 11, 12


@dataclass
class RankingWeights:
    """Weights of the attention score (see the module docstring)."""

    saliency: float = 0.30
    size: float = 0.25
    center: float = 0.15
    person: float = 0.35
    face: float = 0.10
    animal: float = 0.20
    people_cam: float = 0.15
    border: float = 0.12
    pointing: float = 0.45
    gaze: float = 0.25
    direction_cone_deg: float = 35.0
    """Half-angle of the cone a pointing arm or a face direction covers."""


def foreground_map(
    geodesic: np.ndarray, objectness: np.ndarray, contrast: np.ndarray, center: np.ndarray, animal: np.ndarray | None = None
) -> np.ndarray:
    """Per-pixel foreground likelihood in [0, 1] from the saliency cues (all maps the same size).

    ``(0.55 + 0.30 objectness + 0.15 contrast) * sqrt(geodesic) + 0.35 animal'``
    (``animal' = clip((animal - 0.4) / 0.6, 0, 1)``),
    times ``0.65 + 0.35 center``, divided by its 99th percentile and clipped to [0, 1]. The animal term finds animals that
    blend into their background (a dog on a lawn) but that the classifier sees clearly.
    """
    geo = np.sqrt(np.clip(geodesic, 0, 1))  # gamma 0.5: one strong object must not drown the others
    fg = 0.55 * geo + 0.30 * objectness * geo + 0.15 * contrast * geo
    if animal is not None:
        fg = fg + 0.35 * np.clip((animal - 0.4) / 0.6, 0, 1)  # only where the classifier is fairly sure
    fg = fg * (0.65 + 0.35 * center)
    # normalise by a high percentile rather than the maximum, so that one small, very bright spot
    # does not push every other object under the proposal thresholds
    m = float(np.percentile(fg, 99.0))
    return np.clip(fg / m, 0.0, 1.0).astype(np.float32) if m > 1e-6 else fg.astype(np.float32)


def _unit(v: np.ndarray) -> np.ndarray | None:
    n = float(np.linalg.norm(v))
    return v / n if n > 1e-6 else None


def person_directions(keypoints: np.ndarray, min_vis: float = 0.5) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """Where a person points and looks: ``(kind, origin, unit direction)`` in pixels.

    * ``"pointing"``: an arm that is nearly straight (elbow angle > 150 deg) and long compared with
      the shoulder width, directed from the shoulder through the wrist; origin at the wrist.
    * ``"gaze"``: a face in profile or three-quarter view (nose clearly off the ears' midpoint),
      directed from the ears' midpoint through the nose; origin at the nose. A frontal face looks
      at the camera and gives no direction.
    """
    kp = np.asarray(keypoints, np.float32)
    vis = kp[:, 2] >= min_vis
    out: list[tuple[str, np.ndarray, np.ndarray]] = []
    shoulder_width = float(np.linalg.norm(kp[L_SHOULDER, :2] - kp[R_SHOULDER, :2])) if vis[L_SHOULDER] and vis[R_SHOULDER] else 0.0
    for s, e, w in ((L_SHOULDER, L_ELBOW, L_WRIST), (R_SHOULDER, R_ELBOW, R_WRIST)):
        if not (vis[s] and vis[e] and vis[w]):
            continue
        upper, lower = kp[e, :2] - kp[s, :2], kp[w, :2] - kp[e, :2]
        u1, u2 = _unit(upper), _unit(lower)
        if u1 is None or u2 is None:
            continue
        straight = float(np.dot(u1, u2)) > np.cos(np.deg2rad(30))
        length = float(np.linalg.norm(kp[w, :2] - kp[s, :2]))
        if straight and length > max(1.0, 0.9 * shoulder_width):
            d = _unit(kp[w, :2] - kp[s, :2])
            # an arm hanging down along the body is not pointing
            if d is not None and d[1] < 0.8:
                out.append(("pointing", kp[w, :2].copy(), d))
    if vis[NOSE] and (vis[L_EAR] or vis[R_EAR]):
        ears = [kp[i, :2] for i in (L_EAR, R_EAR) if vis[i]]
        mid = np.mean(ears, axis=0)
        v = kp[NOSE, :2] - mid
        head = max(float(np.linalg.norm(kp[L_EAR, :2] - kp[R_EAR, :2])) if vis[L_EAR] and vis[R_EAR] else 0.0, 1.0)
        d = _unit(v)
        if d is not None and np.linalg.norm(v) > 0.35 * head:
            out.append(("gaze", kp[NOSE, :2].copy(), d))
    return out


def _centroid(mask: np.ndarray) -> np.ndarray:
    ys, xs = np.nonzero(mask)
    return np.array([xs.mean(), ys.mean()], np.float32) if len(xs) else np.zeros(2, np.float32)


def attention_scores(
    proposals: list[Proposal],
    foreground: np.ndarray,
    center: np.ndarray,
    animal: np.ndarray,
    people_cam: np.ndarray,
    image_size: tuple[int, int],
    weights: RankingWeights | None = None,
    objectness: np.ndarray | None = None,
) -> np.ndarray:
    """Attention score of each proposal (higher = looked at earlier); fills ``proposal.cues``.

    All maps are at the proposals' working resolution; ``image_size`` is the full ``(H, W)`` (the
    keypoints' coordinate frame). With an ``objectness`` map, a region's score is scaled by
    ``0.55 + 0.45 min(1, objectness / 0.5)``: what the classifier sees as a place or as stuff
    (buildings, sky, a crowd's stands) loses up to 45 % of its score.
    """
    wts = weights or RankingWeights()
    h, w = foreground.shape
    H, W = image_size
    sx, sy = w / float(W), h / float(H)
    base = np.zeros(len(proposals), np.float32)
    thing = np.ones(len(proposals), np.float32)  # 1 for people; < 1 for regions that look like stuff
    for i, p in enumerate(proposals):
        m = p.mask
        area = m.mean()
        c = p.cues
        c["saliency"] = float(foreground[m].mean()) if m.any() else 0.0
        c["size"] = float(min(1.0, np.sqrt(area / 0.12)))
        if p.kind != "person" and area > 0.12:  # very large regions are more often background
            c["size"] *= float(max(0.5, 1.0 - (area - 0.12) / 0.16))
        cy, cx = np.argwhere(m).mean(0) if m.any() else (h / 2, w / 2)
        c["center"] = float(center[int(cy), int(cx)])
        c["person"] = 1.0 if p.kind == "person" else 0.0
        face = 0.0
        if p.keypoints is not None:
            face = float(np.min(p.keypoints[[NOSE, L_EYE, R_EYE], 2]))
        c["face"] = face
        c["animal"] = float(animal[m].mean()) if m.any() else 0.0
        c["people_cam"] = float(people_cam[m].mean()) if m.any() and p.kind != "person" else 0.0
        sides = (m[0].any(), m[-1].any(), m[:, 0].any(), m[:, -1].any()) if p.kind != "person" else ()
        c["border"] = float(sum(sides))
        base[i] = (
            wts.saliency * c["saliency"]
            + wts.size * c["size"]
            + wts.center * c["center"]
            + wts.person * c["person"]
            + wts.face * face
            + wts.animal * c["animal"]
            + wts.people_cam * c["people_cam"]
            - wts.border * c["border"]
        )
        if objectness is not None and p.kind != "person" and m.any():
            c["objectness"] = float(objectness[m].mean())
            thing[i] = 0.55 + 0.45 * min(1.0, c["objectness"] / 0.5)
            base[i] *= thing[i]
    # PoseSOR: attention follows people's pointing arms and gaze
    directed = np.zeros(len(proposals), np.float32)
    cos_cone = np.cos(np.deg2rad(wts.direction_cone_deg))
    centroids = [_centroid(p.mask) / np.array([sx, sy], np.float32) for p in proposals]
    for i, p in enumerate(proposals):
        if p.keypoints is None:
            continue
        for kind, origin, d in person_directions(p.keypoints):
            gain = wts.pointing if kind == "pointing" else wts.gaze
            # the target: the object in the cone with the best (alignment x own salience)
            best_j, best_value, best_strength = -1, 0.0, 0.0
            for j, q in enumerate(proposals):
                if j == i or q.mask[int(np.clip(origin[1] * sy, 0, h - 1)), int(np.clip(origin[0] * sx, 0, w - 1))]:
                    continue
                v = _unit(centroids[j] - origin)
                if v is None:
                    continue
                align = float(np.dot(v, d))
                if align <= cos_cone:
                    continue
                strength = (align - cos_cone) / (1.0 - cos_cone)
                value = strength * float(base[j])
                if value > best_value:
                    best_j, best_value, best_strength = j, value, strength
            if best_j >= 0:
                # the target gets a share of the pointer's own salience, more when dead ahead
                bonus = gain * (0.5 + 0.5 * best_strength) * float(base[i]) * float(thing[best_j])
                if bonus > directed[best_j]:
                    directed[best_j] = bonus
                    proposals[best_j].cues[f"{kind}_from"] = float(i)
    for i, p in enumerate(proposals):
        p.cues["directed"] = float(directed[i])
    return base + directed
