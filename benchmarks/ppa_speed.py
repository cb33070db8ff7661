"""CPU (and GPU, where there is one) latency and memory of the full-size PPA model, per inference form.

Set-up as the official timing in ``../shared/fixtures/models/TIMING.md``: VoVNet-39-eSE PPA
(``configs/sor/ppa.yaml``), random weights with the FCOS class bias set to -0.6 and the box-regression
bias to 3.0 so that the 50-detection cap is reached, a 640x480 photo, float32, eval mode, no grad,
2 CPU threads. Each call is ``read_image`` + ``model.predict`` (official preprocessing, network,
post-processing, mask pasting). The official code took **1.20 s** per call on this machine (2 vCPU
Xeon, torch 2.13 CPU, nothing else running).

The frozen BatchNorm statistics of the random backbone are drawn at random too (``--bn-stats random``,
the default; the official random init makes them the identity), so that folding them into the
convolutions does real arithmetic; the mask predictor's weights get std 1.0 instead of 0.001 (bias
-0.05 instead of 0) and the rank classifier's std 0.3 instead of 0.01 (so that mask probabilities are not all within rounding of the
0.5 threshold and the read-out ranks 5 objects, which ``--check`` compares); the timing does not
depend on the values.

Three forms of the same weights are timed in one process, interleaved (reference, default, optimised,
reference, ... so that a busy spell of the shared machine hits all of them alike):

* ``reference``: the official arithmetic (NCHW kernels, frozen BN as a separate op, the official
  module layout) -- ``model.set_channels_last(False)``;
* ``default``: what ``build_ppa`` gives (NHWC convolutions);
* ``optimised``: ``default`` + ``optimize_ppa_for_inference`` (frozen BN folded, fused FCOS towers).

A timed call during which other processes used more than ``--max-foreign`` of the machine's CPUs
(from ``/proc/stat``) counts as disturbed; rounds are repeated until every form has ``--runs``
undisturbed calls or ``--attempts`` rounds have run, and a form without any undisturbed call reports
all its calls (the table says how many were undisturbed). Since every round times every form under
about the same load, the speed-up against the reference form is also given as the median of the
per-round ratios ("paired"), the number least affected by a busy machine. Peak RSS (``VmHWM``) is measured
for each form in a child process of its own (model construction + warm-up + one call). ``--check``
compares the default and optimised forms' outputs with the reference form's on the image (detections,
ranks, the ranked objects' pasted masks; pixels differing in every detection's mask; largest score and
logit differences).

Run: ``python benchmarks/ppa_speed.py [--image PATH] [--runs 5] [--threads 2] [--max-foreign 0.25]
[--check] [--profile] [--forms reference,default,optimised]``
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
from _stage_timer import stage_seconds  # benchmarks/ is on sys.path when a benchmark runs

OFFICIAL_SECONDS = 1.20  # TIMING.md, PPA with 50 detections, median of 3
OFFICIAL_RSS_GIB = 1.2
REPO = Path(__file__).resolve().parents[1]
DEFAULT_IMAGE = REPO.parent / "shared" / "fixtures" / "models" / "ppa" / "input.jpg"
FORMS = ("reference", "default", "optimised")


def peak_rss_gib() -> float:
    """Peak resident memory of this process (GiB): ``VmHWM`` of its own address space on Linux.

    (``ru_maxrss`` would not do for the per-form child processes: Linux carries the parent's peak
    over ``fork``/``exec``.)
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024**2  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2  # kB on Linux


def build(seed: int, device: str, bn_stats: str = "random"):
    """The benchmark's random full-size model (default form)."""
    from salrank.modeling.layers.frozen_bn import FrozenBatchNorm2d
    from salrank.modeling.ppa import build_ppa, ppa_v39_config

    torch.manual_seed(seed)
    model = build_ppa(ppa_v39_config())
    with torch.no_grad():
        model.fcos.cls_logits.bias.fill_(-0.6)
        model.fcos.bbox_pred.bias.fill_(3.0)
        # The official inits leave every mask probability within ~1e-4 of the 0.5 threshold (where
        # float rounding alone decides the pasted pixels) and every rank probability below the 0.1
        # read-out threshold (nothing ranked); --check needs decisive masks and ranked objects.
        model.roi_heads.mask_head.predictor.weight.normal_(0.0, 1.0)
        model.roi_heads.mask_head.predictor.bias.fill_(
            -0.05
        )  # cells with dead features: not exactly 0.5
        model.roi_heads.rank_head.classifier.weight.normal_(0.0, 0.3)
        if bn_stats == "random":
            for module in model.backbone.modules():
                if isinstance(module, FrozenBatchNorm2d):
                    module.weight.uniform_(0.7, 1.3)
                    module.bias.normal_(0.0, 0.05)
                    module.running_mean.normal_(0.0, 0.05)
                    module.running_var.uniform_(0.7, 1.3)
    return model.to(device).eval()


