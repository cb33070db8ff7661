"""What a training run tells a person: a progress bar with ETA, ``metrics.jsonl``, optional TensorBoard.

Only rank 0 logs. Every ``log_period`` iterations one JSON line is appended to ``RUN/metrics.jsonl``::

    {"type": "train", "iter": 200, "epoch": 1.6, "lr": 1e-4, "loss": 12.3, "mask_loss": ..., "time": 0.41, "data_time": 0.02, "eta_s": 812}

and every evaluation adds ``{"type": "eval", "iter": ..., "sa_sor": ..., "sor": ..., ...}``. A line is
written in one ``write`` call and flushed, so a crash leaves complete lines; when a run resumes, lines past
the resumed iteration are dropped (the file is rewritten atomically) so the curves have no duplicates.
TensorBoard event files go to ``RUN/tensorboard`` when ``torch.utils.tensorboard`` can be imported
(``pip install tensorboard``); otherwise this is skipped with one info line.
"""

from __future__ import annotations

import json
import logging
import math
import time
from pathlib import Path
from typing import Any

from salrank.utils.io import atomic_write

logger = logging.getLogger("salrank.training")

__all__ = ["TrainLogger", "read_metrics"]


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """The records of a ``metrics.jsonl`` (a truncated last line is ignored)."""
    out = []
    p = Path(path)
    if not p.is_file():
        return out
    for line in p.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class TrainLogger:
    """Progress bar, JSONL metrics and TensorBoard for one run (no-op on ranks other than 0)."""

    def __init__(self, run_dir: str | Path, max_iter: int, start_iter: int = 0, enabled: bool = True, progress: bool = True, tensorboard: bool = True) -> None:
        self.enabled = enabled
        self.path = Path(run_dir) / "metrics.jsonl"
        self.max_iter = max_iter
        self.start_iter = start_iter
        self._bar = None
        self._tb = None
        self._t0 = time.perf_counter()
        if not enabled:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if start_iter > 0 and self.path.is_file():
            kept = [r for r in read_metrics(self.path) if int(r.get("iter", 0)) <= start_iter]
            with atomic_write(self.path, "w") as fh:
                for r in kept:
                    fh.write(json.dumps(r) + "\n")
        elif self.path.exists():
            self.path.unlink()
        self._fh = open(self.path, "a", encoding="utf-8")
        if progress:
            from tqdm import tqdm

            self._bar = tqdm(total=max_iter, initial=start_iter, desc="train", unit="it", dynamic_ncols=True)
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self._tb = SummaryWriter(str(Path(run_dir) / "tensorboard"), purge_step=start_iter or None)
            except Exception:  # tensorboard is an optional dependency
                logger.info("TensorBoard not installed (pip install tensorboard): metrics go to %s only", self.path)

    def eta_seconds(self, iteration: int) -> float:
        done = iteration - self.start_iter
        if done <= 0:
            return float("nan")
        return (time.perf_counter() - self._t0) / done * (self.max_iter - iteration)

    def write(self, record: dict[str, Any]) -> None:
        if not self.enabled:
            return
        record = {k: _clean(v) for k, v in record.items()}
        self._fh.write(json.dumps(record) + "\n")
        self._fh.flush()
        if self._tb is not None:
            prefix = "eval/" if record.get("type") == "eval" else "train/"
            for key, value in record.items():
                if key not in ("type", "iter") and isinstance(value, (int, float)) and value is not None:
                    self._tb.add_scalar(prefix + key, value, int(record.get("iter", 0)))

    def train_step(self, iteration: int, values: dict[str, float], log: bool) -> None:
        """Advance the bar to ``iteration``; when ``log``, also write a record and show the loss."""
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.update(iteration - self._bar.n)
        if log:
            record = {"type": "train", "iter": iteration, **values, "eta_s": round(self.eta_seconds(iteration), 1)}
            self.write(record)
            if self._bar is not None:
                self._bar.set_postfix(loss=f"{values.get('loss', float('nan')):.4g}", lr=f"{values.get('lr', 0):.2e}", refresh=False)
            else:
                logger.info("iter %d/%d loss %.4g lr %.3g eta %.0fs", iteration, self.max_iter, values.get("loss", float("nan")), values.get("lr", 0.0), self.eta_seconds(iteration))

    def message(self, text: str) -> None:
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.write(text)
        else:
            logger.info(text)

    def close(self) -> None:
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.close()
        if self._tb is not None:
            self._tb.close()
        self._fh.close()
