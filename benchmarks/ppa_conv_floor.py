"""How much of a full-size PPA call is convolution, and what faster convolution arithmetic would buy.

The question this answers: can an exact float32 form of PPA reach the 1.5x goal (0.80 s, against the
official 1.20 s in ``../shared/fixtures/models/TIMING.md``) on this CPU? It measures, with the
benchmark model of ``ppa_speed.py`` (optimised form, 50 detections, 640x480, 2 threads):

1. **the convolution floor**: one call with a timer around every ``nn.Conv2d``; the time spent in
   convolutions, their FLOPs and the achieved GFLOP/s, next to the whole call;
2. **other arithmetic for the dominant 3x3 convolutions** (the shapes that take the most time in the
   call), each timed interleaved with PyTorch's own convolution (best of ``--repeats``) and compared with
   a float64 convolution (largest absolute error):

   * ``winograd F(4x4,3x3)``: the minimal-filtering algorithm (Lavin & Gray 2016) written in PyTorch:
     6x6 input tiles, 36 batched matrix products instead of 9 taps (4x fewer multiplications), the
     transforms as two small matrix products. Exact in real arithmetic, larger float rounding;
   * ``bf16 (oneDNN)``: ``torch.backends.mkldnn.conv.fp32_precision = "bf16"`` (float32 in and out, AMX
     bfloat16 products), which changes values at the 1e-3 level;

3. **an estimate for a Winograd form of the whole model**: each compared 3x3 stride-1 convolution's time
   in the call divided by its measured speed-up (direct / Winograd), the rest of the call unchanged.

Run: ``python benchmarks/ppa_conv_floor.py [--calls 3] [--repeats 9] [--threads 2] [--shapes 4]``
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
import ppa_speed  # the benchmark model and image

TARGET_SECONDS = ppa_speed.OFFICIAL_SECONDS / 1.5

# Winograd F(4x4, 3x3) matrices (Lavin & Gray 2016, interpolation points 0, +-1, +-2, inf).
_BT = [
    [4, 0, -5, 0, 1, 0],
    [0, -4, -4, 1, 1, 0],
    [0, 4, -4, -1, 1, 0],
    [0, -2, -1, 2, 1, 0],
    [0, 2, -1, -2, 1, 0],
    [0, 4, 0, -5, 0, 1],
]
_G = [
    [1 / 4, 0, 0],
    [-1 / 6, -1 / 6, -1 / 6],
    [-1 / 6, 1 / 6, -1 / 6],
    [1 / 24, 1 / 12, 1 / 6],
    [1 / 24, -1 / 12, 1 / 6],
    [0, 0, 1],
]
_AT = [[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]]


class WinogradConv3x3:
    """A 3x3, stride-1, padding-1 (grouped) convolution computed with Winograd F(4x4, 3x3).

    The weight transform ``G w G^T`` is done once, in float64. Per call: the padded NHWC input is cut
    into overlapping 6x6 tiles (stride 4), transformed by ``kron(B^T, B^T)`` (one matrix product over
    all tiles), multiplied with the transformed weights (36 x groups batched matrix products), and
    transformed back by ``kron(A^T, A^T)`` into 4x4 output tiles.
    """

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None, groups: int) -> None:
        bt, g, at = (torch.tensor(m, dtype=torch.float64) for m in (_BT, _G, _AT))
        self.input_transform = torch.kron(bt, bt).float()  # [36, 36]
        self.output_transform = torch.kron(at, at).float()  # [16, 36]
        cout, cin_g = weight.shape[:2]
        u = torch.einsum("ak,ockl,bl->abco", g, weight.double(), g)  # [6, 6, cin_g, cout]
        u = u.reshape(36, cin_g, groups, cout // groups).permute(0, 2, 1, 3)
        self.u = u.reshape(36 * groups, cin_g, cout // groups).float().contiguous()
        self.bias = bias
        self.groups = groups

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        groups, cin_g, cout_g = self.groups, c // self.groups, self.u.shape[-1]
        th, tw = -(-h // 4), -(-w // 4)
        padded = F.pad(x, (1, tw * 4 + 1 - w, 1, th * 4 + 1 - h)).permute(0, 2, 3, 1).contiguous()
        s_n, s_h, s_w, s_c = padded.stride()
        tiles = padded.as_strided(
            (6, 6, groups, n, th, tw, cin_g), (s_h, s_w, cin_g * s_c, s_n, 4 * s_h, 4 * s_w, s_c)
        )
        d, v, m, y = self._buffers(n * th * tw, cin_g, cout_g)
        d.view(tiles.shape).copy_(tiles)
        torch.mm(self.input_transform, d, out=v.view(36, -1))
        torch.bmm(v, self.u, out=m)
        torch.mm(self.output_transform, m.view(36, -1), out=y)
        out = y.view(4, 4, groups, n, th, tw, cout_g).permute(3, 4, 0, 5, 1, 2, 6)
        out = out.reshape(n, th * 4, tw * 4, groups * cout_g)[:, :h, :w]
        if self.bias is not None:
            out = out + self.bias
        return out.permute(0, 3, 1, 2)

    def _buffers(self, tiles: int, cin_g: int, cout_g: int) -> tuple[torch.Tensor, ...]:
        """Work buffers kept between calls of the same size (so timing is not page-fault bound)."""
        key = (tiles, cin_g, cout_g)
        if getattr(self, "_key", None) != key:
            g = self.groups
            self._key = key
            self._bufs = (
                torch.empty(36, g * tiles * cin_g),
                torch.empty(36 * g, tiles, cin_g),
                torch.empty(36 * g, tiles, cout_g),
                torch.empty(16, g * tiles * cout_g),
            )
        return self._bufs


def conv_census(model, image, calls: int) -> dict:
    """Median call time and per-shape convolution time/FLOPs over ``calls`` calls."""
    per_shape: dict[tuple, list[float]] = defaultdict(lambda: [0.0, 0.0, 0])
    starts: dict[int, float] = {}

    def before(module, inputs):
        starts[id(module)] = time.perf_counter()

    def after(module, inputs, output):
        seconds = time.perf_counter() - starts[id(module)]
        x = inputs[0]
        key = (
            tuple(x.shape[1:]),
            x.shape[0],
            module.out_channels,
            module.kernel_size[0],
            module.stride[0],
            module.groups,
        )
        flops = 2 * output.numel() * module.in_channels // module.groups * module.kernel_size[0] * module.kernel_size[1]
        entry = per_shape[key]
        entry[0] += seconds / calls
        entry[1] += flops / calls
        entry[2] += 1

    handles = []
    for module in model.modules():
        if isinstance(module, torch.nn.Conv2d):
            handles += [module.register_forward_pre_hook(before), module.register_forward_hook(after)]
    totals = []
    with torch.no_grad():
        model.predict([image])  # warm-up, not counted
        per_shape.clear()
        for _ in range(calls):
            t0 = time.perf_counter()
            model.predict([image])
            totals.append(time.perf_counter() - t0)
    for h in handles:
        h.remove()
    return {"call": statistics.median(totals), "shapes": dict(per_shape)}


def compare_arithmetic(key: tuple, repeats: int, seed: int) -> dict:
    """Best-of-``repeats`` time and largest error vs float64 of each arithmetic for one conv shape."""
    (c, h, w), n, cout, _, _, groups = key
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, c, h, w, generator=gen).relu().contiguous(memory_format=torch.channels_last)
    weight = torch.randn(cout, c // groups, 3, 3, generator=gen) * (2.0 / (c // groups * 9)) ** 0.5
    bias = torch.randn(cout, generator=gen) * 0.1
    winograd = WinogradConv3x3(weight, bias, groups)

    def direct():
        return F.conv2d(x, weight, bias, padding=1, groups=groups)

    def bf16():
        previous = torch.backends.mkldnn.conv.fp32_precision
        torch.backends.mkldnn.conv.fp32_precision = "bf16"
        try:
            return F.conv2d(x, weight, bias, padding=1, groups=groups)
        finally:
            torch.backends.mkldnn.conv.fp32_precision = previous

    forms = {"direct fp32": direct, "winograd F(4x4,3x3)": lambda: winograd(x), "bf16 (oneDNN)": bf16}
    with torch.no_grad():
        exact = F.conv2d(x.double(), weight.double(), bias.double(), padding=1, groups=groups)
        errors = {name: (f().double() - exact).abs().max().item() for name, f in forms.items()}
        times: dict[str, list[float]] = {name: [] for name in forms}
        for _ in range(repeats):
            for name, f in forms.items():
                t0 = time.perf_counter()
                f()
                times[name].append(time.perf_counter() - t0)
    return {
        "scale": exact.abs().max().item(),
        "ms": {name: 1e3 * min(t) for name, t in times.items()},
        "max_abs_error": errors,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--image", type=Path, default=ppa_speed.DEFAULT_IMAGE)
    parser.add_argument("--calls", type=int, default=3, help="timed model calls for the census")
    parser.add_argument("--repeats", type=int, default=9, help="timed repeats per arithmetic and shape")
    parser.add_argument(
        "--shapes", type=int, default=0, help="compare only this many of the most expensive 3x3 shapes (0: all above 1 GFLOP per call)"
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if not args.image.is_file():
        print(f"image not found: {args.image} (pass --image)", file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)
    from salrank.utils.io import read_image

    model = ppa_speed.make_form(ppa_speed.build(args.seed, "cpu"), "optimised", copy_model=False)
    census = conv_census(model, read_image(args.image), args.calls)
    shapes = census["shapes"]
    conv_s = sum(v[0] for v in shapes.values())
    conv_gflop = sum(v[1] for v in shapes.values()) / 1e9
    winograd_able = {k: v for k, v in shapes.items() if k[3] == 3 and k[4] == 1 and v[1] > 1e9}
    print(f"machine: {ppa_speed._cpu_name()}, torch {torch.__version__}, {args.threads} threads")
    print(
        f"call (median of {args.calls}): {census['call']:.3f} s; convolutions: {conv_s:.3f} s "
        f"({100 * conv_s / census['call']:.0f} %), {conv_gflop:.0f} GFLOP, {conv_gflop / conv_s:.0f} GFLOP/s; "
        f"target (official 1.20 s / 1.5): {TARGET_SECONDS:.2f} s"
    )
    stride1_3x3_s = sum(v[0] for v in winograd_able.values())
    print(f"3x3 stride-1 convolutions (> 1 GFLOP per call): {stride1_3x3_s:.3f} s")
    print()
    print("| input (C, H, W) x N | C_out | groups | share of call | direct fp32 (ms) | Winograd F(4x4,3x3) (ms) | bf16 oneDNN (ms) "
          "| max abs error: direct / Winograd / bf16 (output scale) |")
    print("|---|---|---|---|---|---|---|---|")
    saved = 0.0
    top = sorted(winograd_able.items(), key=lambda kv: -kv[1][0])[: args.shapes or None]
    for key, (seconds, _, _) in top:
        r = compare_arithmetic(key, args.repeats, args.seed)
        ms, err = r["ms"], r["max_abs_error"]
        saved += seconds * (1.0 - ms["winograd F(4x4,3x3)"] / ms["direct fp32"])
        (c, h, w), n, cout, _, _, groups = key
        print(
            f"| ({c}, {h}, {w}) x {n} | {cout} | {groups} | {100 * seconds / census['call']:.0f} % | {ms['direct fp32']:.1f} | "
            f"{ms['winograd F(4x4,3x3)']:.1f} | {ms['bf16 (oneDNN)']:.1f} | "
            f"{err['direct fp32']:.1e} / {err['winograd F(4x4,3x3)']:.1e} / {err['bf16 (oneDNN)']:.1e} ({r['scale']:.1f}) |"
        )
    estimate = census["call"] - saved
    print()
    print(
        f"estimate for a Winograd form: the compared convolutions at their measured Winograd speed-ups save {saved:.3f} s "
        f"-> {estimate:.3f} s per call ({ppa_speed.OFFICIAL_SECONDS / estimate:.2f}x the official 1.20 s; target {TARGET_SECONDS:.2f} s)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
