"""The interface every salrank ranking model implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import ClassVar

import numpy as np
import torch
from torch import nn

from salrank.errors import InputError
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

    def optimize_for_inference(self) -> dict[str, int]:
        """Rewrite the loaded model, in place, into a faster form with the same outputs (inference only).

        Called by :class:`~salrank.predictor.Predictor` on models it loads itself. The default does
        nothing; a model whose faster form changes its state dict (PPA) overrides it, so weights must be
        loaded first and the optimised model is not for training or saving. Returns what was changed.
        """
        return {}


def named_images(images: Sequence[np.ndarray], names: Sequence[str] | None = None) -> list[tuple[str, np.ndarray]]:
    """Pair each image with its name (``image_<k>`` when ``names`` is ``None``), checking the layout.

    Raises ``ValueError`` when there are not as many names as images, and :class:`InputError` naming
    the image when it is not an RGB ``uint8`` ``(H, W, 3)`` array.
    """
    if names is not None and len(names) != len(images):
        raise ValueError(f"{len(images)} images but {len(names)} names")
    pairs = []
    for k, image in enumerate(images):
        name = names[k] if names is not None else f"image_{k}"
        image = np.asarray(image)
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise InputError(f"expected an RGB uint8 image of shape (H, W, 3), got {image.dtype} {image.shape}", image=name)
        pairs.append((name, image))
    return pairs


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Run a block with ``model`` in eval mode and give it back its previous mode afterwards."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)
