"""The interface every salrank ranking model implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import ClassVar

import numpy as np
import torch
from torch import nn

from salrank.structures import RankedInstances


class SORModel(nn.Module, ABC):
    """A salient-object-ranking model: RGB images in, :class:`RankedInstances` out.

    Subclasses implement the official preprocessing (resize, normalisation) inside
    :meth:`predict`, so that a :class:`~salrank.predictor.Predictor` only has to read images and pick a
    device. ``forward`` is the model's own (batched tensor) computation and is what training uses.
    """

    architecture: ClassVar[str] = ""
    """Registry name of the architecture (``"seqrank"``, ``"posesor"``, ``"ppa"``, ...)."""
    has_keypoints: ClassVar[bool] = False
    """Whether results carry 17 COCO keypoints per object."""

    @property
    def device(self) -> torch.device:
        for p in self.parameters():
            return p.device
        for b in self.buffers():
            return b.device
        return torch.device("cpu")

    @abstractmethod
    def predict(self, images: Sequence[np.ndarray], names: Sequence[str] | None = None) -> list[RankedInstances]:
        """Rank the salient objects of RGB ``uint8`` ``(H, W, 3)`` images (any sizes).

        Masks, boxes and keypoints are returned at each image's own size.
        """
