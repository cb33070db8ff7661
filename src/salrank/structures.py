"""The data types every part of salrank speaks.

* :class:`RankedInstances` is what a model predicts for one image: salient objects **in rank order**
  (index 0 = rank 1 = the object people look at first) with masks, scores, rank scores, boxes and
  optionally 17 COCO keypoints.
* :class:`GTInstance`, :class:`GTImage` and :class:`SORDataset` are the ground truth of the field's
  datasets (ASSR, IRSR, and their SeqRank/PoseSOR re-packagings) in one representation.

File formats (result files, COCO results JSON, rank maps, dataset layouts) are read and written by
:mod:`salrank.io` and :mod:`salrank.data`; this module holds only the types and their in-memory
conversions.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from salrank.utils.masks import RLE, Polygons, decode_rles, encode_rles, masks_to_boxes, segmentation_to_mask

NUM_KEYPOINTS = 17
COCO_KEYPOINT_NAMES = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
    "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
)  # fmt: skip


def default_rank_scores(n: int) -> np.ndarray:
    """The field's default rank score of a ranked list: ``linspace(1.0, 0.5, n)`` (first = 1.0)."""
    return np.linspace(1.0, 0.5, n).astype(np.float64) if n else np.zeros(0, dtype=np.float64)


@dataclass
class Instance:
    """One ranked object, as yielded by iterating over :class:`RankedInstances`."""

    rank: int
    """1 = most salient."""
    mask: np.ndarray
    """``bool`` ``(H, W)`` at the image's size."""
    score: float
    """Objectness / detection confidence in [0, 1]."""
    saliency: float
    """Rank score (higher = more salient); its scale depends on the model."""
    box: np.ndarray
    """``[x1, y1, x2, y2]`` in pixels."""
    keypoints: np.ndarray | None = None
    """``(17, 3)``: x, y in pixels and visibility probability, for pose models."""


