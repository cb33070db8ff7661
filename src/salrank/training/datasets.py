"""The training dataset: images and per-model targets from any SOR ground truth.

:class:`SORTrainingDataset` wraps a :class:`~salrank.structures.SORDataset` (read by
:func:`salrank.data.load_dataset` from any format of the field). One sample is built from a
:class:`~salrank.training.samplers.SampleKey` (image index, batch size, augmentation seed):

1. the image is read in its stored pixel layout (``read_image(exif=False)``: annotations refer to it)
   and the GT masks are rasterised as the official mappers do (``cv2.fillPoly`` on integer polygons);
2. keypoints are normalised by ``(W, H)`` and boxes (the annotation's ``bbox``, else the mask's) become
   normalised ``x1, y1, x2, y2``, as in PoseSOR's mapper;
3. resize (square, or shortest edge for PPA), then a horizontal flip with probability ``flip`` decided
   by the sample's own seed (so the same key always gives the same sample);
4. PoseSOR's next-object targets when asked: slot ``t`` gets the mask of the object visited after it,
   the last one the background ``1 - union``.

Objects are in attention order (rank 1 first; ties keep the file order). A sample that cannot be read
(missing or corrupt image, a mask that does not rasterise) is not fatal: it comes back as
``{"error": ..., "image_id": ..., "file": ...}``, :func:`collate_samples` drops it, and the engine reports it
by file and image and goes on.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from salrank.errors import InputError
from salrank.structures import NUM_KEYPOINTS, GTImage, SORDataset
from salrank.training.samplers import SampleKey
from salrank.training.transforms import (
    hflip,
    resize_masks,
    resize_shortest_edge,
    resize_square,
)

logger = logging.getLogger(__name__)

__all__ = ["SORTrainingDataset", "SampleOptions", "collate_samples", "gt_boxes_normalised"]


@dataclass
class SampleOptions:
    size: int = 800
    resize: str = "square"
    max_size: int = 1333
    flip: float = 0.5
    flip_swap_joints: bool = True
    next_targets: bool = False
    """Also build PoseSOR's next-object targets."""


def gt_boxes_normalised(image: GTImage, masks: np.ndarray) -> np.ndarray:
    """``(n, 4)`` normalised ``x1, y1, x2, y2``: the annotation ``bbox`` (PoseSOR) or the mask's tight box."""
    from salrank.utils.masks import mask_to_box

    out = np.zeros((len(image.instances), 4), np.float32)
    scale = np.array([image.width, image.height, image.width, image.height], np.float32)
    for k, inst in enumerate(image.instances):
        if inst.bbox is not None and len(inst.bbox) == 4:
            x, y, w, h = (float(v) for v in inst.bbox)
            box = np.array([x, y, x + w, y + h], np.float32)
        else:
            box = mask_to_box(masks[k])
        out[k] = np.clip(box / scale, 0.0, 1.0)
    return out


