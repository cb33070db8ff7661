"""``salrank.Ranker``: rank the salient objects of your own photos with one object.

::

    import salrank

    ranker = salrank.Ranker()                           # the built-in default, nothing to download
    result = ranker("photo.jpg")                        # RankedInstances, rank 1 first
    for obj in result:                                  # Instance: rank, mask, score, saliency, box
        print(obj.rank, obj.score, obj.box)
    picture = result.plot()                             # the photo with ranks (RGB array)
    result.save("out/")                                 # colour map, overlay, JSON, rank map, ...
    entries = result.to_coco()                          # COCO results entries

    ranker = salrank.Ranker("seqrank-assr-correct")     # a zoo model (after 'salrank weights fetch')
    ranker = salrank.Ranker("model_final.pth", config="config.yaml", device="cuda")

:class:`Ranker` is a thin layer over :class:`salrank.predictor.Predictor` (which owns devices,
batching and inference) and :func:`salrank.modeling.loading.load_model` (which owns model loading): it
picks the model from one name-or-path argument, remembers where the model came from
(:meth:`Ranker.describe`, written into every run's manifest), attaches the photo to each result so
that ``plot()`` and ``save()`` need no arguments, and ranks lists of files with per-file error
reporting (:meth:`Ranker.rank_files`, what ``salrank predict`` runs).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from salrank.errors import InputError
from salrank.structures import RankedInstances

logger = logging.getLogger(__name__)

DEFAULT_MODEL = "default"
"""The name of the built-in training-free ranker (its results say ``salrank-default``)."""
DEFAULT_ALIASES = ("default", "salrank-default")
DEFAULT_CONFIG = {"architecture": "default", "config": {}}
"""The salrank config of the default ranker with its documented settings."""

DEFAULT_MODEL_NOTE = (
    "salrank-default is a training-free, hand-built baseline (people, saliency and ImageNet cues); "
    "the learned models (SeqRank, PoseSOR, PPA) are far better: 'salrank weights fetch NAME' and --model NAME"
)


def _is_default(model: object) -> bool:
    return isinstance(model, str) and model in DEFAULT_ALIASES


def installed_models() -> list[str]:
    """Model names that can be used here without a download: ``"default"`` and installed zoo models."""
    from salrank.weights import installed_path, list_entries

    names = [DEFAULT_MODEL]
    for entry in list_entries(kind="model"):
        try:
            if installed_path(entry) is not None:
                names.append(entry.name)
        except Exception as exc:  # a broken store must not hide the default
            logger.debug("cannot check %s: %s", entry.name, exc)
    return names


@dataclass
class RankOutcome:
    """What :meth:`Ranker.rank_files` yields for one input file, in input order."""

    path: Path
    name: str
    """The output name (``result.image_name``)."""
    result: RankedInstances | None = None
    image: np.ndarray | None = None
    """The RGB photo as ranked (EXIF orientation applied)."""
    error: str | None = None
    """Why the file failed (``None`` when it succeeded)."""
    seconds: float = 0.0
    """Model time of this image (its share of its batch)."""

    @property
    def ok(self) -> bool:
        return self.error is None


_TEST_SIZE_FIELDS = {
    "default": ("max_side",),
    "seqrank": ("input", "test_size"),
    "posesor": ("input", "test_image_size"),
    "ppa": ("input", "min_size_test"),
}
"""Where each architecture's config keeps the size its input is resized to (see :func:`apply_test_size`)."""


def apply_test_size(model: Any, size: int) -> None:
    """Make ``model`` resize its input to ``size`` instead of its own test size.

    SeqRank/PoseSOR: the square test size; PPA: the shortest side (its longest-side cap is raised to
    at least ``size``); the default ranker: the longest side it ranks at.
    """
    architecture = str(getattr(model, "architecture", ""))
    cfg = getattr(model, "cfg", None)
    if size < 32:
        raise InputError(f"the test size must be at least 32 pixels, got {size}")
    fields = _TEST_SIZE_FIELDS.get(architecture)
    if cfg is None or fields is None:
        raise InputError(f"this model ({architecture or type(model).__name__}) has no adjustable test size")
    holder = cfg
    for attr in fields[:-1]:
        holder = getattr(holder, attr)
    setattr(holder, fields[-1], int(size))
    if architecture == "ppa":
        cfg.input.max_size_test = max(int(cfg.input.max_size_test), int(size))