@dataclass
class RankedInstances:
    """Salient objects of one image in rank order (index 0 = rank 1 = most salient).

    Arrays are numpy, on the CPU, at the original image size. ``len(result)`` is the number of
    ranked objects; iterating yields :class:`Instance` objects.
    """

    image_name: str
    height: int
    width: int
    masks: np.ndarray
    """``bool`` ``(N, H, W)``."""
    scores: np.ndarray
    """``float32`` ``(N,)`` objectness / detection confidence."""
    saliency: np.ndarray
    """``float32`` ``(N,)`` rank score, higher = more salient."""
    boxes: np.ndarray
    """``float32`` ``(N, 4)`` ``[x1, y1, x2, y2]`` in pixels."""
    keypoints: np.ndarray | None = None
    """``float32`` ``(N, 17, 3)`` x, y in pixels and visibility probability; ``None`` for models without pose."""
    model: str | None = None
    """Name of the model that produced the result."""
    extras: dict[str, Any] = field(default_factory=dict)
    """Model-specific additions (e.g. ``query_index``, ``partitions``); not part of any file format."""

    def __post_init__(self) -> None:
        n = len(self.masks)
        self.masks = np.asarray(self.masks).astype(bool, copy=False).reshape(n, self.height, self.width)
        self.scores = np.asarray(self.scores, dtype=np.float32).reshape(n)
        self.saliency = np.asarray(self.saliency, dtype=np.float32).reshape(n)
        self.boxes = np.asarray(self.boxes, dtype=np.float32).reshape(n, 4)
        if self.keypoints is not None:
            self.keypoints = np.asarray(self.keypoints, dtype=np.float32).reshape(n, NUM_KEYPOINTS, 3)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_masks(
        cls,
        masks: np.ndarray | Sequence[np.ndarray],
        *,
        image_name: str = "image",
        scores: Sequence[float] | np.ndarray | None = None,
        saliency: Sequence[float] | np.ndarray | None = None,
        boxes: np.ndarray | None = None,
        keypoints: np.ndarray | None = None,
        height: int | None = None,
        width: int | None = None,
        model: str | None = None,
    ) -> RankedInstances:
        """Build a result from masks in rank order.

        Missing ``scores`` default to 1, missing ``saliency`` to ``linspace(1.0, 0.5, n)`` (the field's
        convention for a ranked list), missing ``boxes`` to the masks' tight boxes.
        """
        stack = np.asarray(masks) if not isinstance(masks, np.ndarray) else masks
        if stack.ndim == 2:
            stack = stack[None]
        if stack.ndim != 3 or (len(stack) == 0 and (height is None or width is None)):
            if len(stack) == 0 and height is not None and width is not None:
                stack = np.zeros((0, height, width), dtype=bool)
            else:
                raise ValueError(f"masks must be (N, H, W); got shape {stack.shape}")
        n, h, w = stack.shape
        stack = stack.astype(bool, copy=False)
        return cls(
            image_name=image_name,
            height=h,
            width=w,
            masks=stack,
            scores=np.ones(n, np.float32) if scores is None else np.asarray(scores, np.float32),
            saliency=default_rank_scores(n).astype(np.float32) if saliency is None else np.asarray(saliency, np.float32),
            boxes=masks_to_boxes(stack) if boxes is None else np.asarray(boxes, np.float32),
            keypoints=keypoints,
            model=model,
        )

    @classmethod
    def empty(cls, image_name: str, height: int, width: int, model: str | None = None) -> RankedInstances:
        """A result with no ranked object."""
        return cls.from_masks(np.zeros((0, height, width), bool), image_name=image_name, height=height, width=width, model=model)

    @classmethod
    def from_rles(
        cls,
        rles: Sequence[RLE],
        *,
        image_name: str,
        height: int | None = None,
        width: int | None = None,
        **kwargs: Any,
    ) -> RankedInstances:
        """Build a result from RLE masks in rank order (other fields as in :meth:`from_masks`)."""
        if rles:
            h, w = (int(s) for s in rles[0]["size"])
            if (height is not None and height != h) or (width is not None and width != w):
                raise ValueError(f"RLE size {h}x{w} differs from the image size {height}x{width}")
            height, width = h, w
        masks = decode_rles(list(rles), height, width)
        return cls.from_masks(masks, image_name=image_name, height=height, width=width, **kwargs)

    # ------------------------------------------------------------------ access
    def __len__(self) -> int:
        return int(self.masks.shape[0])

    def __iter__(self) -> Iterator[Instance]:
        for i in range(len(self)):
            yield self[i]

    def __getitem__(self, i: int) -> Instance:
        if not -len(self) <= i < len(self):
            raise IndexError(f"rank index {i} out of range for {len(self)} instances")
        i = i % len(self)
        return Instance(
            rank=i + 1,
            mask=self.masks[i],
            score=float(self.scores[i]),
            saliency=float(self.saliency[i]),
            box=self.boxes[i],
            keypoints=None if self.keypoints is None else self.keypoints[i],
        )

    @property
    def ranks(self) -> np.ndarray:
        """``1..N``: the rank of each instance (1 = most salient)."""
        return np.arange(1, len(self) + 1)

    def select(self, indices: Sequence[int] | np.ndarray) -> RankedInstances:
        """A new result holding the instances at ``indices``, in that order."""
        idx = np.asarray(indices, dtype=np.int64)
        return RankedInstances(
            image_name=self.image_name,
            height=self.height,
            width=self.width,
            masks=self.masks[idx],
            scores=self.scores[idx],
            saliency=self.saliency[idx],
            boxes=self.boxes[idx],
            keypoints=None if self.keypoints is None else self.keypoints[idx],
            model=self.model,
            extras=dict(self.extras),
        )

    def top(self, k: int) -> RankedInstances:
        """The ``k`` most salient instances."""
        return self.select(np.arange(min(k, len(self))))

    def to_rles(self) -> list[RLE]:
        """The masks as COCO compressed RLEs (``str`` counts), in rank order."""
        return encode_rles(self.masks)

    # ------------------------------------------------------------------ the salrank JSON
    def to_dict(self) -> dict[str, Any]:
        """The per-image JSON of ``salrank predict``.

        ``{"image", "height", "width", "model", "instances": [{"rank", "segmentation", "score",
        "saliency", "bbox", ["keypoints"]}]}`` with ``rank`` 1 = most salient, ``segmentation`` a COCO
        RLE with ``str`` counts, ``bbox`` ``[x1, y1, x2, y2]`` in pixels and ``keypoints`` 17 x
        ``[x, y, visibility]`` in pixels.
        """
        instances = []
        for inst, rle in zip(self, self.to_rles()):
            item: dict[str, Any] = {
                "rank": inst.rank,
                "segmentation": rle,
                "score": float(inst.score),
                "saliency": float(inst.saliency),
                "bbox": [float(v) for v in inst.box],
            }
            if inst.keypoints is not None:
                item["keypoints"] = [[float(v) for v in kp] for kp in inst.keypoints]
            instances.append(item)
        return {"image": self.image_name, "height": self.height, "width": self.width, "model": self.model, "instances": instances}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RankedInstances:
        """Inverse of :meth:`to_dict` (instances are re-sorted by their ``rank`` field)."""
        items = sorted(data.get("instances", []), key=lambda d: d["rank"])
        has_kp = any("keypoints" in d for d in items)
        h, w = int(data["height"]), int(data["width"])
        return cls.from_rles(
            [d["segmentation"] for d in items],
            image_name=str(data.get("image", "image")),
            height=h,
            width=w,
            scores=[d.get("score", 1.0) for d in items],
            saliency=[d["saliency"] for d in items] if all("saliency" in d for d in items) else None,
            boxes=np.array([d["bbox"] for d in items], np.float32).reshape(-1, 4) if all("bbox" in d for d in items) else None,
            keypoints=np.array([d.get("keypoints", np.zeros((NUM_KEYPOINTS, 3))) for d in items], np.float32) if has_kp and items else None,
            model=data.get("model"),
        )

    # ------------------------------------------------------------------ file formats (salrank.io)
    def to_result_entry(self) -> dict[str, Any]:
        """This result as an entry of the official SeqRank/PoseSOR result ``.pth`` (:mod:`salrank.io.result_file`)."""
        from salrank.io.result_file import result_entry

        return result_entry(self)

    def to_coco(self, image_id: int | str | None = None) -> list[dict[str, Any]]:
        """This result as COCO results entries (:mod:`salrank.io.coco_results`); ``image_id`` defaults to the name."""
        from salrank.io.coco_results import coco_entries

        return coco_entries(self, self.image_name if image_id is None else image_id)

    def to_rank_map(self, style: str = "assr", max_ranks: int | None = None) -> np.ndarray:
        """A grey rank map ``uint8`` ``(H, W)`` (:func:`salrank.io.rank_maps.render_rank_map`)."""
        from salrank.io.rank_maps import render_rank_map

        return render_rank_map(self, style, max_ranks)


