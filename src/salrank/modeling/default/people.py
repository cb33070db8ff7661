"""People, their masks and their 17 COCO keypoints, from MediaPipe's BlazePose (optional).

People are what draws attention first in photos of the ASSR/IRSR kind, and where they look or point
guides attention further (PoseSOR's finding). This module finds them with the BlazePose models that
ship inside the ``mediapipe==0.10.21`` wheel (no download at run time):

1. **Person detection**: MediaPipe's ``PoseDetectionCpu`` subgraph (the BlazePose detector) returns
   *every* person it finds, unlike the legacy ``solutions.pose`` API that keeps only one. It runs on
   the whole image, on four overlapping 60 % tiles and on a 3x3 grid of 40 % tiles (its input is
   224x224, so smaller people are only found in tiles);
   duplicates are merged by the distance between their hip centres relative to their size.
2. **Landmarks and mask per person**: the ``PoseLandmarkByRoiCpu`` subgraph (BlazePose GHUM "full",
   model complexity 1; the heavier model would be downloaded at run time and is not used) turns
   each detection's region into 33 landmarks and a person segmentation mask, which is cut to the
   person's own landmarks' convex hull (grown by 15 % of the body size) so neighbours do not leak in.
3. The 33 BlazePose landmarks are mapped to the 17 COCO keypoints (:data:`BLAZEPOSE_TO_COCO`).

MediaPipe is optional. Install it with ``pip install --no-deps mediapipe==0.10.21`` plus
``pip install "protobuf>=4.25.3,<5" "attrs>=19.1"`` (its only other packages needed at import; see
the README). Without it, :func:`mediapipe_available` is ``False`` and the ranker works without
people cues (one log line says so).
"""

from __future__ import annotations

import importlib.util
import logging
import threading
from dataclasses import dataclass, field

import cv2
import numpy as np

logger = logging.getLogger(__name__)

# COCO keypoint k comes from BlazePose landmark BLAZEPOSE_TO_COCO[k].
BLAZEPOSE_TO_COCO = (0, 2, 5, 7, 8, 11, 12, 13, 14, 15, 16, 23, 24, 25, 26, 27, 28)

_DETECTION_GRAPH = """
input_stream: "image"
output_stream: "detections"
node { calculator: "PoseDetectionCpu" input_stream: "IMAGE:image" output_stream: "DETECTIONS:detections" }
"""

_LANDMARK_GRAPH = """
input_stream: "image"
input_stream: "detection"
input_side_packet: "model_complexity"
input_side_packet: "enable_segmentation"
output_stream: "landmarks"
output_stream: "segmentation_mask"
node { calculator: "ImagePropertiesCalculator" input_stream: "IMAGE_CPU:image" output_stream: "SIZE:image_size" }
node {
  calculator: "PoseDetectionToRoi"
  input_stream: "DETECTION:detection"
  input_stream: "IMAGE_SIZE:image_size"
  output_stream: "ROI:roi"
}
node {
  calculator: "PoseLandmarkByRoiCpu"
  input_side_packet: "MODEL_COMPLEXITY:model_complexity"
  input_side_packet: "ENABLE_SEGMENTATION:enable_segmentation"
  input_stream: "IMAGE:image"
  input_stream: "ROI:roi"
  output_stream: "LANDMARKS:landmarks"
  output_stream: "SEGMENTATION_MASK:segmentation_image"
}
node { calculator: "FromImageCalculator" input_stream: "IMAGE:segmentation_image" output_stream: "IMAGE_CPU:segmentation_mask" }
"""


def mediapipe_available() -> bool:
    """Whether ``mediapipe`` (with its legacy pose subgraphs) can be imported."""
    if importlib.util.find_spec("mediapipe") is None:
        return False
    try:
        from mediapipe.python.solution_base import SolutionBase  # noqa: F401
    except Exception as exc:  # a broken install (missing protobuf/attrs, numpy ABI) counts as absent
        logger.info("mediapipe is installed but cannot be imported (%s: %s)", exc.__class__.__name__, exc)
        return False
    return True


@dataclass
class Person:
    """One detected person, in the pixel coordinates of the image it was found in."""

    mask: np.ndarray
    """``bool`` ``(H, W)`` segmentation mask."""
    keypoints: np.ndarray
    """``float32`` ``(17, 3)``: COCO keypoints x, y (pixels) and visibility in [0, 1]."""
    score: float
    """Detector confidence in [0, 1]."""
    center: tuple[float, float] = (0.0, 0.0)
    """Hip centre from the detector (pixels)."""
    size: float = 0.0
    """Body radius from the detector (pixels): hip centre to the top of the head."""
    landmarks: np.ndarray = field(default_factory=lambda: np.zeros((33, 4), np.float32))
    """The 33 BlazePose landmarks: x, y (pixels), visibility, presence."""


