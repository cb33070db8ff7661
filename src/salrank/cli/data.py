"""``salrank data``: check, convert and describe ground-truth datasets.

Sub-commands live in :data:`SUBCOMMANDS`; adding one (e.g. ``synth``) means writing an
``add_arguments(parser)`` and a ``run(args) -> int`` function and registering them with
:func:`register_subcommand` (or adding an entry to the dict).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

COMMAND = "data"
HELP = "check, convert and describe ground-truth datasets (PoseSOR, SeqRank, ASSR, IRSR)"
ORDER = 40
DESCRIPTION = """\
Work with the ground truth of the field's datasets.

  salrank data check PATH      validate a dataset and summarise it (exit code 1 when it has errors)
  salrank data convert SRC DST --to FORMAT
                               convert between the posesor, seqrank, assr and irsr formats
  salrank data info PATH       summary only (no checks)

PATH is a PoseSOR or SeqRank JSON file, an ASSR root folder (obj_seg_data_<split>.json, rank_order/, gt/,
images/) or an IRSR root folder (Annotations/<split>.pkl) or its .pkl file; the format is detected.
"""
EPILOG = """\
Examples:
  salrank data check datasets/assr/assr_test.json
  salrank data check ASSR/ --split test
  salrank data convert IRSR/ irsr_test.json --to seqrank --split test
