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

from salrank.utils.masks import (
    RLE,
    Polygons,
    decode_rle,
    decode_rles,
    encode_rles,
    masks_to_boxes,
    rle_to_str_counts,
    rles_to_boxes,
    segmentation_to_mask,
)

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


class RankedInstances:
    """Salient objects of one image in rank order (index 0 = rank 1 = most salient).

    Arrays are numpy, on the CPU, at the original image size. ``len(result)`` is the number of
    ranked objects; iterating yields :class:`Instance` objects.

    Masks are stored either densely (``masks``, ``bool`` ``(N, H, W)``) or as COCO RLEs (``rles``): a result
    read from a file keeps its RLEs and decodes :attr:`masks` only when they are first used (then caches
    them), so a whole test set of predictions fits in memory and evaluation can work on the RLEs directly.

    Args:
        image_name: the image's name (file stem); predictions are matched to GT on it.
        height, width: the image size.
        masks: ``(N, H, W)`` binary masks in rank order (or ``None`` when ``rles`` are given).
        scores: ``(N,)`` objectness / detection confidence.
        saliency: ``(N,)`` rank score, higher = more salient.
        boxes: ``(N, 4)`` ``[x1, y1, x2, y2]`` in pixels.
        keypoints: ``(N, 17, 3)`` x, y in pixels and visibility probability; ``None`` for models without pose.
        model: name of the model that produced the result.
        extras: model-specific additions (e.g. ``query_index``, ``partitions``); not part of any file format.
        rles: the masks as COCO RLEs (``str`` or ``bytes`` counts) instead of ``masks``.
    """

    def __init__(
        self,
        image_name: str,
        height: int,
        width: int,
        masks: np.ndarray | None = None,
        scores: Sequence[float] | np.ndarray | None = None,
        saliency: Sequence[float] | np.ndarray | None = None,
        boxes: np.ndarray | None = None,
        keypoints: np.ndarray | None = None,
        model: str | None = None,
        extras: dict[str, Any] | None = None,
        *,
        rles: Sequence[RLE] | None = None,
    ) -> None:
        if (masks is None) == (rles is None):
            raise ValueError("RankedInstances needs exactly one of masks or rles")
        self.image_name = image_name
        self.height = int(height)
        self.width = int(width)
        self._masks: np.ndarray | None = None
        self._rles: list[RLE] | None = None
        if masks is not None:
            n = len(masks)
            self._masks = np.asarray(masks).astype(bool, copy=False).reshape(n, self.height, self.width)
        else:
            self._rles = [dict(r) for r in rles]  # type: ignore[union-attr]
            n = len(self._rles)
            for i, r in enumerate(self._rles):
                if (int(r["size"][0]), int(r["size"][1])) != (self.height, self.width):
                    raise ValueError(f"RLE {i} has size {r['size']}, the image is {self.height}x{self.width}")
        self.scores = np.ones(n, np.float32) if scores is None else np.asarray(scores, dtype=np.float32).reshape(n)
        self.saliency = (
            default_rank_scores(n).astype(np.float32) if saliency is None else np.asarray(saliency, dtype=np.float32).reshape(n)
        )
        if boxes is None:
            boxes = masks_to_boxes(self._masks) if self._masks is not None else rles_to_boxes(self._rles or [])
        self.boxes = np.asarray(boxes, dtype=np.float32).reshape(n, 4)
        self.keypoints = None if keypoints is None else np.asarray(keypoints, dtype=np.float32).reshape(n, NUM_KEYPOINTS, 3)
        self.model = model
        self.extras: dict[str, Any] = {} if extras is None else extras

    # ------------------------------------------------------------------ mask storage
    @property
    def masks(self) -> np.ndarray:
        """``bool`` ``(N, H, W)`` masks in rank order (decoded from the RLEs on first use, then cached)."""
        if self._masks is None:
            self._masks = decode_rles(self._rles or [], self.height, self.width).view(bool)
        return self._masks

    @masks.setter
    def masks(self, value: np.ndarray) -> None:
        value = np.asarray(value).astype(bool, copy=False)
        if value.shape != (len(self), self.height, self.width):
            raise ValueError(f"masks must be {(len(self), self.height, self.width)}, got {value.shape}")
        self._masks, self._rles = value, None

    @property
    def rles(self) -> list[RLE]:
        """The masks as COCO compressed RLEs (the stored ones, or encoded from the dense masks and cached)."""
        if self._rles is None:
            self._rles = encode_rles(self._masks) if self._masks is not None else []
        return self._rles

    @property
    def has_dense_masks(self) -> bool:
        """Whether the dense masks are in memory (``False`` for a result read from a file and not yet decoded)."""
        return self._masks is not None

    def mask(self, i: int) -> np.ndarray:
        """The ``bool`` ``(H, W)`` mask of the instance at index ``i`` (decodes only that one)."""
        if self._masks is not None:
            return self._masks[i]
        return decode_rle(self.rles[i]).view(bool)

    def __repr__(self) -> str:
        return (
            f"RankedInstances(image_name={self.image_name!r}, size={self.height}x{self.width}, n={len(self)}, "
            f"model={self.model!r}, keypoints={self.keypoints is not None})"
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, RankedInstances):
            return NotImplemented
        return (
            (self.image_name, self.height, self.width, self.model) == (other.image_name, other.height, other.width, other.model)
            and len(self) == len(other)
            and np.array_equal(self.scores, other.scores)
            and np.array_equal(self.saliency, other.saliency)
            and np.array_equal(self.boxes, other.boxes)
            and (self.keypoints is None) == (other.keypoints is None)
            and (self.keypoints is None or np.array_equal(self.keypoints, other.keypoints))
            and np.array_equal(self.masks, other.masks)
        )

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
        _, h, w = stack.shape
        return cls(image_name, h, w, stack, scores, saliency, boxes, keypoints, model)

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
        """Build a result from RLE masks in rank order, kept as RLEs (decoded lazily).

        Other fields as in :meth:`from_masks` (missing boxes come from the RLEs' tight boxes).
        """
        if rles:
            h, w = (int(s) for s in rles[0]["size"])
            if (height is not None and height != h) or (width is not None and width != w):
                raise ValueError(f"RLE size {h}x{w} differs from the image size {height}x{width}")
            height, width = h, w
        if height is None or width is None:
            raise ValueError("an empty RLE list needs height and width")
        return cls(image_name=image_name, height=height, width=width, rles=list(rles), **kwargs)

    # ------------------------------------------------------------------ access
    def __len__(self) -> int:
        return int(self._masks.shape[0]) if self._masks is not None else len(self._rles or [])

    def __iter__(self) -> Iterator[Instance]:
        for i in range(len(self)):
            yield self[i]

    def __getitem__(self, i: int) -> Instance:
        if not -len(self) <= i < len(self):
            raise IndexError(f"rank index {i} out of range for {len(self)} instances")
        i = i % len(self)
        return Instance(
            rank=i + 1,
            mask=self.mask(i),
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
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        stored = {"masks": self._masks[idx]} if self._masks is not None else {"rles": [self.rles[int(i)] for i in idx]}
        return RankedInstances(
            image_name=self.image_name,
            height=self.height,
            width=self.width,
            **stored,
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
        """The masks as COCO compressed RLEs with ``str`` counts (JSON-ready), in rank order."""
        return [rle_to_str_counts(r) for r in self.rles]

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

    # ------------------------------------------------------------------ pictures and files (salrank.viz, salrank.outputs)
    def plot(self, kind: str = "overlay", image: Any = None, **kwargs: Any) -> np.ndarray:
        """A picture of this result as RGB ``uint8``: ``"overlay"``, ``"colormap"``, ``"skeleton"``,
        ``"rank_map"`` or ``"panel"`` (:func:`salrank.viz.render.render`). The photo defaults to
        ``extras["image"]``, which :class:`salrank.Ranker` sets."""
        from salrank.viz.render import render

        return render(self, self.extras.get("image") if image is None else image, kind, **kwargs)

    def save(self, folder: str | Path, image: Any = None, **options: Any) -> dict[str, Any]:
        """Write this result's outputs into ``folder`` as ``salrank predict`` does (:func:`salrank.outputs.write_outputs`;
        ``options`` are :class:`salrank.outputs.OutputOptions` fields). Returns ``{kind: path}``."""
        from salrank.outputs import OutputOptions, write_outputs

        photo = self.extras.get("image") if image is None else image
        return write_outputs(self, photo, folder, OutputOptions(**options), source=self.extras.get("source"))


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
