"""``salrank plot RUN_DIR``: draw a training run's loss and metric curves into a PNG."""

from __future__ import annotations

import argparse

COMMAND = "plot"
HELP = "draw the loss and metric curves of a training run (PNG)"
ORDER = 61
EPILOG = """\
Examples:
  salrank plot runs/smoke                      writes runs/smoke/curves.png
  salrank plot runs/smoke -o curves.png --metrics sa_sor sor
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", help="a run directory (with metrics.jsonl) or a metrics.jsonl file")
    parser.add_argument("-o", "--out", help="PNG to write (default: RUN_DIR/curves.png)")
    parser.add_argument("--metrics", nargs="+", help="evaluation metrics to draw (default: all)")
    parser.add_argument("--title", help="figure title (default: the run directory's name)")


def run(args: argparse.Namespace) -> int:
    from salrank.training.plot import plot_run

    path = plot_run(args.run_dir, args.out, args.metrics, args.title)
    print(f"wrote {path}")
    return 0
