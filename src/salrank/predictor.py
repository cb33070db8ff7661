"""``Predictor``: rank the salient objects of photos with any salrank model, in a few lines.

::

    from salrank import Predictor

    predictor = Predictor.from_name("seqrank-assr-correct")          # an installed zoo entry
    result = predictor("photo.jpg")                                   # RankedInstances, rank 1 first
    for obj in result:
        print(obj.rank, obj.score, obj.saliency, obj.box)

    predictor = Predictor.from_config("config.yaml", "checkpoint.pth", device="auto")
    results = predictor(["a.jpg", pil_image, numpy_rgb_array])        # a list in, a list out

The predictor reads images (paths, PIL images, numpy arrays: greyscale, RGB, RGBA; EXIF orientation
applied), groups them into batches of ``batch_size``, and calls the model's
:meth:`~salrank.modeling.base.SORModel.predict` under :func:`torch.inference_mode` (and optional
autocast on GPU). The model does its own official preprocessing (for SeqRank: square resize to the
test size, ImageNet normalisation) and returns masks, boxes and keypoints at each image's own size.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from salrank.errors import InputError
from salrank.modeling.base import SORModel
from salrank.modeling.loading import load_model, resolve_device
from salrank.structures import RankedInstances
from salrank.utils.io import read_image

__all__ = ["AUTOCAST_DTYPES", "Predictor", "image_name"]

AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "bfloat16": torch.bfloat16, "fp16": torch.float16, "float16": torch.float16}
"""Accepted ``autocast`` values."""

ImageLike = Any
"""A path (``str``/``Path``), a PIL image or a numpy array."""


def image_name(image: ImageLike, index: int) -> str:
    """The result name of an input: a file's stem, else ``image_<index>``."""
    if isinstance(image, (str, os.PathLike)):
        return Path(image).stem
    filename = getattr(image, "filename", None)  # PIL images opened from a file
    if isinstance(filename, str) and filename:
        return Path(filename).stem
    return f"image_{index}"


class Predictor:
    """Runs a :class:`~salrank.modeling.base.SORModel` on images.

    Args:
        model: any salrank model (SeqRank, PoseSOR, PPA, the default ranker, ...).
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"`` or ``"auto"`` (CUDA when available); the model is
            moved there.
        autocast: ``None`` (float32, the official precision), ``"bf16"`` or ``"fp16"``: mixed precision
            with :func:`torch.autocast`, on CUDA only (on CPU it is refused: salrank's CPU path is
            float32, where results match the official ones). Thresholds, masks and boxes are always
            computed from float32 values; rankings can differ slightly from float32 ones.
        batch_size: images per model call. A batch gives every image the result it gets alone.
    """

    def __init__(self, model: SORModel, device: str | torch.device = "cpu", autocast: str | None = None, batch_size: int = 1) -> None:
        if not isinstance(model, SORModel):
            raise TypeError(f"Predictor needs a salrank SORModel, got {type(model).__name__}")
        if batch_size < 1:
            raise InputError(f"batch_size must be at least 1, got {batch_size}")
        self.device = resolve_device(device)
        if autocast is not None:
            if autocast not in AUTOCAST_DTYPES:
                raise InputError(f"autocast must be one of {', '.join(AUTOCAST_DTYPES)} or None, not {autocast!r}")
            if self.device.type != "cuda":
                raise InputError(
                    f"autocast={autocast!r} needs a CUDA device (this predictor runs on {self.device}); "
                    "on CPU salrank computes in float32, the official precision"
                )
        self.autocast = autocast
        self.batch_size = int(batch_size)
        self.model = model.to(self.device).eval()

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_config(
        cls,
        config: Any = None,
        weights: str | os.PathLike[str] | None = None,
        *,
        device: str | torch.device = "cpu",
        autocast: str | None = None,
        batch_size: int = 1,
    ) -> Predictor:
        """A predictor for a config (official yaml, salrank config, dict or object) and weights
        (official ``.pth``, salrank ``.safetensors`` or a zoo name); see :func:`salrank.load_model`."""
        return cls(_inference_form(load_model(config, weights, device="cpu")), device=device, autocast=autocast, batch_size=batch_size)

    @classmethod
    def from_name(
        cls, name: str, *, device: str | torch.device = "cpu", autocast: str | None = None, batch_size: int = 1
    ) -> Predictor:
        """A predictor for an installed model-zoo entry (``salrank weights fetch NAME`` installs it)."""
        return cls(_inference_form(load_model(name=name, device="cpu")), device=device, autocast=autocast, batch_size=batch_size)

    # ------------------------------------------------------------------ running
    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self.autocast is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=AUTOCAST_DTYPES[self.autocast])

    def predict_arrays(self, images: Sequence[np.ndarray], names: Sequence[str]) -> list[RankedInstances]:
        """Run the model on RGB ``uint8`` arrays, ``batch_size`` at a time."""
        results: list[RankedInstances] = []
        for start in range(0, len(images), self.batch_size):
            batch = list(images[start : start + self.batch_size])
            with torch.inference_mode(), self._autocast():
                results.extend(self.model.predict(batch, list(names[start : start + self.batch_size])))
        return results

    def iter_predict(self, images: Sequence[ImageLike], names: Sequence[str] | None = None) -> Iterator[RankedInstances]:
        """Yield one result per input, reading images lazily (a batch at a time)."""
        names = list(names) if names is not None else [image_name(im, i) for i, im in enumerate(images)]
        if len(names) != len(images):
            raise InputError(f"{len(images)} images but {len(names)} names")
        for start in range(0, len(images), self.batch_size):
            chunk = images[start : start + self.batch_size]
            arrays = [read_image(im) for im in chunk]
            yield from self.predict_arrays(arrays, names[start : start + len(chunk)])

    def __call__(
        self, images: ImageLike | Sequence[ImageLike], names: str | Sequence[str] | None = None
    ) -> RankedInstances | list[RankedInstances]:
        """Rank one image (returns a :class:`RankedInstances`) or a list of images (returns a list)."""
        single = not isinstance(images, (list, tuple))
        items = [images] if single else list(images)
        if isinstance(names, str):
            names = [names]
        results = list(self.iter_predict(items, names))
        return results[0] if single else results

    def __repr__(self) -> str:
        name = getattr(self.model, "result_name", None) or self.model.architecture
        return f"Predictor({name}, device={self.device}, autocast={self.autocast}, batch_size={self.batch_size})"


def _inference_form(model: SORModel) -> SORModel:
    """A model the predictor loaded itself, in its faster inference form (same outputs)."""
    model.optimize_for_inference()
    return model