"""

FORMATS = ("posesor", "seqrank", "assr", "irsr")


@dataclass
class Subcommand:
    """One ``salrank data <name>`` sub-command."""

    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


SUBCOMMANDS: dict[str, Subcommand] = {}


def register_subcommand(name: str, help: str, add_arguments: Callable[[argparse.ArgumentParser], None], run: Callable[[argparse.Namespace], int]) -> None:
    """Add ``salrank data <name>``."""
    SUBCOMMANDS[name] = Subcommand(help, add_arguments, run)


# ---------------------------------------------------------------------------------------------- output
def _format_summary(summary: Any) -> list[str]:
    rows = [
        ("format", f"{summary.format}" + (f" (split {summary.split})" if summary.split else "")),
        ("images", str(summary.images)),
        ("salient instances", str(summary.instances)),
        ("not-salient objects", str(summary.unranked)),
        (
            "instances / image",
            f"min {summary.instances_per_image_min}, mean {summary.instances_per_image_mean:.2f}, max {summary.instances_per_image_max}",
        ),
        ("images without GT", str(summary.images_without_gt)),
        ("image folder", summary.image_root or "(not found)"),
    ]
    width = max(len(k) for k, _ in rows)
    lines = [f"  {k.ljust(width)}  {v}" for k, v in rows]
    if summary.rank_histogram:
        lines.append("  rank histogram:")
        total = max(summary.rank_histogram.values())
        for rank, count in summary.rank_histogram.items():
            bar = "#" * max(1, round(30 * count / total))
            lines.append(f"    {rank:>3}  {count:>7}  {bar}")
    return lines


# ---------------------------------------------------------------------------------------------- check
def _add_check(p: argparse.ArgumentParser) -> None:
    p.add_argument("path", help="dataset file or folder")
    p.add_argument("--split", help="split to read from layouts with several (e.g. test)")
    p.add_argument("--format", choices=FORMATS, help="skip format detection")
    p.add_argument("--no-images", action="store_true", help="do not open the image files")
    p.add_argument("--max-problems", type=int, default=None, metavar="N", help="print at most N problems (default: all)")
    p.add_argument("--json", metavar="FILE", help="also write the full report as JSON to FILE")


def _run_check(args: argparse.Namespace) -> int:
    from salrank.data.check import check_dataset
    from salrank.utils.io import write_json

    report = check_dataset(args.path, args.split, args.format, check_images=not args.no_images, progress=sys.stderr.isatty())
    out = sys.stdout
    print(f"salrank data check: {args.path}", file=out)
    if report.summary is not None:
        print("\n".join(_format_summary(report.summary)), file=out)
    shown = report.problems if args.max_problems is None else report.problems[: args.max_problems]
    if report.problems:
        print(f"\nproblems ({len(report.errors)} errors, {len(report.warnings)} warnings):", file=out)
        for problem in shown:
            print(f"  {problem.severity}: {problem}", file=out)
        if len(shown) < len(report.problems):
            print(f"  ... {len(report.problems) - len(shown)} more (raise --max-problems or use --json)", file=out)
    print("\n" + ("OK: no errors" if report.ok else f"FAILED: {len(report.errors)} errors"), file=out)
    if args.json:
        write_json(args.json, report.to_dict())
    return 0 if report.ok else 1


# ---------------------------------------------------------------------------------------------- convert
def _add_convert(p: argparse.ArgumentParser) -> None:
    p.add_argument("src", help="dataset file or folder to read")
    p.add_argument("dst", help="where to write: a .json file (posesor, seqrank) or a root folder (assr, irsr)")
    p.add_argument("--to", required=True, choices=FORMATS, help="target format")
    p.add_argument("--from", dest="src_format", choices=FORMATS, help="source format (default: detected)")
    p.add_argument("--split", help="split to read (and to name the output after)")
    p.add_argument("--images", choices=("none", "copy", "link"), default="none", help="also copy or symlink the image files (default: none)")
    p.add_argument("--overwrite", action="store_true", help="allow writing into an existing destination")


def _run_convert(args: argparse.Namespace) -> int:
    from salrank.data.convert import convert_dataset

    result = convert_dataset(
        args.src, args.dst, args.to, split=args.split, src_format=args.src_format, overwrite=args.overwrite, images=args.images
    )
    n = len(result.files)
    print(f"wrote {n} file{'s' if n != 1 else ''} ({args.to}) to {args.dst}")
    for note in result.notes:
        print(f"  note: {note}")
    return 0


# ---------------------------------------------------------------------------------------------- info
def _add_info(p: argparse.ArgumentParser) -> None:
    p.add_argument("path", help="dataset file or folder")
    p.add_argument("--split", help="split to read from layouts with several")
    p.add_argument("--format", choices=FORMATS, help="skip format detection")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")


def _run_info(args: argparse.Namespace) -> int:
    from salrank.data import load_dataset
    from salrank.data.check import summarize

    summary = summarize(load_dataset(args.path, args.split, args.format))
    if args.json:
        print(json.dumps(summary.to_dict(), indent=2))
    else:
        print(f"{args.path}")
        print("\n".join(_format_summary(summary)))
    return 0


register_subcommand("check", "validate a dataset and print a summary and every problem", _add_check, _run_check)
register_subcommand("convert", "convert a dataset to another format", _add_convert, _run_convert)
register_subcommand("info", "print a dataset's summary", _add_info, _run_info)


def _add_synth(p: argparse.ArgumentParser) -> None:
    from salrank.data.synth import add_cli_arguments

    add_cli_arguments(p)


def _run_synth(args: argparse.Namespace) -> int:
    from salrank.data.synth import run_cli

    return run_cli(args)


register_subcommand("synth", "write a synthetic SOR dataset (PoseSOR format) ranked by a fixed hue ladder (red first)", _add_synth, _run_synth)


# ---------------------------------------------------------------------------------------------- entry points
def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="data_command", metavar="SUBCOMMAND", title="subcommands")
    for name, spec in SUBCOMMANDS.items():
        p = sub.add_parser(name, help=spec.help, description=spec.help)
        spec.add_arguments(p)
        p.set_defaults(_data_run=spec.run)
    parser.set_defaults(_data_parser=parser)


def run(args: argparse.Namespace) -> int:
    handler = getattr(args, "_data_run", None)
    if handler is None:
        args._data_parser.print_help()
        return 2
    return int(handler(args) or 0)
