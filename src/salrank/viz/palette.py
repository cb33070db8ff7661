"""The official SeqRank/PoseSOR rank colours (the palette their code calls "Tian").

Rank 1 (234, 87, 61), rank 2 (251, 192, 99), rank 3 (100, 176, 188), rank 4 (68, 102, 153), then a
darkening navy ``(8, 85, 119) * x`` for ``x`` in ``linspace(1.0, 0.2, N)``, each channel truncated to
``uint8`` (``N = 100`` in the official terminal and web demos, 20 in their ``visualize2colormap``
script); ranks beyond the table reuse its last colour. The official code defines the colours in BGR
and converts to RGB; the values here are RGB. Checked against the official demo output
``COCO_val2014_000000502220.png`` (``tests/test_viz_palette.py``).
"""

from __future__ import annotations

import numpy as np

RANK_COLORS_TOP4: tuple[tuple[int, int, int], ...] = ((234, 87, 61), (251, 192, 99), (100, 176, 188), (68, 102, 153))
"""RGB colours of ranks 1-4."""
NAVY: tuple[int, int, int] = (8, 85, 119)
"""RGB base colour of ranks 5 and beyond (scaled darker rank by rank)."""
DEMO_STEPS = 100
"""Number of navy steps in the official demos (``demo/demo.py``, ``online/demo.py``)."""
BACKGROUND: tuple[int, int, int] = (0, 0, 0)


def rank_palette(steps: int = DEMO_STEPS) -> np.ndarray:
    """``uint8`` ``(4 + steps, 3)`` RGB table: row ``r - 1`` is the colour of rank ``r``."""
    if steps < 1:
        raise ValueError("steps must be >= 1")
    navy = np.array(NAVY, dtype=np.float64)
    tail = [(navy * x).astype(np.uint8) for x in np.linspace(1.0, 0.2, steps)]
    return np.concatenate([np.array(RANK_COLORS_TOP4, np.uint8), np.stack(tail)], axis=0)


def rank_color(rank: int, steps: int = DEMO_STEPS) -> tuple[int, int, int]:
    """RGB colour of ``rank`` (1 = most salient); ranks past the table reuse its last colour."""
    if rank < 1:
        raise ValueError(f"ranks start at 1, got {rank}")
    table = rank_palette(steps)
    return tuple(int(v) for v in table[min(rank, len(table)) - 1])  # type: ignore[return-value]


def rank_colors(n: int, steps: int = DEMO_STEPS) -> np.ndarray:
    """``uint8`` ``(n, 3)`` RGB colours of ranks ``1..n``."""
    table = rank_palette(steps)
    idx = np.minimum(np.arange(n), len(table) - 1)
    return table[idx]
