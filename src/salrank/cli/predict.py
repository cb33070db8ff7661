"""``salrank predict``: rank the salient objects of photos and write one JSON (and a colour map) per photo."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

COMMAND = "predict"
HELP = "rank the salient objects of photos with a model (official or salrank weights, or a zoo name)"
ORDER = 10
DESCRIPTION = """\
Rank the salient objects of photos and write, per photo, OUT/<name>.json:

  {"image", "height", "width", "model",
   "instances": [{"rank": 1 (most salient), "segmentation": COCO RLE (counts as str),
                  "score", "saliency", "bbox": [x1, y1, x2, y2] px, "keypoints" (pose models)}, ...]}

and OUT/<name>.png, the rank colour map (the official SeqRank palette). The model is given by a
config and/or weights (official config.yaml + .pth, or salrank .safetensors with its config inside),
or by a model-zoo name (--model; 'default' is the built-in training-free ranker).
"""
EPILOG = """\
Examples:
  salrank predict photo.jpg --model seqrank-assr-correct --out results/
  salrank predict photos/ --config config.yaml --weights seqrank_assr_swinL_ckp.pth --device auto
  salrank predict a.jpg b.png --weights my_model.safetensors --batch-size 4 --overwrite

Images that cannot be read are reported and skipped; existing outputs are kept unless --overwrite.
Exit status: 0 when every image was written (or kept), 1 when some failed, 2 on a usage error.
"""

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("images", nargs="+", metavar="IMAGE", help="image files, folders (searched recursively) or glob patterns")
    parser.add_argument("--config", metavar="CONFIG", help="official config.yaml or salrank config (.json/.yaml)")
    parser.add_argument("--weights", metavar="CKPT", help="official .pth, salrank .safetensors, or a zoo name")
    parser.add_argument("--model", metavar="NAME", help="a model-zoo entry (installed with 'salrank weights fetch'), or 'default'")
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:N or auto")
    parser.add_argument("--batch-size", type=int, default=1, metavar="N", help="images per model call (default 1)")
    parser.add_argument("--autocast", choices=("bf16", "fp16"), help="mixed precision on CUDA (default: float32)")
    parser.add_argument("--out", default="predictions", metavar="DIR", help="output folder (default: ./predictions)")
    parser.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    parser.add_argument("--no-colormap", action="store_true", help="do not write the colour-map PNGs")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def build_predictor(args: argparse.Namespace) -> Any:
    """The :class:`~salrank.predictor.Predictor` the arguments describe."""
    from salrank.errors import InputError
    from salrank.modeling.loading import load_model
    from salrank.predictor import Predictor

    if args.model is not None and (args.weights is not None or args.config is not None):
        raise InputError("--model names a complete model; do not combine it with --config/--weights")
    if args.model == "default":
        model = load_model({"architecture": "default", "config": {}})
    elif args.model is not None:
        model = load_model(name=args.model)
    elif args.config is None and args.weights is None:
        raise InputError("no model given: pass --model NAME (a zoo entry, or 'default'), or --config/--weights")
    else:
        model = load_model(args.config, args.weights)
    return Predictor(model, device=args.device, autocast=args.autocast, batch_size=args.batch_size)


def output_names(images: list[Path]) -> list[str]:
    """A distinct output name per image: its stem, with ``-2``, ``-3``, ... for repeated stems."""
    seen: dict[str, int] = {}
    names = []
    for path in images:
        stem = path.stem
        seen[stem] = seen.get(stem, 0) + 1
        names.append(stem if seen[stem] == 1 else f"{stem}-{seen[stem]}")
    return names


def write_outputs(result: Any, out_dir: Path, name: str, colormap: bool) -> list[Path]:
    """Write ``<name>.json`` (and ``<name>.png``) atomically; returns the paths written."""
    from salrank.utils.io import write_bytes, write_json

    data = result.to_dict()
    data["image"] = name
    written = [out_dir / f"{name}.json"]
    write_json(written[0], data)
    if colormap:
        import cv2

        from salrank.viz import rank_colormap

        ok, png = cv2.imencode(".png", rank_colormap(result)[:, :, ::-1])
        if ok:
            written.append(out_dir / f"{name}.png")
            write_bytes(written[-1], png.tobytes())
    return written


def run(args: argparse.Namespace) -> int:
    from salrank.errors import InputError
    from salrank.utils.io import list_images, read_image

    if args.batch_size < 1:
        raise InputError("--batch-size must be at least 1")
    out_dir = Path(args.out)
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError("--out must be a folder", out_dir)
    images = list_images(args.images)
    if not images:
        raise InputError("no images found in " + ", ".join(args.images))
    names = output_names(images)
    todo = []
    kept = 0
    for path, name in zip(images, names):
        if (out_dir / f"{name}.json").exists() and not args.overwrite:
            kept += 1
            logger.info("%s: %s exists, kept (pass --overwrite to replace it)", path, out_dir / f"{name}.json")
        else:
            todo.append((path, name))
    if not todo:
        print(f"all {len(images)} outputs already exist in {out_dir} (pass --overwrite to redo them)")
        return 0

    predictor = build_predictor(args)
    colormap = not args.no_colormap
    failed: list[str] = []
    written = 0
    progress = None
    if not args.no_progress and sys.stderr.isatty() and len(todo) > 1:
        from tqdm import tqdm

        progress = tqdm(total=len(todo), unit="image", desc="predict")
    try:
        for start in range(0, len(todo), predictor.batch_size):
            batch = []
            for path, name in todo[start : start + predictor.batch_size]:
                try:
                    batch.append((read_image(path), name, path))
                except InputError as exc:
                    failed.append(str(exc))
                    logger.warning("skipped: %s", exc)
            if batch:
                results = predictor.predict_arrays([b[0] for b in batch], [b[1] for b in batch])
                for (_, name, path), result in zip(batch, results):
                    write_outputs(result, out_dir, name, colormap)
                    written += 1
                    logger.debug("%s: %d objects -> %s", path, len(result), out_dir / f"{name}.json")
            if progress is not None:
                progress.update(len(todo[start : start + predictor.batch_size]))
    finally:
        if progress is not None:
            progress.close()
    parts = [f"wrote {written} prediction(s) to {out_dir}"]
    if kept:
        parts.append(f"kept {kept} existing")
    if failed:
        parts.append(f"{len(failed)} failed")
    print(", ".join(parts))
    for message in failed:
        print(f"  failed: {message}", file=sys.stderr)
    return 1 if failed else 0