def make_form(model, form: str, copy_model: bool = True):
    """``model`` (a default-form model) turned into ``form``; a copy unless ``copy_model`` is false."""
    from salrank.modeling.ppa.inference_forms import optimize_ppa_for_inference

    m = copy.deepcopy(model) if copy_model else model
    if form == "reference":
        m.set_channels_last(False)
    elif form == "optimised":
        optimize_ppa_for_inference(m)
    elif form != "default":
        raise ValueError(f"unknown form {form!r}")
    return m.eval()


def _machine_ticks() -> tuple[int, int]:
    """(busy ticks of the whole machine, ticks of this process) from /proc (Linux); (0, 0) elsewhere."""
    try:
        fields = [
            int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
        ]
        own = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0, 0
    busy = sum(fields) - fields[3] - fields[4]  # minus idle and iowait
    return busy, int(own[11]) + int(own[12])  # utime + stime


def timed_call(model, image_path: Path, device: str):
    """One ``read_image`` + ``predict`` call: (seconds, foreign CPU share during it, result)."""
    from salrank.utils.io import read_image

    ncpu = os.cpu_count() or 1
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    if device == "cuda":
        torch.cuda.synchronize()
    busy0, own0 = _machine_ticks()
    t0 = time.perf_counter()
    result = model.predict([read_image(image_path)], [image_path.stem])[0]
    if device == "cuda":
        torch.cuda.synchronize()
    dt = time.perf_counter() - t0
    busy1, own1 = _machine_ticks()
    foreign = max(0, (busy1 - busy0) - (own1 - own0)) / tick / (dt * ncpu)
    return dt, foreign, result


def time_interleaved(
    models: dict,
    image_path: Path,
    runs: int,
    device: str,
    max_foreign: float,
    attempts: int,
) -> dict:
    """Warm-up each form, then rounds of one call per form, until every form has ``runs`` undisturbed
    calls (foreign CPU share <= ``max_foreign``) or ``attempts`` rounds have run.

    Every call is recorded (``all_times``, ``all_foreign``; ``round`` pairs the calls of one round) and
    the undisturbed ones are listed apart (``times``, ``foreign``).
    """
    stats = {
        name: {
            "warmup_s": timed_call(m, image_path, device)[0],
            "times": [],
            "foreign": [],
            "all_times": [],
            "all_foreign": [],
        }
        for name, m in models.items()
    }
    for k in range(attempts):
        names = (
            list(models) if k % 2 == 0 else list(models)[::-1]
        )  # alternate the order within a round
        for name in names:
            s = stats[name]
            t, foreign, _ = timed_call(models[name], image_path, device)
            kept = foreign <= max_foreign
            print(
                f"round {k + 1} {name}: {t:.3f} s, foreign CPU {foreign:.0%}{'' if kept else ' (disturbed)'}",
                file=sys.stderr,
                flush=True,
            )
            s["all_times"].append(t)
            s["all_foreign"].append(foreign)
            if kept:
                s["times"].append(t)
                s["foreign"].append(foreign)
        if k + 1 >= runs and all(len(s["times"]) >= runs for s in stats.values()):
            break
    return stats


def count_detections(model, image_path: Path) -> int:
    from salrank.utils.io import read_image

    image = read_image(image_path)
    pred = model.run_image(
        model.preprocess(image).to(model.device), output_hw=image.shape[:2]
    )
    return len(pred.detections)


