"""One training task per architecture: how to build the model, the loss, and what the data must hold.

A :class:`TrainingTask` ties a registered model to its criterion:

* :meth:`~TrainingTask.build_model` - the model from ``cfg.model`` (preset + dotted overrides), with the
  input sizes of ``cfg.input`` and the initial weights (a whole-model file or backbone ImageNet weights);
* :meth:`~TrainingTask.build_criterion` - the loss, its config from ``cfg.loss`` (unknown keys are errors);
* :meth:`~TrainingTask.losses` - the loss terms of a batch (images ``uint8`` ``(B, 3, H, W)`` + targets).

:class:`LossModule` wraps model + task into one ``nn.Module`` whose ``forward(batch)`` returns the loss
terms, so ``DistributedDataParallel`` sees every parameter the loss uses in a single forward pass.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from torch import Tensor, nn

from salrank.config import config_from_dict, config_to_dict
from salrank.errors import InputError
from salrank.training.config import TrainConfig, apply_overrides
from salrank.training.datasets import SampleOptions

logger = logging.getLogger(__name__)

__all__ = ["TASKS", "LossModule", "TrainingTask", "get_task"]


def _with_overrides(cfg: Any, overrides: dict[str, Any]) -> Any:
    """A typed model config with dotted ``overrides`` applied (unknown keys raise, listing the known ones)."""
    if not overrides:
        return cfg
    data = config_to_dict(cfg)
    apply_overrides(data, dict(overrides), type(cfg))
    return config_from_dict(type(cfg), data)


def _loss_config(cls: type, values: dict[str, Any]) -> Any:
    try:
        return config_from_dict(cls, dict(values))
    except InputError as exc:
        raise InputError(f"loss: {exc.message}") from None


class TrainingTask:
    """Base class; see the module docstring."""

    architecture = ""
    next_targets = False

    def model_config(self, cfg: TrainConfig) -> Any:
        raise NotImplementedError

    def build_model(self, cfg: TrainConfig) -> nn.Module:
        raise NotImplementedError

    def build_criterion(self, cfg: TrainConfig) -> Any:
        raise NotImplementedError

    def losses(self, model: nn.Module, criterion: Any, images: Tensor | list[Tensor], targets: list[dict[str, Any]]) -> dict[str, Tensor]:
        raise NotImplementedError

    def sample_options(self, cfg: TrainConfig) -> SampleOptions:
        i = cfg.input
        return SampleOptions(i.size, i.resize, i.max_size, i.flip, i.flip_swap_joints, self.next_targets)

    def prepare_for_training(self, model: nn.Module, cfg: TrainConfig) -> None:
        """Apply ``model.freeze_backbone`` (no gradients for the backbone)."""
        if cfg.model.freeze_backbone:
            for p in model.backbone.parameters():
                p.requires_grad_(False)

    def set_train_mode(self, model: nn.Module, cfg: TrainConfig) -> None:
        """Called after ``model.train()``: keeps frozen BatchNorm layers in eval mode."""
        if cfg.model.freeze_backbone or cfg.model.freeze_backbone_bn:
            for m in model.backbone.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    m.eval()

    def load_initial_weights(self, model: nn.Module, cfg: TrainConfig) -> None:
        """``cfg.model.weights`` (whole model) or ``cfg.model.pretrained_backbone``."""
        m = cfg.model
        if m.weights:
            from salrank.checkpoint import (
                is_safetensors,
                load_state_dict_into,
                read_safetensors,
            )

            if is_safetensors(m.weights):
                tensors, _ = read_safetensors(m.weights)
                report = load_state_dict_into(model, tensors, strict=False, source=m.weights)
            else:
                report = self.load_official(model, m.weights)
            logger.info("initial weights from %s", m.weights)
            if report is not None and hasattr(report, "summary") and not getattr(report, "ok", True):
                logger.warning("initial weights: %s", report.summary())
        elif m.pretrained_backbone:
            self.load_backbone(model, m.pretrained_backbone)

    def load_official(self, model: nn.Module, path: str) -> Any:
        raise InputError(f"{self.architecture} has no official checkpoint loader", path)

    def load_backbone(self, model: nn.Module, source: str) -> None:
        raise InputError(f"{self.architecture}: pretrained backbones are not supported", source)


def _weights_path(source: str) -> str:
    """``source`` itself when it is a file, else the local path of the zoo weights it names (downloaded if needed)."""
    from pathlib import Path

    if Path(source).is_file():
        return source
    from salrank.weights import resolve_weights

    return str(resolve_weights(source)[0])


# ---------------------------------------------------------------------------------------------- SeqRank
class SeqRankTask(TrainingTask):
    """SeqRank (and ``seqrank-lite``, which is a SeqRank with a small config)."""

    architecture = "seqrank"
    default_preset = "seqrank-swinl-correct"

    def model_config(self, cfg: TrainConfig) -> Any:
        import salrank.modeling.lite  # noqa: F401  (registers the lite presets)
        from salrank.modeling.seqrank import seqrank_preset

        base = seqrank_preset(cfg.model.preset or self.default_preset)
        base = replace(base, input=replace(base.input, train_size=cfg.input.size, test_size=cfg.input.test_size))
        return _with_overrides(base, cfg.model.overrides)

    def build_model(self, cfg: TrainConfig) -> nn.Module:
        from salrank.modeling.seqrank import SeqRank

        model = SeqRank(self.model_config(cfg))
        if self.architecture == "seqrank-lite":
            model.result_name = "seqrank-lite"
        self.load_initial_weights(model, cfg)
        return model

    def load_official(self, model: nn.Module, path: str) -> Any:
        from salrank.modeling.seqrank import load_official_seqrank_checkpoint

        return load_official_seqrank_checkpoint(model, path)

    def load_backbone(self, model: nn.Module, source: str) -> None:
        from salrank.modeling.seqrank import load_backbone_pretrained

        path = source
        if source not in ("packaged",) and model.cfg.backbone.kind != "efficientnet_lite":
            path = _weights_path(source)
        report = load_backbone_pretrained(model, path, strict=False)
        logger.info("backbone ImageNet weights: %s", source)
        if report is not None and getattr(report, "unexpected", None):
            logger.debug("backbone weights: %s", report.summary())

    def build_criterion(self, cfg: TrainConfig) -> Any:
        from salrank.training.losses.seqrank_criterion import (
            SeqRankCriterion,
            SeqRankLossConfig,
        )

        return SeqRankCriterion(_loss_config(SeqRankLossConfig, cfg.loss))

    def losses(self, model: nn.Module, criterion: Any, images: Tensor | list[Tensor], targets: list[dict[str, Any]]) -> dict[str, Tensor]:
        if isinstance(images, list):
            raise InputError("SeqRank trains on square batches (input.resize: square)")
        out = model(model.normalize(images), all_masks=criterion.cfg.aux)
        return criterion(out.fovea, lambda visits: model.saliency_logits(out, visits), targets)


class SeqRankLiteTask(SeqRankTask):
    architecture = "seqrank-lite"
    default_preset = "seqrank-lite"


# ---------------------------------------------------------------------------------------------- PoseSOR
class PoseSORTask(TrainingTask):
    """PoseSOR: SIS decoder, PAI and PDR trained together (:mod:`.losses.posesor_criterion`)."""

    architecture = "posesor"
    next_targets = True

    def model_config(self, cfg: TrainConfig) -> Any:
        from salrank.modeling.posesor.config import posesor_preset

        base = posesor_preset(cfg.model.preset or "posesor-swinl")
        base = replace(base, input=replace(base.input, test_image_size=cfg.input.test_size))
        return _with_overrides(base, cfg.model.overrides)

    def build_model(self, cfg: TrainConfig) -> nn.Module:
        from salrank.modeling.posesor import PoseSOR

        model = PoseSOR(self.model_config(cfg))
        self.load_initial_weights(model, cfg)
        return model

    def load_official(self, model: nn.Module, path: str) -> Any:
        from salrank.modeling.posesor import load_official_posesor_checkpoint

        return load_official_posesor_checkpoint(model, path)

    def load_backbone(self, model: nn.Module, source: str) -> None:
        from salrank.modeling.backbones.pretrained import (
            load_resnet_pretrained,
            load_swin_pretrained,
        )

        loader = load_swin_pretrained if hasattr(model.backbone, "layers") else load_resnet_pretrained
        loader(model.backbone, _weights_path(source), strict=False)
        logger.info("backbone ImageNet weights: %s", source)

    def build_criterion(self, cfg: TrainConfig) -> Any:
        from salrank.training.losses.posesor_criterion import (
            PoseSORCriterion,
            PoseSORLossConfig,
        )

        return PoseSORCriterion(_loss_config(PoseSORLossConfig, cfg.loss))

    def losses(self, model: nn.Module, criterion: Any, images: Tensor | list[Tensor], targets: list[dict[str, Any]]) -> dict[str, Tensor]:
        if isinstance(images, list):
            raise InputError("PoseSOR trains on square batches (input.resize: square)")
        return criterion(model, images, targets)


# ---------------------------------------------------------------------------------------------- PPA
class PPATask(TrainingTask):
    """PPA: FCOS + CenterMask ROI heads + the PPA rank head (:mod:`.losses.ppa_criterion`).

    Images come resized by their shortest edge (``input.resize: shortest_edge``) and keep their own
    sizes; the model pads the batch. The VoVNet's normalisation layers are frozen BatchNorm (fixed
    buffers), so nothing needs to be put back into eval mode; ``FREEZE_AT: 0`` trains every backbone
    stage, as the official recipe does.
    """

    architecture = "ppa"

    def model_config(self, cfg: TrainConfig) -> Any:
        from salrank.modeling.ppa import PPA_CONFIG_PRESETS

        name = cfg.model.preset or "ppa-v39"
        if name not in PPA_CONFIG_PRESETS:
            raise InputError(f"unknown PPA preset {name!r}; choose from {', '.join(PPA_CONFIG_PRESETS)}")
        base = PPA_CONFIG_PRESETS[name]()
        base = replace(base, input=replace(base.input, min_size_test=cfg.input.test_size, max_size_test=cfg.input.max_size))
        return _with_overrides(base, cfg.model.overrides)

    def build_model(self, cfg: TrainConfig) -> nn.Module:
        from salrank.modeling.ppa import PPA

        model = PPA(self.model_config(cfg))
        self.load_initial_weights(model, cfg)
        return model

    def load_official(self, model: nn.Module, path: str) -> Any:
        """An official PPA checkpoint, or a CenterMask2 COCO detector (the official initialisation; its
        missing SOR head and differently sized class layers are reported and left at their initial values)."""
        from salrank.modeling.ppa.key_map import load_centermask_detector_checkpoint

        return load_centermask_detector_checkpoint(model, path)

    def build_criterion(self, cfg: TrainConfig) -> Any:
        from salrank.training.losses.ppa_criterion import PPACriterion, PPALossConfig

        return PPACriterion(_loss_config(PPALossConfig, cfg.loss))

    def sample_options(self, cfg: TrainConfig) -> SampleOptions:
        if cfg.input.resize != "shortest_edge":
            logger.warning("PPA was trained with shortest-edge resizing; input.resize is %r", cfg.input.resize)
        return super().sample_options(cfg)

    def losses(self, model: nn.Module, criterion: Any, images: Tensor | list[Tensor], targets: list[dict[str, Any]]) -> dict[str, Tensor]:
        from salrank.training.losses.ppa_criterion import ppa_targets

        batch, sizes = model.prepare_train_images(images)
        num_ranks = model.cfg.rank_head.num_ranks
        gt = [ppa_targets(t, size, num_ranks) for t, size in zip(targets, sizes)]
        outputs = model.forward_train(batch, sizes, gt)
        return criterion(outputs, gt)


TASKS: dict[str, Callable[[], TrainingTask]] = {
    "posesor": PoseSORTask,
    "ppa": PPATask,
    "seqrank": SeqRankTask,
    "seqrank-lite": SeqRankLiteTask,
}


def get_task(architecture: str) -> TrainingTask:
    """The task of a registered architecture name."""
    if architecture not in TASKS:
        raise InputError(f"no training task for model {architecture!r}; trainable: {', '.join(TASKS)}")
    return TASKS[architecture]()


class LossModule(nn.Module):
    """``forward(batch) -> {loss name: tensor}`` for a model and its task (what DDP wraps)."""

    def __init__(self, model: nn.Module, task: TrainingTask, criterion: Any, cfg: TrainConfig | None = None) -> None:
        super().__init__()
        self.model = model
        self.task = task
        self.criterion = criterion
        self.cfg = cfg
        if cfg is not None:
            task.prepare_for_training(model, cfg)

    def train(self, mode: bool = True) -> LossModule:
        super().train(mode)
        if mode and self.cfg is not None:
            self.task.set_train_mode(self.model, self.cfg)
        return self

    def forward(self, images: Tensor | list[Tensor], targets: list[dict[str, Any]]) -> dict[str, Tensor]:
        if len(targets) == 0:  # every sample of this micro-batch was unreadable: a zero loss that touches the graph
            zero = sum(p.reshape(-1)[0] * 0.0 for p in self.model.parameters() if p.requires_grad)
            return {"empty_batch": zero}  # type: ignore[dict-item]
        return self.task.losses(self.model, self.criterion, images, targets)