class Ranker:
    """Rank the salient objects of photos with the built-in default, a zoo model or a checkpoint.

    Args:
        model: ``"default"`` (the built-in training-free ranker, no download), a model-zoo name
            (``"seqrank-assr-correct"``; its weights must be installed: ``salrank weights fetch``),
            a checkpoint path (official ``.pth`` or salrank ``.safetensors``), or a model object
            (any :class:`~salrank.modeling.base.SORModel`).
        config: the model's config (official ``config.yaml`` or a salrank config) for a checkpoint
            whose architecture or size is not the released one.
        device: ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"``, ``"cuda:1"``...
        size: the size the model resizes its input to, instead of the model's own (SeqRank/PoseSOR
            square test size, PPA shortest side, the default ranker's longest side).
        batch_size: images per forward pass in :meth:`rank_files` and list calls.
        autocast: ``"bf16"``/``"fp16"`` mixed precision on GPU (see :class:`~salrank.predictor.Predictor`).
    """

    def __init__(
        self,
        model: str | os.PathLike[str] | Any = DEFAULT_MODEL,
        *,
        config: str | os.PathLike[str] | dict[str, Any] | Any | None = None,
        device: str = "auto",
        size: int | None = None,
        batch_size: int = 1,
        autocast: str | None = None,
    ) -> None:
        from salrank.predictor import Predictor

        if batch_size < 1:
            raise InputError(f"batch size must be at least 1, got {batch_size}")
        self.batch_size = int(batch_size)
        self.size = size
        self._entry = None
        self._weights: Path | None = None
        self._config = (
            None if config is None else (os.fspath(config) if isinstance(config, (str, os.PathLike)) else type(config).__name__)
        )
        settings = {"device": device, "autocast": autocast, "batch_size": self.batch_size}
        if isinstance(model, (str, os.PathLike)):
            spec = os.fspath(model)
            self._requested = spec
            if _is_default(spec):
                # the built-in ranker; a config (a DefaultRankerConfig or its JSON) may change its settings
                predictor = Predictor.from_config(config if config is not None else DEFAULT_CONFIG, **settings)
                self.source = "built-in (training-free, no weights to download)"
            else:
                from salrank.weights import resolve_weights

                self._weights, self._entry = resolve_weights(spec)
                if self._entry is not None and config is None:
                    predictor = Predictor.from_name(spec, **settings)
                    self.source = f"model zoo: {spec} ({self._weights})"
                else:
                    predictor = Predictor.from_config(config, self._weights, **settings)
                    kind = f"model zoo: {spec}" if self._entry is not None else "checkpoint"
                    self.source = f"{kind} ({self._weights})" + (f" with config {self._config}" if config is not None else "")
        else:
            predictor = Predictor(model, **settings)
            self.source = f"model object ({type(model).__name__})"
            self._requested = type(model).__name__
        if size is not None:
            apply_test_size(predictor.model, int(size))
        self.predictor = predictor

    # ------------------------------------------------------------------ what it is
    @property
    def model(self) -> Any:
        """The underlying :class:`~salrank.modeling.base.SORModel`."""
        return self.predictor.model

    @property
    def architecture(self) -> str:
        return str(getattr(self.model, "architecture", "") or type(self.model).__name__)

    @property
    def is_default(self) -> bool:
        """Whether this is the built-in training-free ranker."""
        return self.architecture == "default"

    @property
    def name(self) -> str:
        """The name results carry in their ``model`` field (``salrank-default``, the zoo name, ...)."""
        if self.is_default:
            from salrank.modeling.default import MODEL_NAME

            return MODEL_NAME
        if self._entry is not None:
            return self._entry.name
        named = getattr(self.model, "result_name", None)
        if named:
            return str(named)
        if self._weights is not None:
            return f"{self.architecture}:{self._weights.name}"
        return self.architecture

    @property
    def has_keypoints(self) -> bool:
        """Whether results carry 17 COCO keypoints per object (PoseSOR, the default ranker's people)."""
        return bool(getattr(self.model, "has_keypoints", False))

    @property
    def device(self) -> str:
        return str(getattr(self.predictor, "device", getattr(self.model, "device", "cpu")))

    def describe(self) -> dict[str, Any]:
        """The model, where it came from and its settings (what a run's manifest records)."""
        info: dict[str, Any] = {
            "name": self.name,
            "requested": self._requested,
            "architecture": self.architecture,
            "source": self.source,
            "weights": None if self._weights is None else str(self._weights),
            "config": self._config,
            "device": self.device,
            "size": self.size,
            "batch_size": self.batch_size,
            "keypoints": self.has_keypoints,
        }
        if self._entry is not None:
            info["zoo"] = {
                "name": self._entry.name,
                "description": self._entry.description,
                "metrics": dict(self._entry.metrics),
                "protocol": self._entry.protocol,
                "licence": self._entry.licence,
            }
        if self.is_default:
            info["note"] = DEFAULT_MODEL_NOTE
            if not getattr(getattr(self.model, "cfg", None), "use_people", True):
                info["people_model"] = "switched off (use_people=False)"
            elif getattr(self.model, "people_detector", None) is not None:
                info["people_model"] = "MediaPipe BlazePose"
            else:
                info["people_model"] = "MediaPipe not available: no people or poses"
        return info

    def __repr__(self) -> str:
        return f"Ranker({self.name!r}, architecture={self.architecture!r}, device={self.device!r})"

    # ------------------------------------------------------------------ ranking
    def _finish(self, result: RankedInstances, name: str, image: np.ndarray, source: str | None) -> RankedInstances:
        result.image_name = name
        if not result.model or result.model == self.architecture:
            result.model = self.name
        result.extras["image"] = image
        if source is not None:
            result.extras["source"] = source
        return result

    def _predict(self, images: list[np.ndarray], names: list[str]) -> list[RankedInstances]:
        return self.predictor.predict_arrays(images, names)

    def __call__(
        self, images: Any | Sequence[Any], names: str | Sequence[str] | None = None
    ) -> RankedInstances | list[RankedInstances]:
        """Rank one image or a list of images.

        ``images``: a path, a PIL image, an RGB/greyscale/RGBA numpy array, or a list of these (EXIF
        orientation is honoured). Returns one :class:`RankedInstances` for one image, a list for a
        list. Each result keeps the photo in ``extras["image"]`` (so ``result.plot()`` and
        ``result.save(dir)`` need nothing else) and its file in ``extras["source"]``.
        """
        from salrank.predictor import image_name
        from salrank.utils.io import read_image

        single = not isinstance(images, (list, tuple))
        items = [images] if single else list(images)
        if names is None:
            name_list = [image_name(x, i) for i, x in enumerate(items)]  # a file's stem, else image_<i>
        else:
            name_list = [names] if isinstance(names, str) else list(names)
        if len(name_list) != len(items):
            raise InputError(f"{len(items)} images but {len(name_list)} names")
        arrays = [read_image(x) for x in items]
        out: list[RankedInstances] = []
        for start in range(0, len(arrays), self.batch_size):
            batch = arrays[start : start + self.batch_size]
            batch_names = name_list[start : start + self.batch_size]
            for j, result in enumerate(self._predict(batch, batch_names)):
                item = items[start + j]
                source = os.fspath(item) if isinstance(item, (str, os.PathLike)) else None
                out.append(self._finish(result, batch_names[j], batch[j], source))
        return out[0] if single else out

    rank = __call__

    def rank_files(
        self, files: Sequence[str | os.PathLike[str]], names: Sequence[str] | None = None, *, prefetch: bool = True
    ) -> Iterator[RankOutcome]:
        """Rank image files in batches; yields one :class:`RankOutcome` per file, in order.

        A file that cannot be read, or on which the model fails, gives an outcome with ``error`` set
        and the others go on (a failing batch is retried image by image to find the culprit). The next
        batch is read from disk while the model works on the current one.
        """
        from salrank.utils.io import read_image

        paths = [Path(f) for f in files]
        out_names = list(names) if names is not None else [p.stem for p in paths]
        if len(out_names) != len(paths):
            raise InputError(f"{len(paths)} files but {len(out_names)} names")

        def load(indices: range) -> list[tuple[int, np.ndarray | None, str | None]]:
            loaded = []
            for i in indices:
                try:
                    loaded.append((i, read_image(paths[i]), None))
                except InputError as exc:
                    loaded.append((i, None, exc.message))
                except Exception as exc:  # e.g. PIL's DecompressionBombError for absurd sizes
                    loaded.append((i, None, f"cannot read the image ({exc.__class__.__name__}: {exc})"))
            return loaded

        batches = [range(s, min(s + self.batch_size, len(paths))) for s in range(0, len(paths), self.batch_size)]
        with ThreadPoolExecutor(max_workers=1) as pool:
            pending = pool.submit(load, batches[0]) if batches and prefetch else None
            for b, indices in enumerate(batches):
                loaded = pending.result() if pending is not None else load(indices)
                pending = pool.submit(load, batches[b + 1]) if prefetch and b + 1 < len(batches) else None
                yield from self._rank_loaded(loaded, paths, out_names)

    def _rank_loaded(
        self, loaded: list[tuple[int, np.ndarray | None, str | None]], paths: list[Path], names: list[str]
    ) -> Iterator[RankOutcome]:
        good = [(i, img) for i, img, err in loaded if err is None]
        results: dict[int, RankedInstances | str] = {}
        seconds: dict[int, float] = {}
        if good:
            t0 = time.perf_counter()
            try:
                batch_results = self._predict([img for _, img in good], [names[i] for i, _ in good])  # type: ignore[misc]
                share = (time.perf_counter() - t0) / len(good)
                for (i, _), r in zip(good, batch_results):
                    results[i], seconds[i] = r, share
            except Exception as exc:
                if len(good) == 1:
                    i = good[0][0]
                    results[i] = f"the model failed on this image ({exc.__class__.__name__}: {exc})"
                    logger.debug("model failure on %s", paths[i], exc_info=True)
                else:  # find the image that breaks the batch
                    for i, img in good:
                        t1 = time.perf_counter()
                        try:
                            results[i] = self._predict([img], [names[i]])[0]  # type: ignore[list-item]
                        except Exception as exc1:
                            results[i] = f"the model failed on this image ({exc1.__class__.__name__}: {exc1})"
                        seconds[i] = time.perf_counter() - t1
        for i, img, err in loaded:
            if err is not None:
                yield RankOutcome(paths[i], names[i], error=err)
                continue
            r = results[i]
            if isinstance(r, str):
                yield RankOutcome(paths[i], names[i], image=img, error=r, seconds=seconds.get(i, 0.0))
            else:
                result = self._finish(r, names[i], img, str(paths[i]))  # type: ignore[arg-type]
                result.extras.pop("image", None)  # the outcome holds the photo; keep results light
                yield RankOutcome(paths[i], names[i], result=result, image=img, seconds=seconds[i])
