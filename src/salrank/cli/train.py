"""``salrank train``: train SeqRank, PoseSOR, PPA or seqrank-lite from a recipe or a config file."""

from __future__ import annotations

import argparse

COMMAND = "train"
HELP = "train a model (official recipes, seqrank-lite, or your own config); torchrun for several GPUs"
ORDER = 60
DESCRIPTION = """\
Train a salient-object-ranking model.

CONFIG is a YAML training config or the name of a shipped recipe:
  seqrank_swinL_assr, seqrank_swinL_assr_correct, seqrank_swinL_irsr, seqrank_swinL_irsr_correct,
  posesor_swinL_assr_768, posesor_swinL_irsr_768, posesor_friendly_512, ppa_v39_assr, seqrank_lite, cpu_smoke
Any value can be overridden with dotted KEY=VALUE pairs (the value is parsed as YAML and checked
against the option's type; unknown keys are errors):
  salrank train seqrank_lite data.train=data/synth/synth_train.json solver.max_iter=2000 solver.base_lr=2e-4

The run directory (output_dir, or --output-dir) receives config.yaml, metrics.jsonl, checkpoints/,
curves.png and model_final.safetensors. A directory that holds a previous run is never reused unless
--resume (continue exactly where it stopped) or --overwrite (start over) is given.
"""
EPILOG = """\
Examples:
  salrank data synth data/synth --n 500
  salrank train cpu_smoke --output-dir runs/smoke
  salrank train seqrank_lite data.train=data/synth/synth_train.json data.val=data/synth/synth_val.json
  salrank train seqrank_swinL_assr_correct --resume --output-dir runs/seqrank_assr
  torchrun --nproc_per_node 4 -m salrank train seqrank_swinL_assr_correct   # 4 GPUs (DDP)
  salrank plot runs/smoke
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="training config YAML, or a recipe name (see above)")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="dotted config overrides, e.g. solver.base_lr=1e-4")
    parser.add_argument("--output-dir", help="run directory (default: the config's output_dir)")
    parser.add_argument("--resume", action="store_true", help="continue the run in the output directory from its last checkpoint")
    parser.add_argument("--overwrite", action="store_true", help="start over in an output directory that holds a previous run")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar (log lines instead)")
    parser.add_argument("--print-config", action="store_true", help="print the resolved config and exit")


def run(args: argparse.Namespace) -> int:
    import sys

    import yaml

    from salrank.errors import InputError
    from salrank.training.config import load_train_config

    overrides = list(args.overrides)
    if args.output_dir:
        overrides.append(f"output_dir={args.output_dir}")
    cfg = load_train_config(args.config, overrides)
    if args.print_config:
        yaml.safe_dump(cfg.to_dict(), sys.stdout, sort_keys=False)
        return 0
    if args.resume and args.overwrite:
        raise InputError("--resume and --overwrite exclude each other")
    if not cfg.data.train:
        raise InputError("no training data: set data.train (e.g. data.train=data/synth/synth_train.json)")
    from salrank.training.engine import train

    result = train(cfg, resume=args.resume, overwrite=args.overwrite, progress=not args.no_progress and sys.stderr.isatty())
    import os

    if int(os.environ.get("RANK", "0")) == 0:
        print(f"trained {result.iterations} iterations; run directory {result.run_dir}")
        if result.metrics:
            print("held-out: " + ", ".join(f"{k} {v:.4f}" for k, v in sorted(result.metrics.items())))
        if result.weights:
            print(f"weights: {result.weights}")
        if result.skipped:
            print(f"warning: {result.skipped} unreadable training samples were skipped (see the log)")
    return 0
