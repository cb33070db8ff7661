"""Inference latency and peak memory of the full-size SeqRank models (random weights).

Workload, as ``../shared/fixtures/models/TIMING.md`` timed the official implementation: Swin-L SeqRank
(corrected: FPN + 2 SRM blocks; original: FrcPN + 6 SRM blocks) at the official test size 800x800,
float32, eval mode, random weights (so the read-out loop never stops early: all 100 ranking steps
run), 2 CPU threads. One timed call = read the photo + official preprocessing + network + read-out +
masks at the photo's size (``SeqRank.predict``), for a batch of 1 or 8 photos; latency is per image.
1 warm-up call, then ``--runs`` timed calls, median reported. Each configuration runs in its own
process so that peak RSS (``ru_maxrss``: model construction + all calls) is its own. On a shared
machine, ``--max-foreign 0.05`` repeats every timed call during which other processes used more than
5 % of the CPUs (the share is measured from ``/proc/stat`` and reported).

Rows:

* ``salrank`` — the default (``fast_inference``) path;
* ``salrank, every SRM step computed`` — the same without the memoisation of visiting states (see
  ``salrank.modeling.seqrank.inference``): the SRM is evaluated at all 100 steps, as the official loop
  does; this row shows the per-step cost;
* ``salrank reference path`` (``--reference``) — the official formulas step by step.

The official figures of ``TIMING.md`` were taken on an idle machine; on a shared machine absolute
times are not comparable with them. ``--official-src DIR`` (a checkout of guanhuankang/SeqRank, e.g.
``git -C /work/.mirror/guanhuankang+SeqRank/repo archive HEAD seqrank | tar -x -C DIR``) adds paired
rows: the official ``SeqRank`` module is built from its own code (detectron2, timm and torchvision are
replaced by minimal stand-ins written here; its RoIAlign by :func:`salrank.ops.roi_align`) and timed
in the same process, its calls alternating with salrank's, so both see the same conditions. The
time spent in that stand-in RoIAlign (pure PyTorch, slower than a compiled kernel) is subtracted from
the official times, which favours the official code.

Also printed: a per-module breakdown (backbone, neck, FOM, SRM per evaluation) from one extra
instrumented call, comparable with the official breakdown, and (``--check``) an identity check of the
fast path against the reference path at full size on one photo.

Run: ``python benchmarks/infer_speed.py [--variants correct original] [--batches 1 8] [--runs 3]
[--threads 2] [--device cpu|cuda] [--dtypes fp32 bf16] [--check] [--reference] [--json out.json]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve()
SHARED = Path(os.environ.get("SALRANK_SHARED", HERE.parents[2] / "shared"))

# Official CPU medians on the same 2-core machine (TIMING.md), seconds per image, batch 1.
OFFICIAL = {
    "correct": {"total": 10.36, "backbone": 5.75, "neck": 0.30, "fom": 1.26, "srm_step": 0.031, "rss_gib": 2.8},
    "original": {"total": 20.38, "backbone": 6.46, "neck": 2.88, "fom": 1.33, "srm_step": 0.097, "rss_gib": 4.0},
}


def photos(n: int) -> list[Path | None]:
    """``n`` photo paths (the shared COCO test photos, cycled), or ``None`` (a synthetic 640x480 photo)."""
    folder = SHARED / "images" / "coco"
    found = sorted(folder.glob("*.jpg")) if folder.is_dir() else []
    if not found:
        return [None] * n
    preferred = folder / "COCO_val2014_000000502220.jpg"
    ordered = ([preferred] if preferred in found else []) + [p for p in found if p != preferred]
    return [ordered[i % len(ordered)] for i in range(n)]


# ------------------------------------------------------------------------------------------- worker


_STUBS = {
    "detectron2/__init__.py": "",
    "detectron2/utils/__init__.py": "",
    "detectron2/utils/registry.py": """
class Registry(dict):
    def __init__(self, name):
        super().__init__()
        self.name = name
    def register(self, obj=None):
        if obj is None:
            return lambda o: self.register(o)
        self[obj.__name__] = obj
        return obj
    def get(self, name):
        return self[name]
""",
    "detectron2/config/__init__.py": """
import functools
def configurable(init):
    @functools.wraps(init)
    def wrapped(self, *args, **kwargs):
        if args and hasattr(args[0], "MODEL"):
            return init(self, **type(self).from_config(*args, **kwargs))
        return init(self, *args, **kwargs)
    return wrapped
""",
    "detectron2/modeling/__init__.py": """
