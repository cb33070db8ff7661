"""``salrank eval``: score predictions under the seqrank, assr or irsr protocol."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

COMMAND = "eval"
HELP = "score predictions exactly as the official SeqRank/PoseSOR, ASSR/PPA or IRSR evaluation"
ORDER = 30
DESCRIPTION = """\
Score predictions against a ground truth under one of the field's three evaluation protocols,
reproducing the official code exactly (edge cases included), much faster.

  seqrank  SeqRank/PoseSOR evaluation/metrics.py: mae acc fbeta iou sa_sor sor ap ar top1..top5
           (+ jacc jae when the GT has keypoints); 4-decimal aggregates as the official code
  assr     ASSR evaluate.py / PPA sor_eval.py: sor (with images used), mae, mae_binary; reads grey
           rank maps (instance predictions are drawn as maps, see --map-style)
  irsr     IRSR SA-SOR.py / PoseSOR misc/sasor.py: sa_sor (with images used)

Numbers of different protocols are not comparable. GT: any format 'salrank data' reads (PoseSOR or
SeqRank JSON, ASSR or IRSR folders). Predictions: a SeqRank/PoseSOR result .pth, a COCO results JSON
(rank 1 = most salient, optional score = rank score), a folder of salrank JSON files, or a folder of
rank-map PNGs named after the images.
"""
EPILOG = """\
Examples:
  salrank eval --protocol seqrank --gt datasets/assr/assr_test.json --pred results.pth
  salrank eval --protocol assr --gt datasets/ASSR --split test --pred saliency_maps/ --report assr.json
  salrank eval --protocol irsr --gt datasets/irsr/irsr_test.json --pred results.json --coco-ap

GT images without a prediction are scored as images where nothing was predicted; predictions for
images the GT does not have are reported and not scored. Both lists are in the report (--report).
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--protocol", required=True, choices=("seqrank", "assr", "irsr"), help="evaluation protocol")
    parser.add_argument("--gt", required=True, metavar="GT", help="ground truth (file or dataset folder)")
    parser.add_argument("--pred", required=True, metavar="PRED", help="predictions (result .pth, COCO results JSON, folder)")
    parser.add_argument("--split", help="split of a GT layout with several (ASSR, IRSR originals)")
    parser.add_argument("--report", metavar="FILE", help="write the full report (per-image values included) as JSON")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --report file")
    parser.add_argument("--metrics", metavar="NAMES", help="comma-separated subset of the protocol's metrics")
    parser.add_argument("--coco-ap", action="store_true", help="also compute class-agnostic COCO segmentation AP/AR")
    parser.add_argument("--per-image", action="store_true", help="also print per-image values")
    parser.add_argument(
        "--map-style",
        choices=("assr", "seqrank"),
        default="assr",
        help="assr protocol: how instance predictions are drawn as rank maps (default assr: PPA's 5 grey levels)",
    )
    parser.add_argument("--gt-maps", metavar="DIR", help="assr protocol: folder of GT rank maps <id>.png for MAE")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from salrank.errors import InputError
    from salrank.evaluation import evaluate

    report_path = Path(args.report) if args.report else None
    if report_path is not None:
        if report_path.exists() and not args.overwrite:
            raise InputError("refusing to overwrite the existing report; pass --overwrite", report_path)
        if report_path.is_dir():
            raise InputError("--report must be a file name, not a folder", report_path)
    metrics = [m.strip() for m in args.metrics.split(",") if m.strip()] if args.metrics else None
    report = evaluate(
        args.gt,
        args.pred,
        args.protocol,
        split=args.split,
        metrics=metrics,
        coco_ap=args.coco_ap,
        progress=not args.no_progress and sys.stderr.isatty(),
        map_style=args.map_style,
        gt_maps=args.gt_maps,
    )
    print(report.table(per_image=args.per_image))
    if report_path is not None:
        report.save(report_path)
        print(f"report written to {report_path}")
    if report.errors:
        for err in report.errors:
            print(f"salrank eval: error: {err}", file=sys.stderr)
        return 2
    return 0