def _tiles(height: int, width: int, fraction: float, fine_fraction: float | None = None) -> list[tuple[int, int, int, int]]:
    """Detection windows ``(x0, y0, x1, y1)``: the whole image, four overlapping corner tiles of
    ``fraction`` of each side and, with ``fine_fraction``, a 3x3 grid of smaller overlapping tiles."""
    tiles = [(0, 0, width, height)]
    if fraction < 1.0 and min(height, width) >= 64:
        tw, th = int(round(width * fraction)), int(round(height * fraction))
        for y0 in (0, height - th):
            for x0 in (0, width - tw):
                tiles.append((x0, y0, x0 + tw, y0 + th))
    if fine_fraction is not None and fine_fraction < 1.0 and min(height, width) >= 128:
        tw, th = int(round(width * fine_fraction)), int(round(height * fine_fraction))
        for y0 in np.linspace(0, height - th, 3).round().astype(int):
            for x0 in np.linspace(0, width - tw, 3).round().astype(int):
                tiles.append((int(x0), int(y0), int(x0) + tw, int(y0) + th))
    return tiles


class PeopleDetector:
    """Multi-person BlazePose: person masks and COCO keypoints of an RGB image.

    Args:
        min_score: minimum detector confidence of a person.
        max_people: at most this many people (highest detector scores first) get landmarks.
        tile_fraction: side of the four corner detection tiles relative to the image (1.0 = none).
        fine_tile_fraction: side of a further 3x3 grid of tiles for small people (``None`` = none).
        mask_threshold: threshold of MediaPipe's soft person mask.
    """

    def __init__(
        self,
        min_score: float = 0.5,
        max_people: int = 8,
        tile_fraction: float = 0.6,
        fine_tile_fraction: float | None = 0.4,
        mask_threshold: float = 0.5,
    ) -> None:
        if not mediapipe_available():
            raise RuntimeError(
                "mediapipe is not installed: pip install --no-deps mediapipe==0.10.21 && "
                "pip install 'protobuf>=4.25.3,<5' 'attrs>=19.1'"
            )
        from google.protobuf import text_format
        from mediapipe.framework import calculator_pb2
        from mediapipe.python.solution_base import SolutionBase

        self.min_score = min_score
        self.max_people = max_people
        self.tile_fraction = tile_fraction
        self.fine_tile_fraction = fine_tile_fraction
        self.mask_threshold = mask_threshold
        self._lock = threading.Lock()  # MediaPipe graphs are not re-entrant
        self._detector = SolutionBase(
            graph_config=text_format.Parse(_DETECTION_GRAPH, calculator_pb2.CalculatorGraphConfig()),
            outputs=["detections"],
        )
        self._landmarker = SolutionBase(
            graph_config=text_format.Parse(_LANDMARK_GRAPH, calculator_pb2.CalculatorGraphConfig()),
            outputs=["landmarks", "segmentation_mask"],
            side_inputs={"model_complexity": 1, "enable_segmentation": True},
        )

    def close(self) -> None:
        """Release MediaPipe's graphs."""
        for graph in (self._detector, self._landmarker):
            try:
                graph.close()
            except Exception:  # closing twice, or a graph that never ran
                pass

    def __del__(self) -> None:  # pragma: no cover - best effort at interpreter exit
        try:
            self.close()
        except Exception:
            pass

    # ------------------------------------------------------------------ detection
    def _detect(self, image: np.ndarray) -> list[tuple[float, object, tuple[float, float], float]]:
        """Person detections over the image and its tiles: (score, proto in full-image coords, centre, radius).

        A person found in several windows is kept once, from the largest window that found it (its
        whole body was in view there, so its region is the most complete), with the best score.
        """
        h, w = image.shape[:2]
        found: list[tuple[int, float, object, tuple[float, float], float]] = []
        for level, (x0, y0, x1, y1) in enumerate(_tiles(h, w, self.tile_fraction, self.fine_tile_fraction)):
            window = 0 if level == 0 else (1 if level <= 4 else 2)
            crop = np.ascontiguousarray(image[y0:y1, x0:x1])
            result = self._detector.process({"image": crop})
            for det in result.detections or []:
                score = float(det.score[0]) if det.score else 0.0
                if score < self.min_score:
                    continue
                kps = det.location_data.relative_keypoints
                if len(kps) < 2:
                    continue
                # move the keypoints (and box) from tile to full-image relative coordinates
                for kp in kps:
                    kp.x = (x0 + kp.x * (x1 - x0)) / w
                    kp.y = (y0 + kp.y * (y1 - y0)) / h
                box = det.location_data.relative_bounding_box
                box.xmin = (x0 + box.xmin * (x1 - x0)) / w
                box.ymin = (y0 + box.ymin * (y1 - y0)) / h
                box.width = box.width * (x1 - x0) / w
                box.height = box.height * (y1 - y0) / h
                cx, cy = kps[0].x * w, kps[0].y * h
                radius = float(np.hypot(kps[1].x * w - cx, kps[1].y * h - cy))
                found.append((window, score, det, (cx, cy), radius))
        # merge duplicates: same hip centre (relative to body size) and similar size
        found.sort(key=lambda d: (d[0], -d[1]))
        kept: list[list] = []
        for _, score, det, (cx, cy), r in found:
            for k in kept:
                (kx, ky), kr = k[2], k[3]
                if np.hypot(cx - kx, cy - ky) < 0.5 * max(r, kr) and min(r, kr) > 0.5 * max(r, kr):
                    k[0] = max(k[0], score)
                    break
            else:
                kept.append([score, det, (cx, cy), r])
        kept.sort(key=lambda k: -k[0])
        return [tuple(k) for k in kept[: self.max_people]]  # type: ignore[misc]

    def __call__(self, image: np.ndarray) -> list[Person]:
        """People in an RGB ``uint8`` ``(H, W, 3)`` image, highest detector score first."""
        image = np.ascontiguousarray(image)
        h, w = image.shape[:2]
        people: list[Person] = []
        with self._lock:
            detections = self._detect(image)
            for score, det, center, radius in detections:
                out = self._landmarker.process({"image": image, "detection": det})
                if out.landmarks is None or out.segmentation_mask is None:
                    continue
                lms = np.array([[lm.x * w, lm.y * h, lm.visibility, lm.presence] for lm in out.landmarks.landmark], np.float32)
                mask = np.asarray(out.segmentation_mask) > self.mask_threshold
                if mask.shape != (h, w) or not mask.any():
                    continue
                mask = _restrict_to_body(mask, lms, margin=max(4.0, 0.15 * radius))
                if not mask.any():
                    continue
                kp = lms[list(BLAZEPOSE_TO_COCO)][:, :3].copy()
                kp[:, 2] = np.clip(kp[:, 2], 0.0, 1.0)
                people.append(Person(mask=mask, keypoints=kp, score=score, center=center, size=radius, landmarks=lms))
        return _suppress_overlaps(people)