@dataclass
class GTInstance:
    """One annotated object of a ground-truth image."""

    segmentation: Polygons | RLE
    """COCO polygons ``[[x0, y0, x1, y1, ...], ...]`` or an RLE, as stored in the source file."""
    rank: int | None
    """Attention rank, 1 = looked at first; equal ranks are ties; ``None`` = annotated but not salient."""
    rank_value: float | None = None
    """The value the source file stores (SeqRank ``category_id``, ASSR ``rank_order``, IRSR ``rank``,
    PoseSOR ``category_id``), kept for lossless conversions; ``None`` when unknown."""
    bbox: list[float] | None = None
    """``[x, y, w, h]`` in pixels (COCO convention), when the source file has one."""
    keypoints: np.ndarray | None = None
    """``(17, 3)`` COCO keypoints: x, y in pixels and visibility flag (0 = not labelled, 1 = occluded, 2 = visible)."""
    category: int | None = None
    """COCO object class (1 = person), when known."""
    id: int | str | None = None
    """Annotation id in the source file, for error messages and round trips."""

    def mask(self, height: int, width: int) -> np.ndarray:
        """Rasterise to ``uint8`` ``(H, W)`` (polygons with ``cv2.fillPoly`` on integer vertices, as the SeqRank mapper)."""
        return segmentation_to_mask(self.segmentation, height, width)


@dataclass
class GTImage:
    """The ground truth of one image: its salient objects in attention order."""

    image_id: str
    """The image's name without extension (e.g. ``COCO_val2014_000000000192``); predictions are matched on it."""
    file_name: str
    """Image file name, relative to the dataset's image folder."""
    height: int
    width: int
    instances: list[GTInstance]
    """Salient objects, most salient first (stable sort by rank: ties keep file order)."""
    unranked: list[GTInstance] = field(default_factory=list)
    """Annotated objects that are not salient (e.g. ASSR ``rank_order <= 0.5``), in file order."""
    coco_id: int | None = None
    """Numeric image id of COCO-style files."""

    def gt_masks(self) -> np.ndarray:
        """Masks of :attr:`instances` as ``uint8`` ``(n, H, W)``, most salient first."""
        if not self.instances:
            return np.zeros((0, self.height, self.width), np.uint8)
        return np.stack([inst.mask(self.height, self.width) for inst in self.instances])

    @property
    def ranks(self) -> list[int]:
        """Ranks of :attr:`instances` (1 = most salient; ties repeat a value)."""
        return [int(inst.rank) for inst in self.instances if inst.rank is not None]


@dataclass
class SORDataset:
    """A ground-truth split: images with their ranked objects, in file order."""

    images: list[GTImage]
    name: str = "dataset"
    format: str = "unknown"
    """Source format: ``posesor``, ``seqrank``, ``assr``, ``irsr`` or ``synth``."""
    image_root: Path | None = None
    """Folder the images' ``file_name`` is relative to, when known."""
    split: str | None = None
    _by_id: dict[str, GTImage] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        self._by_id = {img.image_id: img for img in self.images}

    def __len__(self) -> int:
        return len(self.images)

    def __iter__(self) -> Iterator[GTImage]:
        return iter(self.images)

    def __getitem__(self, key: int | str) -> GTImage:
        if isinstance(key, str):
            return self._by_id[key]
        return self.images[key]

    def __contains__(self, image_id: object) -> bool:
        return image_id in self._by_id

    def image_path(self, image: GTImage | str) -> Path | None:
        """Path of an image file, or ``None`` when the dataset has no image folder."""
        img = self[image] if isinstance(image, str) else image
        return None if self.image_root is None else self.image_root / img.file_name