def compare_forms(reference, other, image_path: Path) -> dict:
    """Whether ``other`` gives the reference form's outputs on the image.

    ``identical`` is about what ``predict`` returns: the same detections (count and order), the same
    ranks, and the same pasted masks of the ranked objects. Also reported: how many pixels differ in
    the pasted masks of *all* detections (a probability that lands within float rounding of the 0.5
    threshold can flip a pixel of an unranked detection's mask, which ``predict`` does not return) and
    the largest differences of boxes, scores, mask probabilities and rank logits.
    """
    from salrank.modeling.ppa.ppa import to_ranked_instances
    from salrank.utils.io import read_image

    image = read_image(image_path)
    tensor = reference.preprocess(image)

    def run(m):
        pred = m.run_image(tensor.to(m.device), output_hw=image.shape[:2])
        return pred, pred.masks().cpu(), to_ranked_instances(pred, image_path.stem)

    (ref, ref_masks, ref_out), (out, out_masks, out_out) = run(reference), run(other)
    a, b = ref.detections, out.detections
    same_dets = len(a) == len(b) and torch.equal(
        ref.detection_index.cpu(), out.detection_index.cpu()
    )
    report: dict = {"detections": [len(a), len(b)], "same_detections": bool(same_dets)}
    same_ranked = len(ref_out) == len(out_out) and bool(
        (ref_out.masks == out_out.masks).all()
    )
    report["ranked"] = [len(ref_out), len(out_out)]
    report["same_ranked_masks"] = same_ranked
    if same_dets and len(a):
        report.update(
            same_ranks=bool(torch.equal(a.pred_ranks.cpu(), b.pred_ranks.cpu())),
            all_detection_mask_pixels_differing=int((ref_masks != out_masks).sum()),
            max_box_diff_px=float((ref.boxes - out.boxes).abs().max()),
            max_score_diff=float((a.scores - b.scores).abs().max()),
            max_mask_score_diff=float((a.mask_scores - b.mask_scores).abs().max()),
            max_mask_prob_diff=float((a.mask_probs - b.mask_probs).abs().max()),
            max_sor_logit_diff=float((a.sor_logits - b.sor_logits).abs().max()),
        )
    report["identical"] = bool(
        same_dets and same_ranked and report.get("same_ranks", True)
    )
    return report


def profile(model, image_path: Path) -> dict:
    """Per-stage wall time of one call (forward hooks on the top-level modules)."""
    from salrank.utils.io import read_image

    image = read_image(image_path)
    stages = (
        "backbone",
        "neck",
        "fcos",
        "roi_heads",
        "roi_heads.mask_head",
        "roi_heads.maskiou_head",
        "roi_heads.rank_head",
    )
    total, seconds = stage_seconds(model, stages, lambda: model.predict([image]))
    return {"total": round(total, 3), **{k: round(v, 3) for k, v in seconds.items()}}


def child_rss(form: str, args: argparse.Namespace) -> float | None:
    """Peak RSS (GiB) of a child process that builds ``form`` alone and runs warm-up + one call."""
    cmd = [
        sys.executable,
        __file__,
        "--rss-of",
        form,
        "--image",
        str(args.image),
        "--threads",
        str(args.threads),
        "--seed",
        str(args.seed),
        "--device",
        args.device,
        "--bn-stats",
        args.bn_stats,
    ]
    try:
        out = subprocess.run(
            cmd, capture_output=True, text=True, check=True, timeout=600
        )
        return float(json.loads(out.stdout.strip().splitlines()[-1])["peak_rss_GiB"])
    except (subprocess.SubprocessError, ValueError, KeyError, IndexError) as exc:
        print(f"peak RSS of {form} not measured: {exc}", file=sys.stderr)
        return None