from collections import namedtuple
from torch import nn
from detectron2.utils.registry import Registry
BACKBONE_REGISTRY = Registry("BACKBONE")
META_ARCH_REGISTRY = Registry("META_ARCH")
ShapeSpec = namedtuple("ShapeSpec", ["channels", "height", "width", "stride"], defaults=[None] * 4)
class Backbone(nn.Module):
    pass
def build_backbone(cfg):
    return BACKBONE_REGISTRY.get(cfg.MODEL.BACKBONE.NAME)(cfg, ShapeSpec(channels=3))
""",
    "timm/__init__.py": "",
    "timm/models/__init__.py": "",
    "timm/models/registry.py": "def register_model(f):\n    return f\n",
    "timm/models/vision_transformer.py": "def _cfg(**kw):\n    return kw\n",
    "timm/models/layers/__init__.py": """
import collections.abc
from torch import nn
def to_2tuple(x):
    return tuple(x) if isinstance(x, collections.abc.Iterable) else (x, x)
trunc_normal_ = nn.init.trunc_normal_
class DropPath(nn.Module):
    def __init__(self, p=0.0):
        super().__init__()
        self.p = p
    def forward(self, x):
        return x
""",
    "torchvision/__init__.py": "from . import models, ops\n",
    "torchvision/models.py": "",
    "torchvision/ops/__init__.py": "from .roi_align import roi_align\n\ndef masks_to_boxes(masks):\n    raise NotImplementedError\n",
    "torchvision/ops/roi_align.py": """
import time
from salrank.ops import roi_align as _roi_align
SECONDS = [0.0]
def roi_align(*args, **kwargs):
    start = time.perf_counter()
    out = _roi_align(*args, **kwargs)
    SECONDS[0] += time.perf_counter() - start
    return out
""",
}
"""Minimal stand-ins for what the official SeqRank code imports at inference (timing only)."""


def official_model(source: Path, variant: str):
    """The official ``SeqRank`` module built from its own code in ``source`` (random weights), and a
    function running it on photos as its demo/test mapper does (PIL read, OpenCV square resize)."""
    import tempfile

    import numpy as np
    import torch
    import yaml

    stubs = Path(tempfile.mkdtemp(prefix="seqrank-official-stubs-"))
    for rel, text in _STUBS.items():
        (stubs / rel).parent.mkdir(parents=True, exist_ok=True)
        (stubs / rel).write_text(text)
    sys.path[:0] = [str(stubs), str(source)]
    from seqrank.SeqRank import SeqRank  # the official meta-architecture

    class Node(dict):
        __getattr__ = dict.__getitem__

    def node(d):
        return Node({k: node(v) if isinstance(v, dict) else v for k, v in d.items()})

    from salrank.modeling.seqrank import (
        seqrank_config_to_official_yaml,
        seqrank_swinL_config,
    )

    official_cfg = seqrank_config_to_official_yaml(seqrank_swinL_config(variant))
    model = SeqRank(node(yaml.safe_load(yaml.safe_dump(official_cfg)))).eval()

    def run(images: list) -> float:
        """Run on ``images``; returns the seconds spent outside the stand-in RoIAlign."""
        import cv2

        stand_in_module = sys.modules["torchvision.ops.roi_align"]
        stand_in_module.SECONDS[0] = 0.0
        start = time.perf_counter()
        batch = []
        for im in images:
            x = cv2.resize(np.ascontiguousarray(im), (800, 800), interpolation=cv2.INTER_LINEAR)
            batch.append({"image": torch.from_numpy(x).permute(2, 0, 1).float(), "height": im.shape[0], "width": im.shape[1]})
        with torch.no_grad():
            model(batch)
        return time.perf_counter() - start - stand_in_module.SECONDS[0]

    return model, run


def machine_ticks() -> tuple[int, int]:
    """(busy clock ticks of the whole machine, ticks of this process) from /proc (Linux); (0, 0) elsewhere."""
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        own = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0, 0
    return sum(fields) - fields[3] - fields[4], int(own[11]) + int(own[12])


def foreign_share(before: tuple[int, int], after: tuple[int, int], seconds: float) -> float:
    """Share of the machine's CPUs that other processes used during ``seconds``."""
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    foreign = max(0, (after[0] - before[0]) - (after[1] - before[1]))
    return foreign / tick / (seconds * (os.cpu_count() or 1))


