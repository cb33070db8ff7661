"""``salrank demo``: a local web page to rank the salient objects of your photos."""

from __future__ import annotations

import argparse
import importlib.util

COMMAND = "demo"
HELP = "start a local web page to rank your photos in the browser (needs: pip install 'salrank[demo]')"
ORDER = 12
DESCRIPTION = """\
Start a web page on this computer: upload a photo and see the ranked objects on the photo, the rank
colour map, the people's skeletons (models with poses), the ranked list with scores, and download
the result JSON. The drop-down offers the built-in default, every installed zoo model and --model.

Listens on 127.0.0.1 only (this computer); --host 0.0.0.0 needs --allow-remote. Nothing is sent
anywhere: Gradio's analytics, share links and other outside calls are switched off. Uploads over
--max-upload-mb and images over --max-megapixels are refused, as are files that are not images.
"""
EPILOG = """\
Examples:
  salrank demo                                  then open http://127.0.0.1:7860
  salrank demo --model seqrank-assr-correct --port 8080
  salrank demo --host 0.0.0.0 --allow-remote    serve the local network (no authentication!)
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", metavar="NAME", help="the model selected first: 'default', a zoo name or a checkpoint file")
    parser.add_argument("--config", metavar="CONFIG", help="the config of a --model checkpoint file")
    parser.add_argument("--device", default="auto", help="auto (default), cpu, cuda, cuda:N")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this computer only)")
    parser.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    parser.add_argument("--allow-remote", action="store_true", help="allow a --host other computers can reach")
    parser.add_argument("--concurrency", type=int, default=4, metavar="N", help="requests processed at the same time (default 4)")
    parser.add_argument("--max-upload-mb", type=float, default=20, metavar="MB", help="largest upload accepted (default 20)")
    parser.add_argument("--max-megapixels", type=float, default=40, metavar="MP", help="largest image accepted (default 40)")


def run(args: argparse.Namespace) -> int:
    from salrank.apps.demo import DemoSettings, launch
    from salrank.errors import InputError
    from salrank.ranker import installed_models

    if importlib.util.find_spec("gradio") is None:
        raise InputError("the demo needs Gradio, which is not installed: pip install 'salrank[demo]'")
    if not 1 <= args.port <= 65535:
        raise InputError(f"--port must be between 1 and 65535, not {args.port}")
    if args.concurrency < 1 or args.max_upload_mb <= 0 or args.max_megapixels <= 0:
        raise InputError("--concurrency, --max-upload-mb and --max-megapixels must be positive")
    models = installed_models()
    if args.model is not None:
        models = [args.model] + [m for m in models if m != args.model]
    settings = DemoSettings(
        models=models,
        config=args.config,
        device=args.device,
        max_upload_mb=args.max_upload_mb,
        max_megapixels=args.max_megapixels,
        concurrency=args.concurrency,
        instances_per_model=min(2, args.concurrency),
    )
    # load the first model now: a missing weights file is reported before the page opens
    from salrank.apps.demo import DemoApp

    probe = DemoApp(settings)
    with probe.pool.borrow(models[0]) as ranker:
        from salrank.apps.examples import example_image

        ranker(example_image())  # warm up (lazy graph set-up), so the first visitor does not wait for it
        print(f"model {ranker.name} loaded ({ranker.source})")
    launch(settings, args.host, args.port, allow_remote=args.allow_remote, block=True, quiet=args.quiet, preloaded=probe)
    return 0