class SORTrainingDataset(torch.utils.data.Dataset):
    """Training samples of a SOR dataset (see the module docstring).

    Args:
        dataset: the ground truth.
        options: sizes and augmentation.
        image_root: folder of the images (default: ``dataset.image_root``).
    """

    def __init__(self, dataset: SORDataset, options: SampleOptions, image_root: str | Path | None = None) -> None:
        self.dataset = dataset
        self.options = options
        root = image_root if image_root is not None else dataset.image_root
        if root is None:
            raise InputError("the dataset has no image folder; set data.image_root", dataset.name)
        self.image_root = Path(root)

    def __len__(self) -> int:
        return len(self.dataset)

    def image_file(self, index: int) -> Path:
        return self.image_root / self.dataset[index].file_name

    def __getitem__(self, key: SampleKey | int) -> dict[str, Any]:
        if not isinstance(key, SampleKey):
            key = SampleKey(int(key), None, int(key))
        image = self.dataset[key.index]
        try:
            return self._sample(image, key)
        except (InputError, OSError, ValueError) as exc:
            message = exc.message if isinstance(exc, InputError) else f"{type(exc).__name__}: {exc}"
            return {"error": message, "image_id": image.image_id, "file": str(self.image_root / image.file_name)}

    def _sample(self, image: GTImage, key: SampleKey) -> dict[str, Any]:
        from salrank.utils.io import read_image

        opt = self.options
        pixels = read_image(self.image_root / image.file_name, exif=False)
        if pixels.shape[:2] != (image.height, image.width):
            raise InputError(
                f"image file is {pixels.shape[1]}x{pixels.shape[0]} but the annotation says {image.width}x{image.height}",
                self.image_root / image.file_name,
                image.image_id,
            )
        masks = image.gt_masks().astype(np.uint8)
        boxes = gt_boxes_normalised(image, masks)
        keypoints = np.zeros((len(image.instances), NUM_KEYPOINTS, 3), np.float32)
        scale = np.array([image.width, image.height, 1.0], np.float32)
        for k, inst in enumerate(image.instances):
            if inst.keypoints is not None:
                keypoints[k] = np.asarray(inst.keypoints, np.float32).reshape(NUM_KEYPOINTS, 3) / scale
        ranks = np.array([inst.rank if inst.rank is not None else 0 for inst in image.instances], np.int64)
        order = np.array(
            [int(inst.rank_value) if image_is_posesor(self.dataset) and inst.rank_value is not None else int(r) for inst, r in zip(image.instances, ranks)],
            np.int64,
        )
        size = key.size if key.size is not None else opt.size
        if opt.resize == "square":
            pixels, masks = resize_square(pixels, masks, size)
        else:
            pixels, masks = resize_shortest_edge(pixels, masks, size, opt.max_size)
        next_targets = None
        if opt.next_targets:
            background = (1 - (masks.max(axis=0) if len(masks) else np.zeros(masks.shape[1:], np.uint8)))[None]
            next_targets = np.concatenate([masks[1:], background.astype(np.uint8)], axis=0) if len(masks) else np.zeros((0,) + masks.shape[1:], np.uint8)
        flipped = bool(np.random.default_rng(key.seed).uniform() < opt.flip)
        if flipped:
            pixels, masks, boxes, keypoints, next_targets = hflip(pixels, masks, boxes, keypoints, next_targets, opt.flip_swap_joints)
        sample = {
            "image": torch.from_numpy(np.ascontiguousarray(pixels.transpose(2, 0, 1))),
            "masks": torch.from_numpy(masks),
            "boxes": torch.from_numpy(boxes),
            "keypoints": torch.from_numpy(keypoints),
            "ranks": torch.from_numpy(ranks),
            "visiting_order": torch.from_numpy(order),
            "image_id": image.image_id,
            "height": image.height,
            "width": image.width,
            "flipped": flipped,
        }
        if next_targets is not None:
            sample["next_targets"] = torch.from_numpy(next_targets)
        return sample


def image_is_posesor(dataset: SORDataset) -> bool:
    return dataset.format == "posesor"


def collate_samples(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """A batch: ``images`` ``uint8`` ``(B, 3, H, W)`` (or a list when sizes differ), ``targets`` (the other
    fields of each sample) and ``skipped`` (the samples that could not be read, with the reason)."""
    good = [s for s in samples if "error" not in s]
    skipped = [{"image_id": s["image_id"], "file": s["file"], "error": s["error"]} for s in samples if "error" in s]
    images: Any = [s["image"] for s in good]
    if images and all(im.shape == images[0].shape for im in images):
        images = torch.stack(images)
    targets = [{k: v for k, v in s.items() if k != "image"} for s in good]
    return {"images": images, "targets": targets, "skipped": skipped}


def resize_targets_masks(masks: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Nearest resize of ``(N, H, W)`` uint8 masks given as a tensor (a convenience for criteria)."""
    return torch.from_numpy(resize_masks(masks.numpy(), size[0], size[1]))