def worker(args: argparse.Namespace) -> dict:
    import numpy as np
    import torch

    from salrank.modeling.seqrank import (
        RankingTrace,
        build_seqrank,
        seqrank_swinL_config,
    )
    from salrank.utils.io import read_image

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    device = torch.device(args.device)
    cfg = seqrank_swinL_config(args.variant)
    cfg.fast_inference = not args.reference
    model = build_seqrank(cfg).to(device)
    if args.no_memo:
        model.memoize_ranking = False
    sources = photos(args.batch)

    def load() -> list[np.ndarray]:
        if sources[0] is None:
            return [(np.random.RandomState(i).rand(480, 640, 3) * 255).astype(np.uint8) for i in range(args.batch)]
        return [read_image(p) for p in sources]

    autocast = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[args.dtype]

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    def call() -> list:
        with torch.inference_mode():
            if autocast is None:
                return model.predict(load())
            with torch.autocast(device_type=device.type, dtype=autocast):
                return model.predict(load())

    sync()
    call()  # warm-up
    sync()
    rss_salrank = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # before any official model exists
    official_run = None
    if args.official_src:
        from salrank.utils.io import read_image as _read

        torch.manual_seed(0)
        _, official_run = official_model(Path(args.official_src), args.variant)

        def official_call() -> float:
            start = time.perf_counter()
            images = [_read(p) for p in sources] if sources[0] is not None else load()
            return time.perf_counter() - start + official_run(images)

        official_call()  # its warm-up

    times, shares, rejected, official_times = [], [], [], []
    for _ in range(args.attempts):
        sync()
        ticks, start = machine_ticks(), time.perf_counter()
        results = call()
        sync()
        seconds = time.perf_counter() - start
        share = foreign_share(ticks, machine_ticks(), seconds)
        if share > args.max_foreign:
            rejected.append(seconds)
            continue
        times.append(seconds)
        shares.append(share)
        if official_run is not None:  # the paired official call, right after ours
            official_times.append(official_call())
        if len(times) == args.runs:
            break
    if not times:
        raise SystemExit(f"no call ran with other processes below {args.max_foreign:.0%} of the CPUs")
    per_image = [t / args.batch for t in times]

    # one instrumented call: per-module times
    steps = {"srm_calls": 0, "srm_seconds": 0.0}
    ranking = model.ranking
    inner_step, inner_forward = ranking.step, ranking.forward

    def timed(fn):
        def wrapper(*a, **kw):
            sync()
            t0 = time.perf_counter()
            out = fn(*a, **kw)
            sync()
            steps["srm_seconds"] += time.perf_counter() - t0
            steps["srm_calls"] += 1
            return out

        return wrapper

    ranking.step, ranking.forward = timed(inner_step), timed(inner_forward)
    parts: dict[str, float] = {}
    with torch.inference_mode():
        ctx = torch.autocast(device_type=device.type, dtype=autocast) if autocast is not None else torch.autocast("cpu", enabled=False)
        with ctx:
            t0 = time.perf_counter()
            images = load()
            batch = torch.stack([model.preprocess(im) for im in images]).to(device)
            sync()
            t1 = time.perf_counter()
            feats = model.backbone(model.normalize(batch))
            sync()
            t2 = time.perf_counter()
            features = model.neck({k: feats[k] for k in model.cfg.feature_keys})
            pos = {k: model.position_encoding(features[k]) for k in features}
            sync()
            t3 = time.perf_counter()
            fovea = model.fovea(features, pos, all_masks=False)
            sync()
            t4 = time.perf_counter()
            from salrank.modeling.seqrank import SeqRankOutput

            out = SeqRankOutput(features=features, pos=pos, fovea=fovea)
            trace = RankingTrace()
            rankings = model.rank(out, trace=trace)
            sync()
            t5 = time.perf_counter()
            model.to_instances(out, rankings, [im.shape[:2] for im in images], [f"i{i}" for i in range(len(images))])
            sync()
            t6 = time.perf_counter()
    ranking.step, ranking.forward = inner_step, inner_forward
    b = args.batch
    parts = {
        "read+preprocess": (t1 - t0) / b,
        "backbone": (t2 - t1) / b,
        "neck+pe": (t3 - t2) / b,
        "fom": (t4 - t3) / b,
        "srm_loop": (t5 - t4) / b,
        "masks+boxes": (t6 - t5) / b,
    }
    selections = trace.stacked(0)["selected"].tolist()
    record = {
        "variant": args.variant,
        "batch": b,
        "device": str(device),
        "dtype": args.dtype,
        "path": "reference" if args.reference else ("fast, every SRM step" if args.no_memo else "fast"),
        "threads": args.threads,
        "runs_s_per_image": per_image,
        "official_paired_s_per_image": [t / args.batch for t in official_times],
        "foreign_cpu_share": shares,
        "rejected_calls_s_per_image": [t / args.batch for t in rejected],
        "median_s_per_image": statistics.median(per_image),
        "peak_rss_gib": rss_salrank,
        "peak_cuda_gib": (torch.cuda.max_memory_allocated() / 2**30) if device.type == "cuda" else None,
        "parts_s_per_image": parts,
        "loop_steps": len(selections),
        "srm_evaluations": steps["srm_calls"],
        "srm_s_per_evaluation": steps["srm_seconds"] / max(1, steps["srm_calls"]),
        "objects_image0": len(results[0]),
        "distinct_queries_image0": len(set(selections)),
    }
    return record


