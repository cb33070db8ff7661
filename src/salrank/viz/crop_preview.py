"""The preview of a content-aware crop: the photo, dimmed outside the crop, with the ranked objects."""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from salrank.structures import RankedInstances
from salrank.viz.overlay import draw_outlined_text, label_position, overlay
from salrank.viz.render import add_caption


def crop_preview(image: np.ndarray, result: RankedInstances, plan: Any, *, caption: str | None = None) -> np.ndarray:
    """RGB ``uint8`` preview of ``plan`` (a :class:`salrank.apps.crop.CropPlan`) on the photo.

    Inside the crop: the photo with the ranked objects tinted in their rank colours and numbered.
    Outside: the same, dimmed. The crop rectangle is drawn in white; dropped objects are crossed out
    with a grey number. A caption band says what the crop keeps (and which model ranked).
    """
    x0, y0, x1, y1 = plan.box
    picture = overlay(image, result, alpha=0.35, numbers=False)
    dimmed = (picture.astype(np.float32) * 0.35).astype(np.uint8)
    inside = np.zeros(picture.shape[:2], bool)
    inside[y0:y1, x0:x1] = True
    canvas = np.where(inside[..., None], picture, dimmed)
    size = max(result.height, result.width)
    thickness = max(2, int(round(size / 300)))
    cv2.rectangle(canvas, (x0, y0), (x1 - 1, y1 - 1), (0, 0, 0), thickness + 2, cv2.LINE_AA)
    cv2.rectangle(canvas, (x0, y0), (x1 - 1, y1 - 1), (255, 255, 255), thickness, cv2.LINE_AA)
    scale = max(0.4, size / 900.0)
    dropped = set(plan.dropped)
    for i in range(len(result)):
        x, y = label_position(result.mask(i))
        rank = i + 1
        if rank in dropped:
            draw_outlined_text(canvas, str(rank), (x, y), scale, color=(150, 150, 150))
            r = int(12 * scale) + 4
            cv2.line(canvas, (x - r, y - r), (x + r, y + r), (150, 150, 150), max(1, thickness // 2), cv2.LINE_AA)
        else:
            draw_outlined_text(canvas, str(rank), (x, y), scale)
    if caption is None:
        caption = plan.describe() + (f" - {result.model}" if result.model else "")
    return add_caption(canvas, caption) if caption else canvas
