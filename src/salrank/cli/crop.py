"""``salrank crop``: content-aware cropping that keeps the most salient objects."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

COMMAND = "crop"
HELP = "crop photos to an aspect ratio or size, keeping their most salient objects"
ORDER = 40
DESCRIPTION = """\
Crop photos to a target aspect ratio (--aspect 16:9) or size (--size 1080x1350) so that the top-k
ranked salient objects stay in the picture (the use of salient object ranking named in the PPA
paper). The crop is the largest rectangle of that shape (--mode fit) or the smallest one around the
kept objects (--mode tight); it keeps the most salient objects that fit together, with a margin
around them, avoids cutting other objects in half, and centres the kept ones. Crops keep the
source's format, colour mode, ICC profile and EXIF data (the photo is turned upright first).
"""
EPILOG = """\
Examples:
  salrank crop photo.jpg --aspect 16:9                       crops/photo.jpg
  salrank crop photos/ --size 1080x1080 --top-k 2 --show     square crops + crops/<name>_preview.jpg
  salrank crop shots/*.png --aspect 4:5 --mode tight --model seqrank-assr-correct --out insta/

Exit status: 0 when every photo was cropped, 1 when some failed, 2 on a usage error.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("images", nargs="+", metavar="IMAGE", help="image files, folders (searched recursively) or glob patterns")
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--aspect", metavar="W:H", help="target aspect ratio, e.g. 16:9, 4:5, 1, 1.91")
    target.add_argument("--size", metavar="WxH", help="target size in pixels (the crop is resized to it), e.g. 1080x1080")
    parser.add_argument("--top-k", type=int, default=3, metavar="K", help="keep up to the K most salient objects (default 3)")
    parser.add_argument(
        "--margin",
        type=float,
        default=0.05,
        help="space around the kept objects, fraction of the crop's shorter side (default 0.05)",
    )
    parser.add_argument(
        "--mode", choices=("fit", "tight"), default="fit", help="fit: largest crop (default); tight: zoom on the kept objects"
    )
    parser.add_argument(
        "--show", action="store_true", help="also write <name>_preview.jpg: the photo with the crop and the ranks"
    )
    parser.add_argument("--out", default="crops", metavar="DIR", help="output folder (default ./crops)")
    parser.add_argument("--overwrite", action="store_true", help="replace existing crops")
    model = parser.add_argument_group("model")
    model.add_argument("--model", default="default", metavar="NAME", help="'default' (built-in), a zoo name or a checkpoint file")
    model.add_argument("--config", metavar="CONFIG", help="the checkpoint's config (official config.yaml or salrank config)")
    model.add_argument("--device", default="auto", help="auto (default), cpu, cuda, cuda:N")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar (there is none when stderr is not a terminal)")


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from salrank.apps.crop import crop_files, parse_aspect, parse_size
    from salrank.errors import InputError
    from salrank.outputs import output_names
    from salrank.ranker import Ranker
    from salrank.utils.io import list_images

    aspect = parse_aspect(args.aspect) if args.aspect else None
    size = parse_size(args.size) if args.size else None
    if args.top_k < 1:
        raise InputError("--top-k must be at least 1")
    if not 0.0 <= args.margin < 0.5:
        raise InputError("--margin must be in [0, 0.5)")
    out_dir = Path(args.out)
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError("--out must be a folder", out_dir)
    files = list_images(args.images)
    if not files:
        raise InputError("no images found in " + ", ".join(args.images))
    names = output_names(files)
    ranker = Ranker(args.model, config=args.config, device=args.device)
    failed: list[tuple[Path, str]] = []
    done = 0
    progress = not args.no_progress and not args.quiet and len(files) > 1 and sys.stderr.isatty()
    bar = tqdm(total=len(files), unit="img", desc="salrank crop", disable=not progress, file=sys.stderr, dynamic_ncols=True)
    try:
        outcomes = crop_files(
            ranker, files, out_dir, aspect=aspect, size=size, top_k=args.top_k, margin=args.margin,
            mode=args.mode, show=args.show, overwrite=args.overwrite, names=names,
        )  # fmt: skip
        for outcome in outcomes:
            bar.update(1)
            if not outcome.ok:
                failed.append((outcome.source, outcome.error or "unknown error"))
                bar.write(f"skipped {outcome.source}: {outcome.error}", file=sys.stderr)
                continue
            done += 1
            line = f"{outcome.source} -> {outcome.target}: {outcome.plan.describe()}"  # type: ignore[union-attr]
            if outcome.preview is not None:
                line += f" (preview {outcome.preview})"
            bar.write(line) if progress else print(line)
    finally:
        bar.close()
    print(
        f"{done} of {len(files)} photo(s) cropped into {out_dir}"
        + (f", {len(failed)} failed" if failed else "")
        + f" (model {ranker.name})"
    )
    for source, reason in failed:
        print(f"  failed: {source}: {reason}", file=sys.stderr)
    return 1 if failed else 0