def identity_check(args: argparse.Namespace) -> dict:
    """Fast path vs reference path at full size on one photo: same ranking, masks, scores."""
    import numpy as np
    import torch

    from salrank.modeling.seqrank import build_seqrank, seqrank_swinL_config
    from salrank.utils.io import read_image

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = build_seqrank(seqrank_swinL_config(args.variant))
    source = photos(1)[0]
    image = read_image(source) if source is not None else (np.random.RandomState(0).rand(480, 640, 3) * 255).astype(np.uint8)
    with torch.inference_mode():
        fast = model.set_fast_inference(True).predict([image])[0]
        reference = model.set_fast_inference(False).predict([image])[0]
    same_order = fast.extras["query_index"].tolist() == reference.extras["query_index"].tolist()
    return {
        "variant": args.variant,
        "same_order": same_order,
        "objects": len(fast),
        "mask_pixels_differing": int((fast.masks != reference.masks).sum()) if same_order else None,
        "max_score_diff": float(np.abs(fast.scores - reference.scores).max()) if same_order and len(fast) else None,
        "max_saliency_diff": float(np.abs(fast.saliency - reference.saliency).max()) if same_order and len(fast) else None,
        "max_box_diff_px": float(np.abs(fast.boxes - reference.boxes).max()) if same_order and len(fast) else None,
    }


# ------------------------------------------------------------------------------------------- parent


def spawn(extra: list[str], timeout: float) -> dict | None:
    cmd = [sys.executable, str(HERE), "--worker", *extra]
    try:
        proc = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        print(f"  timed out: {' '.join(extra)}", file=sys.stderr)
        return None
    if proc.returncode != 0:
        print(f"  failed: {' '.join(extra)}\n{proc.stderr[-2000:]}", file=sys.stderr)
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])


