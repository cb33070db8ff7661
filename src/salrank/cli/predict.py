"""``salrank predict``: rank the salient objects of photos and write colour maps, overlays and JSON."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from salrank.apps.predict import PredictSummary
    from salrank.outputs import OutputOptions

COMMAND = "predict"
HELP = "rank the salient objects of photos (built-in default model, a zoo model or a checkpoint)"
ORDER = 10
DESCRIPTION = """\
Rank the salient objects of photos: files, folders (searched recursively) and glob patterns; JPEG,
PNG, WebP, BMP, TIFF; EXIF orientation honoured, greyscale and RGBA handled.

Without --model the built-in, training-free default ranker is used (nothing to download; the learned
models are far better: 'salrank weights list'). Outputs, in OUT (default ./predictions):

  json/<name>.json         objects in rank order: COCO RLE mask, rank (1 = most salient), score,
                           saliency (rank score), bbox [x1, y1, x2, y2], keypoints (pose models), model
  colormaps/<name>.png     the official rank colour map, at the photo's size
  overlays/<name>.jpg      the photo with rank colours, outlines, rank numbers and the model's name
  rank_maps/<name>.png     the ASSR grey rank map (255/229/204/178/153 for ranks 1-5)
  skeletons/<name>.png     colour map + predicted skeletons (models that predict poses)
  masks/<name>/rank<r>.png per-object masks (--masks)
  manifest.json            the run: model and where it came from, settings, every image

--layout per-image puts each photo's files in OUT/<name>/ instead. --coco FILE also writes one COCO
results file for the whole run (what 'salrank eval --pred FILE' reads; so does --pred OUT/json).
"""
EPILOG = """\
Examples:
  salrank predict photo.jpg                                  the built-in default, outputs in ./predictions
  salrank predict --example                                  the same on the example photo shipped with salrank
  salrank predict photos/ --model seqrank-assr-correct --device auto --out results/
  salrank predict 'shots/*.jpg' --model checkpoint.pth --config config.yaml --batch-size 4
  salrank predict photos/ --coco run.json --masks --overwrite

