"""Exact, fast evaluation under the field's three Salient Object Ranking protocols.

========= ==================================================== ===========================================
protocol  reproduces                                           metrics
========= ==================================================== ===========================================
seqrank   SeqRank / PoseSOR ``evaluation/metrics.py``           mae acc fbeta iou sa_sor sor ap ar top1..5
                                                               (+ jacc jae with GT keypoints)
assr      ASSR ``evaluate.py`` / PPA ``sor_eval.py``            sor (with images used) mae mae_binary
irsr      IRSR ``SA-SOR.py`` / PoseSOR ``misc/sasor.py``        sa_sor (with images used)
========= ==================================================== ===========================================

Numbers of different protocols are not comparable (different matching, rank definitions and
exclusions). ``coco_ap=True`` adds class-agnostic COCO segmentation AP/AR under any protocol.

>>> from salrank import evaluate                                                  # doctest: +SKIP
>>> report = evaluate("datasets/assr/assr_test.json", "results.pth", protocol="seqrank")  # doctest: +SKIP
>>> report.metrics["sa_sor"], report.counts["sa_sor"]                             # doctest: +SKIP

The per-image functions (:func:`seqrank_image_metrics`, :func:`irsr_image_sa_sor`,
:func:`assr_image_metrics`) work on plain masks (arrays or COCO RLEs) and maps, without a dataset.
"""

from __future__ import annotations

from salrank.evaluation.assr_protocol import AssrAggregate, AssrImageResult, aggregate_assr, assr_image_metrics, map_mae
from salrank.evaluation.coco_segm import coco_segm_metrics
from salrank.evaluation.irsr_protocol import IrsrAggregate, IrsrImageResult, aggregate_irsr, irsr_image_sa_sor
from salrank.evaluation.joints import joint_metrics, normalise_keypoints
from salrank.evaluation.overlaps import MaskSet, OverlapCounts, overlap_counts
from salrank.evaluation.report import EvaluationReport
from salrank.evaluation.runner import PROTOCOLS, evaluate
from salrank.evaluation.seqrank_protocol import (
    JOINT_METRICS,
    SEQRANK_METRICS,
    MetricAggregate,
    aggregate_seqrank,
    seqrank_image_metrics,
    seqrank_matching,
)

__all__ = [
    "JOINT_METRICS",
    "PROTOCOLS",
    "SEQRANK_METRICS",
    "AssrAggregate",
    "AssrImageResult",
    "EvaluationReport",
    "IrsrAggregate",
    "IrsrImageResult",
    "MaskSet",
    "MetricAggregate",
    "OverlapCounts",
    "aggregate_assr",
    "aggregate_irsr",
    "aggregate_seqrank",
    "assr_image_metrics",
    "coco_segm_metrics",
    "evaluate",
    "irsr_image_sa_sor",
    "joint_metrics",
    "map_mae",
    "normalise_keypoints",
    "overlap_counts",
    "seqrank_image_metrics",
    "seqrank_matching",
]