def markdown_table(report: dict) -> str:
    rows = [
        "| form | median latency (s) | calls (s) | peak RSS (GiB) | speed-up vs official 1.20 s | speed-up vs reference form (paired median) | identical to reference | machine load: foreign CPU (median), undisturbed calls |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, f in report["forms"].items():
        ident = (
            "(reference)"
            if name == "reference"
            else {True: "yes", False: "**no**", None: "-"}[f.get("identical")]
        )
        vs_ref = (
            "1.00x"
            if name == "reference"
            else f"{f['paired_speedup_vs_reference']:.2f}x"
            if "paired_speedup_vs_reference" in f
            else "-"
        )
        rss = f"{f['peak_rss_GiB']:.2f}" if f.get("peak_rss_GiB") is not None else "-"
        official = (
            f"{OFFICIAL_SECONDS / f['median_s']:.2f}x"
            if report["device"] == "cpu"
            else "-"
        )
        runs = ", ".join(f"{t:.2f}" for t in f["runs_s"])
        rows.append(
            f"| salrank {name} | **{f['median_s']:.3f}** | {runs} | {rss} | {official} | {vs_ref} | {ident} | "
            f"{f['foreign_median']:.0%}, {f['undisturbed_calls']} of {f['all_calls']} |"
        )
    if report["device"] == "cpu":
        rows.append(
            f"| official code (TIMING.md) | **{OFFICIAL_SECONDS:.2f}** | 1.20, 1.20, 1.18 | {OFFICIAL_RSS_GIB} | 1.00x | - | - | quiet machine |"
        )
    return "\n".join(rows)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--image", type=Path, default=DEFAULT_IMAGE)
    parser.add_argument(
        "--runs", type=int, default=5, help="undisturbed timed calls per form"
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument(
        "--forms",
        default=",".join(FORMS),
        help=f"comma-separated forms to time ({', '.join(FORMS)})",
    )
    parser.add_argument(
        "--bn-stats",
        default="random",
        choices=["random", "identity"],
        help="frozen BN statistics of the random backbone (identity = the official random init)",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="compare each form's outputs with the reference form's",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="also print the time per stage of one call of each form",
    )
    parser.add_argument(
        "--no-rss",
        action="store_true",
        help="skip the per-form peak-RSS child processes",
    )
    parser.add_argument(
        "--max-foreign",
        type=float,
        default=0.25,
        help="repeat a timed call when other processes used more than this share of the CPUs during it "
        "(default 0.25; 1.0 keeps every call)",
    )
    parser.add_argument(
        "--attempts",
        type=int,
        default=15,
        help="at most this many rounds of timed calls (if no call of a form is undisturbed, all its calls are reported)",
    )
    parser.add_argument("--rss-of", choices=FORMS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not args.image.is_file():
        print(f"image not found: {args.image} (pass --image)", file=sys.stderr)
        return 2
    if args.device == "cuda" and not torch.cuda.is_available():
        print("no GPU available", file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)
    if args.rss_of:  # child mode: one form alone, for its peak RSS
        model = make_form(
            build(args.seed, args.device, args.bn_stats), args.rss_of, copy_model=False
        )
        with torch.no_grad():
            timed_call(model, args.image, args.device)
            timed_call(model, args.image, args.device)
        print(
            json.dumps({"form": args.rss_of, "peak_rss_GiB": round(peak_rss_gib(), 3)})
        )
        return 0
    forms = [f.strip() for f in args.forms.split(",") if f.strip()]
    unknown = set(forms) - set(FORMS)
    if unknown or not forms:
        print(
            f"unknown form(s) {sorted(unknown)}; choose from {', '.join(FORMS)}",
            file=sys.stderr,
        )
        return 2
    t0 = time.perf_counter()
    base = build(args.seed, args.device, args.bn_stats)
    build_s = time.perf_counter() - t0
    models = {name: make_form(base, name) for name in forms}
    n_params = sum(p.numel() for p in base.parameters())
    n_det = count_detections(models[forms[0]], args.image)
    load0 = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
    stats = time_interleaved(
        models, args.image, args.runs, args.device, args.max_foreign, args.attempts
    )
    load1 = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
    report: dict = {
        "device": args.device,
        "threads": args.threads,
        "torch": torch.__version__,
        "cpu": _cpu_name(),
        "image": args.image.name,
        "params_M": round(n_params / 1e6, 1),
        "detections": n_det,
        "build_s": round(build_s, 2),
        "max_foreign": args.max_foreign,
        "loadavg_1min_before_after": [round(load0[0], 2), round(load1[0], 2)],
        "official_median_s": OFFICIAL_SECONDS if args.device == "cpu" else None,
        "forms": {},
    }
    for name in forms:
        s = stats[name]
        undisturbed = len(s["times"]) >= 1
        times, foreign = (
            (s["times"], s["foreign"])
            if undisturbed
            else (s["all_times"], s["all_foreign"])
        )
        median = statistics.median(times)
        entry = {
            "warmup_s": round(s["warmup_s"], 3),
            "runs_s": [round(t, 3) for t in times],
            "median_s": round(median, 3),
            "undisturbed_calls": len(s["times"]),
            "all_calls": len(s["all_times"]),
            "foreign_median": round(statistics.median(foreign), 3),
            "speedup_vs_official": round(OFFICIAL_SECONDS / median, 2)
            if args.device == "cpu"
            else None,
            "identical": None,
        }
        if "reference" in stats and name != "reference":
            # same-round pairs: both calls saw about the same machine load
            ratios = [
                r / t for r, t in zip(stats["reference"]["all_times"], s["all_times"])
            ]
            entry["paired_speedup_vs_reference"] = round(statistics.median(ratios), 3)
        if not undisturbed:
            print(
                f"{name}: no call ran with less than {args.max_foreign:.0%} foreign CPU load; all calls reported",
                file=sys.stderr,
            )
        report["forms"][name] = entry
    if args.check and "reference" in models:
        for name in forms:
            if name != "reference":
                check = compare_forms(models["reference"], models[name], args.image)
                report["forms"][name]["check"] = check
                report["forms"][name]["identical"] = check["identical"]
    if args.profile:
        report["profile"] = {name: profile(m, args.image) for name, m in models.items()}
    del models, base
    if not args.no_rss:
        for name in forms:
            report["forms"][name]["peak_rss_GiB"] = child_rss(name, args)
    print(json.dumps(report, indent=1))
    print()
    print(markdown_table(report))
    return 0


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"{line.split(':', 1)[1].strip()} x{os.cpu_count()}"
    except OSError:
        pass
    return f"{os.cpu_count()} CPUs"


if __name__ == "__main__":
    raise SystemExit(main())