def table(records: list[dict]) -> str:
    lines = [
        "| model | path | batch | device / dtype | median s/image | runs (s/image) | other processes | official s/image (TIMING.md) | speed-up | official, paired (s/image) | paired speed-up | peak RSS |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in records:
        official = OFFICIAL[r["variant"]]["total"] if r["device"] == "cpu" and r["dtype"] == "fp32" else None
        speedup = f"{official / r['median_s_per_image']:.2f}x" if official and r["batch"] == 1 else ("-" if not official else f"{official / r['median_s_per_image']:.2f}x (vs batch 1)")
        mem = f"{r['peak_rss_gib']:.1f} GiB" + (f" (GPU {r['peak_cuda_gib']:.1f} GiB)" if r.get("peak_cuda_gib") else "")
        runs = ", ".join(f"{t:.2f}" for t in r["runs_s_per_image"])
        others = f"<= {100 * max(r['foreign_cpu_share']):.0f}% CPU"
        paired = r.get("official_paired_s_per_image") or []
        paired_text = ", ".join(f"{t:.2f}" for t in paired) if paired else "-"
        paired_speedup = f"**{statistics.median(paired) / r['median_s_per_image']:.2f}x**" if paired else "-"
        lines.append(
            f"| {r['variant']} | {r['path']} | {r['batch']} | {r['device']} / {r['dtype']} | **{r['median_s_per_image']:.2f}** | {runs} | "
            f"{others} | {official if official else '-'} | {speedup} | {paired_text} | {paired_speedup} | {mem} |"
        )
    return "\n".join(lines)


def breakdown(records: list[dict]) -> str:
    lines = [
        "| model | path | batch | read+resize | backbone | neck+PE | FOM | SRM loop (steps / evaluations, s per evaluation) | masks+boxes |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in records:
        p = r["parts_s_per_image"]
        lines.append(
            f"| {r['variant']} | {r['path']} | {r['batch']} | {p['read+preprocess']:.2f} | {p['backbone']:.2f} | {p['neck+pe']:.2f} | "
            f"{p['fom']:.2f} | {p['srm_loop']:.2f} ({r['loop_steps']} / {r['srm_evaluations']}, {1000 * r['srm_s_per_evaluation']:.0f} ms) | "
            f"{p['masks+boxes']:.2f} |"
        )
    for variant, o in OFFICIAL.items():
        lines.append(
            f"| {variant} | official (TIMING.md) | 1 | - | {o['backbone']:.2f} | {o['neck']:.2f} | {o['fom']:.2f} | "
            f"{100 * o['srm_step']:.2f} (100 / 100, {1000 * o['srm_step']:.0f} ms) | - |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variants", nargs="+", default=["correct", "original"], choices=["correct", "original"])
    parser.add_argument("--batches", nargs="+", type=int, default=[1, 8])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtypes", nargs="+", default=None, help="default: fp32 on CPU, fp32 bf16 on CUDA")
    parser.add_argument("--no-every-step", action="store_true", help="skip the rows without SRM memoisation")
    parser.add_argument("--reference", action="store_true", help="also time the reference path (batch 1)")
    parser.add_argument("--check", action="store_true", help="identity check fast vs reference at full size")
    parser.add_argument("--timeout", type=float, default=3600)
    parser.add_argument(
        "--max-foreign",
        type=float,
        default=1.0,
        help="repeat a timed call when other processes used more than this share of the CPUs during it "
        "(e.g. 0.05 on a shared machine; default 1.0 = keep every call)",
    )
    parser.add_argument("--attempts", type=int, default=20, help="at most this many timed calls per configuration")
    parser.add_argument("--official-src", metavar="DIR", help="a checkout of guanhuankang/SeqRank: also time the official code, paired (batch 1)")
    parser.add_argument("--json", help="write all records to this file")
    # worker mode
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--variant", default="correct", help=argparse.SUPPRESS)
    parser.add_argument("--batch", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--dtype", default="fp32", help=argparse.SUPPRESS)
    parser.add_argument("--no-memo", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--identity", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker:
        print(json.dumps(identity_check(args) if args.identity else worker(args)))
        return

    import torch

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("GPU rows: not measured (no GPU available)")
        return
    dtypes = args.dtypes or (["fp32"] if args.device == "cpu" else ["fp32", "bf16"])
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
          f"{args.threads} threads, load average {os.getloadavg()[0]:.1f}", flush=True)  # fmt: skip
    common = ["--threads", str(args.threads), "--runs", str(args.runs), "--device", args.device,
              "--max-foreign", str(args.max_foreign), "--attempts", str(args.attempts)]  # fmt: skip
    records = []
    for variant in args.variants:
        for dtype in dtypes:
            for batch in args.batches:
                jobs = [[]] + ([] if args.no_every_step else [["--no-memo"]])
                if args.reference and batch == 1 and dtype == "fp32":
                    jobs.append(["--reference"])
                for extra in jobs:
                    paired = ["--official-src", args.official_src] if args.official_src and batch == 1 and dtype == "fp32" and "--reference" not in extra else []
                    rec = spawn([*common, "--variant", variant, "--batch", str(batch), "--dtype", dtype, *extra, *paired], args.timeout)
                    if rec is not None:
                        records.append(rec)
                        print(f"  {variant} {rec['path']} batch {batch} {dtype}: {rec['median_s_per_image']:.2f} s/image "
                              f"(runs {', '.join(f'{t:.2f}' for t in rec['runs_s_per_image'])}; other processes "
                              f"{', '.join(f'{100 * x:.0f}%' for x in rec['foreign_cpu_share'])} of the CPUs; "
                              f"{len(rec['rejected_calls_s_per_image'])} disturbed calls discarded), "
                              f"peak RSS {rec['peak_rss_gib']:.1f} GiB", flush=True)  # fmt: skip
    checks = []
    if args.check:
        for variant in args.variants:
            rec = spawn(["--threads", str(args.threads), "--variant", variant, "--identity"], args.timeout)
            if rec is not None:
                checks.append(rec)
                print(f"  identity {variant}: {rec}", flush=True)
    print()
    print(table(records))
    print()
    print(breakdown(records))
    if args.device == "cpu":
        print("\nGPU rows: not measured here (run with --device cuda on a machine with a GPU)")
    if args.json:
        Path(args.json).write_text(json.dumps({"records": records, "identity": checks, "official": OFFICIAL}, indent=2))


if __name__ == "__main__":
    main()