A file that cannot be read is reported and skipped; the run goes on. Existing outputs are never
replaced: the run refuses to start unless --overwrite (replace them) or --skip-existing (leave those
images out).
Exit status: 0 when every image was ranked, 1 when some failed, 2 on a usage error.
"""

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("images", nargs="*", metavar="IMAGE", help="image files, folders (searched recursively) or glob patterns")
    parser.add_argument("--example", action="store_true", help="also rank the example photo shipped with salrank")
    model = parser.add_argument_group("model")
    model.add_argument(
        "--model",
        metavar="NAME",
        help="'default' (built-in, training-free; the default), a model-zoo name (installed with 'salrank weights fetch'), "
        "or a checkpoint file (official .pth or salrank .safetensors)",
    )
    model.add_argument("--weights", metavar="CKPT", help="a checkpoint file (same as --model CKPT)")
    model.add_argument("--config", metavar="CONFIG", help="the checkpoint's config: official config.yaml or a salrank config")
    model.add_argument("--device", default="auto", help="auto (CUDA when available; the default), cpu, cuda, cuda:N")
    model.add_argument("--size", type=int, metavar="PX", help="resize input to this test size instead of the model's own")
    model.add_argument("--batch-size", type=int, default=1, metavar="N", help="images per model call (default 1)")
    model.add_argument("--autocast", choices=("bf16", "fp16"), help="mixed precision on CUDA (default: float32)")
    out = parser.add_argument_group("outputs")
    out.add_argument("--out", default="predictions", metavar="DIR", help="output folder (default: ./predictions)")
    out.add_argument(
        "--layout", choices=("by-kind", "per-image"), default="by-kind", help="one folder per kind (default) or per image"
    )
    out.add_argument("--coco", metavar="FILE", help="also write one COCO results file for the whole run")
    out.add_argument("--masks", action="store_true", help="also write per-object mask PNGs")
    out.add_argument("--no-json", action="store_true", help="no per-image JSON files")
    out.add_argument("--no-colormap", action="store_true", help="no colour maps")
    out.add_argument("--no-overlay", action="store_true", help="no overlays")
    out.add_argument("--no-rank-map", action="store_true", help="no grey rank maps")
    out.add_argument("--no-skeleton", action="store_true", help="no skeleton composites")
    out.add_argument(
        "--rank-map-style", choices=("assr", "seqrank"), default="assr", help="grey levels of the rank maps (default assr)"
    )
    out.add_argument("--overlay-format", choices=("jpg", "png"), default="jpg", help="overlay file format (default jpg)")
    out.add_argument("--scores", action="store_true", help="write each object's rank score under its number in the overlay")
    out.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    out.add_argument("--skip-existing", action="store_true", help="leave out images whose outputs exist (resume a run)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar (there is none when stderr is not a terminal)")


def model_spec(args: argparse.Namespace) -> tuple[str, str | None]:
    """``(model, config)`` from ``--model``/``--weights``/``--config``."""
    from salrank.errors import InputError

    if args.model is not None and args.weights is not None:
        raise InputError("give the model once: --model NAME_OR_FILE or --weights FILE, not both")
    spec = args.model if args.model is not None else args.weights
    if spec is None:
        if args.config is not None:
            raise InputError("--config describes a checkpoint's model: also pass the checkpoint (--model FILE)")
        spec = "default"
    return spec, args.config


def output_options(args: argparse.Namespace) -> OutputOptions:
    from salrank.outputs import OutputOptions

    return OutputOptions(
        json=not args.no_json,
        colormap=not args.no_colormap,
        overlay=not args.no_overlay,
        rank_map=not args.no_rank_map,
        skeleton=not args.no_skeleton,
        masks=args.masks,
        layout=args.layout,
        rank_map_style=args.rank_map_style,
        overlay_format=args.overlay_format,
        show_scores=args.scores,
        overwrite=args.overwrite,
    )


def collect_inputs(args: argparse.Namespace) -> tuple[list[Path], dict[Path, Path]]:
    """The image files of the arguments, and the input folder each was found in."""
    from salrank.errors import InputError
    from salrank.utils.io import list_images

    files: list[Path] = []
    roots: dict[Path, Path] = {}
    items = list(args.images)
    if args.example:
        from salrank.apps.examples import example_image

        items.append(str(example_image()))
    if not items:
        raise InputError("no images given: name image files, folders or globs (or --example for the bundled photo)")
    for item in items:
        found = list_images([item])
        if not found and Path(item).is_dir():
            logger.warning("%s: no image files in this folder", item)
        for f in found:
            if Path(item).is_dir():
                roots.setdefault(f, Path(item))
            files.append(f)
    unique = list(dict.fromkeys(files))
    if not unique:
        raise InputError("no images found in " + ", ".join(items))
    return unique, roots


def run(args: argparse.Namespace) -> int:
    from salrank.apps.predict import check_targets, predict_files
    from salrank.errors import InputError
    from salrank.outputs import existing_outputs, output_names
    from salrank.ranker import Ranker

    if args.batch_size < 1:
        raise InputError("--batch-size must be at least 1")
    if args.overwrite and args.skip_existing:
        raise InputError("--overwrite and --skip-existing contradict each other")
    out_dir = Path(args.out)
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError("--out must be a folder", out_dir)
    options = output_options(args)
    if not options.kinds() and not args.coco:
        raise InputError("every output is switched off: nothing to write")
    files, roots = collect_inputs(args)
    skipped = 0
    names = output_names(files, roots)
    if args.skip_existing:
        keep = [i for i, n in enumerate(names) if not existing_outputs(out_dir, [n], options)]
        skipped = len(files) - len(keep)
        files, names = [files[i] for i in keep], [names[i] for i in keep]
        if not files:
            print(f"all {skipped} images already have outputs in {out_dir}; nothing to do")
            return 0
    check_targets(out_dir, names, options, Path(args.coco) if args.coco else None)  # before the model loads
    spec, config = model_spec(args)
    ranker = Ranker(spec, config=config, device=args.device, size=args.size, batch_size=args.batch_size, autocast=args.autocast)
    progress = not args.no_progress and not args.quiet and sys.stderr.isatty()  # no bar in logs and pipes
    summary = predict_files(
        ranker,
        files,
        out_dir,
        options,
        names=names,
        coco=args.coco,
        progress=progress,
        command=["salrank", *sys.argv[1:]],
        settings={"size": args.size, "device": args.device, "batch_size": args.batch_size, "skipped_existing": skipped},
    )
    print(summary.text())
    if skipped:
        print(f"  kept      {skipped} image(s) whose outputs existed (--skip-existing)")
    if summary.done == 1 and summary.total == 1:
        _print_single(summary)
    return summary.exit_code


def _print_single(summary: PredictSummary) -> None:
    """For one photo, say where its pictures are."""
    from salrank.outputs import read_manifest

    manifest = read_manifest(summary.out_dir)
    if not manifest or not manifest.get("images"):
        return
    record = manifest["images"][-1]
    for kind in ("colormap", "overlay", "skeleton", "json"):
        rel = record.get("outputs", {}).get(kind)
        if rel:
            print(f"  {kind:<9} {summary.out_dir / rel}")
