"""The Winograd convolution of ``benchmarks/ppa_conv_floor.py`` computes the convolution it is timed against.

The README quotes its speed and error next to PyTorch's convolution, so it must be a real 3x3 convolution
(padding 1, stride 1, any size, grouped or not), within float32 rounding of ``F.conv2d``.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

BENCHMARK = Path(__file__).resolve().parents[1] / "benchmarks" / "ppa_conv_floor.py"


@pytest.fixture(scope="module")
def floor_module():
    spec = importlib.util.spec_from_file_location("ppa_conv_floor", BENCHMARK)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    "n, c, h, w, cout, groups, bias",
    [(1, 8, 9, 13, 6, 1, True), (3, 8, 14, 14, 8, 2, False), (2, 4, 4, 4, 4, 1, True), (1, 6, 1, 5, 3, 3, True)],
)
def test_winograd_matches_direct_convolution(floor_module, n, c, h, w, cout, groups, bias):
    gen = torch.Generator().manual_seed(n * 100 + h)
    x = torch.randn(n, c, h, w, generator=gen).contiguous(memory_format=torch.channels_last)
    weight = torch.randn(cout, c // groups, 3, 3, generator=gen)
    b = torch.randn(cout, generator=gen) if bias else None
    conv = floor_module.WinogradConv3x3(weight, b, groups)
    expected = F.conv2d(x.double(), weight.double(), None if b is None else b.double(), padding=1, groups=groups)
    for _ in range(2):  # the second call reuses the work buffers
        out = conv(x)
        assert out.shape == expected.shape
        torch.testing.assert_close(out.double(), expected, rtol=0, atol=1e-4)


def test_winograd_buffers_follow_the_input_size(floor_module):
    weight = torch.randn(4, 4, 3, 3)
    conv = floor_module.WinogradConv3x3(weight, None, 1)
    outputs = []
    for size in (8, 8, 5, 8):
        x = torch.randn(1, 4, size, size)
        outputs.append((conv(x), F.conv2d(x, weight, padding=1)))
    for out, expected in outputs:  # an earlier output is not overwritten by a later call
        torch.testing.assert_close(out, expected, rtol=0, atol=1e-4)
