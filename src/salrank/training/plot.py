"""``salrank plot RUN_DIR``: the loss and metric curves of a run as one PNG.

Reads ``RUN_DIR/metrics.jsonl`` (:mod:`salrank.training.logger`) and draws, with matplotlib (the optional
``salrank[train]`` extra; a clear error says so when it is missing):

* the total loss (raw and smoothed) and each loss term, log scale, against the iteration;
* the learning rate;
* every evaluation metric recorded (``sa_sor``, ``sor``, ``mae``, ...).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from salrank.errors import InputError
from salrank.training.logger import read_metrics

__all__ = ["plot_run", "smooth"]

_SKIP = {"type", "iter", "epoch", "lr", "time", "data_time", "eta_s", "skipped", "grad_norm", "images_per_s", "max_mem_mb"}


def smooth(values: Sequence[float], window: int = 10) -> np.ndarray:
    """Trailing moving average (``window`` points) that ignores missing values."""
    v = np.asarray(values, np.float64)
    out = np.empty_like(v)
    for i in range(len(v)):
        chunk = v[max(0, i - window + 1) : i + 1]
        chunk = chunk[np.isfinite(chunk)]
        out[i] = chunk.mean() if len(chunk) else np.nan
    return out


def plot_run(run_dir: str | Path, out: str | Path | None = None, metrics: Sequence[str] | None = None, title: str | None = None) -> Path:
    """Draw the curves of ``run_dir`` into ``out`` (default ``RUN_DIR/curves.png``), written atomically.

    Raises:
        InputError: no ``metrics.jsonl`` with training records, or matplotlib missing.
    """
    run = Path(run_dir)
    records = read_metrics(run / "metrics.jsonl") if run.is_dir() else read_metrics(run)
    if run.is_file():
        run = run.parent
    train = [r for r in records if r.get("type") == "train"]
    evals = [r for r in records if r.get("type") == "eval"]
    if not train and not evals:
        raise InputError("no training records found (is this a run directory with metrics.jsonl?)", run)
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise InputError("plotting needs matplotlib: pip install 'salrank[train]' (or pip install matplotlib)") from None
    from salrank.utils.io import write_bytes

    eval_keys = sorted({k for r in evals for k, v in r.items() if k not in _SKIP and isinstance(v, (int, float))})
    if metrics:
        eval_keys = [k for k in eval_keys if k in metrics]
    panels = 2 + (1 if eval_keys else 0)
    fig, axes = plt.subplots(1, panels, figsize=(5.2 * panels, 3.8), dpi=100)
    ax_loss, ax_lr = axes[0], axes[1]
    if train:
        it = [r["iter"] for r in train]
        terms = sorted({k for r in train for k, v in r.items() if k not in _SKIP and k != "loss" and isinstance(v, (int, float))})
        loss = [r.get("loss", np.nan) for r in train]
        ax_loss.plot(it, loss, color="0.75", lw=0.8, label="total")
        ax_loss.plot(it, smooth(loss), color="black", lw=1.6, label="total (smoothed)")
        for key in terms:
            ax_loss.plot(it, smooth([r.get(key, np.nan) if r.get(key) is not None else np.nan for r in train]), lw=1.0, label=key)
        ax_loss.set_yscale("log")
        ax_loss.set_xlabel("iteration")
        ax_loss.set_title("training loss")
        ax_loss.legend(fontsize=7, ncol=2)
        ax_lr.plot(it, [r.get("lr", np.nan) for r in train], color="tab:blue")
        ax_lr.set_xlabel("iteration")
        ax_lr.set_title("learning rate")
        ax_lr.ticklabel_format(axis="y", style="sci", scilimits=(0, 0))
    if eval_keys:
        ax = axes[2]
        eit = [r["iter"] for r in evals]
        for key in eval_keys:
            ax.plot(eit, [r.get(key, np.nan) if r.get(key) is not None else np.nan for r in evals], marker="o", ms=3, label=key)
        ax.set_xlabel("iteration")
        ax.set_title("held-out metrics")
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    fig.suptitle(title or run.name)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    target = Path(out) if out is not None else run / "curves.png"
    write_bytes(target, buf.getvalue())
    return target