def _restrict_to_body(mask: np.ndarray, landmarks: np.ndarray, margin: float, min_presence: float = 0.5) -> np.ndarray:
    """Keep the part of a person mask near that person's own landmarks.

    MediaPipe segments every person inside the region it looked at, so a neighbour standing close
    leaks into the mask. The mask is cut to the convex hull of the landmarks (head, hands and feet
    included) grown by ``margin`` pixels (hair, loose clothes). Occluded landmarks count too (their
    positions are still estimated on the body); only those MediaPipe places outside the frame
    (presence below ``min_presence``) are left out.
    """
    pts = landmarks[landmarks[:, 3] >= min_presence, :2]
    if len(pts) < 3:
        return mask
    h, w = mask.shape
    hull = np.zeros((h, w), np.uint8)
    cv2.fillConvexPoly(hull, cv2.convexHull(np.round(pts).astype(np.int32)), 1)
    near = cv2.distanceTransform(1 - hull, cv2.DIST_L2, 3) <= margin
    return mask & near


def _suppress_overlaps(people: list[Person], iou_threshold: float = 0.5) -> list[Person]:
    """Drop a person whose mask overlaps a higher-scoring one's by more than ``iou_threshold`` IoU."""
    kept: list[Person] = []
    for p in sorted(people, key=lambda q: -q.score):
        area = p.mask.sum()
        dup = False
        for k in kept:
            inter = np.logical_and(p.mask, k.mask).sum()
            union = area + k.mask.sum() - inter
            if union and inter / union > iou_threshold:
                dup = True
                break
        if not dup:
            kept.append(p)
    return kept
