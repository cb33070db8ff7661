"""``salrank report DIR``: an HTML contact sheet of a ``salrank predict`` run."""

from __future__ import annotations

import argparse

COMMAND = "report"
HELP = "make an HTML contact sheet of a 'salrank predict' run (thumbnails, colour maps, ranks)"
ORDER = 15
DESCRIPTION = """\
Write DIR/report.html: every image of a 'salrank predict --out DIR' run as a card with thumbnails of
its overlay and colour map (linking to the full-size files), its ranked objects (rank colour, rank
score, objectness), the model that ranked it, and links to its JSON, rank map, skeletons and source
photo; failed images with the reason; the run's model and settings at the top. One HTML file plus
DIR/report_files/ (thumbnails): no scripts, no external assets, relative links only.
"""
EPILOG = """\
Examples:
  salrank predict photos/ --out results/ && salrank report results/
  salrank report results/ --thumb-size 480 --overwrite
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", metavar="DIR", help="the --out folder of a 'salrank predict' run")
    parser.add_argument("--output", metavar="FILE", help="the HTML file (default DIR/report.html)")
    parser.add_argument("--thumb-size", type=int, default=320, metavar="PX", help="longer side of the thumbnails (default 320)")
    parser.add_argument("--title", help="page title (default: the folder's name)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing report")


def run(args: argparse.Namespace) -> int:
    from salrank.apps.report import build_report
    from salrank.errors import InputError

    if not 32 <= args.thumb_size <= 2048:
        raise InputError("--thumb-size must be between 32 and 2048")
    path = build_report(args.run_dir, args.output, thumb_size=args.thumb_size, overwrite=args.overwrite, title=args.title)
    print(f"report written to {path} (open it in a browser)")
    return 0
