"""The result of an evaluation: official aggregates, counts, per-image values, and what was not scored.

:class:`EvaluationReport` is what :func:`salrank.evaluate` returns and what ``salrank eval --report``
writes. Its JSON form::

    {"protocol": "seqrank", "metrics": {"sa_sor": 0.5432, ...}, "metrics_unrounded": {...},
     "counts": {"sa_sor": 2418, ...}, "images": 2418, "images_used": null,
     "per_image": {"COCO_val2014_000000000192": {"sa_sor": 0.8, "top5": null, ...}, ...},
     "missing_predictions": [...], "unknown_predictions": [...], "excluded": {image: reason},
     "notes": [...], "errors": [...], "gt": "...", "pred": "...", "split": "test", "salrank_version": "..."}

NaN values (an undefined per-image correlation, an SOR without a usable image) are written as
``null``; which per-image nulls were NaN is recoverable from ``excluded`` and the protocol's rules.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from salrank.utils.io import atomic_write

PROTOCOL_SOURCES = {
    "seqrank": "SeqRank/PoseSOR evaluation/metrics.py (Metrics.process + aggregate)",
    "assr": "ASSR/PPA sor_eval.py (calculate_spr + eval_spr, eval_mae, eval_mae_binary_mask)",
    "irsr": "IRSR SA-SOR.py / PoseSOR misc/sasor.py (evalu)",
}


def _json_number(v: Any) -> Any:
    if v is None:
        return None
    if isinstance(v, bool):
        return v
    if isinstance(v, int):
        return int(v)
    if isinstance(v, float):
        f = float(v)
        return None if math.isnan(f) or math.isinf(f) else f
    return v


def _clean(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    return _json_number(obj)


@dataclass
class EvaluationReport:
    """What an evaluation found. Metric names are the official ones of the protocol."""

    protocol: str
    metrics: dict[str, float | None]
    """Set values as the official code reports them (seqrank: rounded to 4 decimals)."""
    metrics_unrounded: dict[str, float | None]
    """The same before the official rounding (equal to :attr:`metrics` for assr and irsr)."""
    counts: dict[str, int]
    """Images each value was averaged over."""
    per_image: dict[str, dict[str, float | None]]
    """``{image_id: {metric: value}}``; ``None`` where the official value is ``None``, NaN where it is NaN."""
    images: int
    """GT images evaluated."""
    images_used: int | None = None
    """assr/irsr: images that count for the (SOR / SA-SOR) mean."""
    missing_predictions: list[str] = field(default_factory=list)
    """GT images without any prediction (scored as images with no predicted object)."""
    unknown_predictions: list[str] = field(default_factory=list)
    """Predicted images that are not in the GT (not scored)."""
    excluded: dict[str, str] = field(default_factory=dict)
    """Images left out of a mean, with the reason (e.g. irsr ``single GT object``)."""
    notes: list[str] = field(default_factory=list)
    """How the inputs were interpreted (e.g. instance predictions rendered as rank maps)."""
    errors: list[str] = field(default_factory=list)
    """Why a set value could not be computed (e.g. irsr with no usable image)."""
    gt: str | None = None
    pred: str | None = None
    split: str | None = None
    version: str | None = None

    # ------------------------------------------------------------------ serialisation
    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (NaN -> ``None``)."""
        return _clean(
            {
                "protocol": self.protocol,
                "metrics": self.metrics,
                "metrics_unrounded": self.metrics_unrounded,
                "counts": self.counts,
                "images": self.images,
                "images_used": self.images_used,
                "per_image": self.per_image,
                "missing_predictions": self.missing_predictions,
                "unknown_predictions": self.unknown_predictions,
                "excluded": self.excluded,
                "notes": self.notes,
                "errors": self.errors,
                "gt": self.gt,
                "pred": self.pred,
                "split": self.split,
                "salrank_version": self.version,
            }
        )

    def to_json(self, indent: int | None = 1) -> str:
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the JSON report atomically (a temp file moved over ``path`` at the end)."""
        target = Path(path)
        with atomic_write(target, "w") as fh:
            fh.write(self.to_json())
            fh.write("\n")
        return target

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EvaluationReport:
        """Inverse of :meth:`to_dict` (NaN values come back as ``None``)."""
        return cls(
            protocol=data["protocol"],
            metrics=dict(data.get("metrics", {})),
            metrics_unrounded=dict(data.get("metrics_unrounded", {})),
            counts={k: int(v) for k, v in data.get("counts", {}).items()},
            per_image={k: dict(v) for k, v in data.get("per_image", {}).items()},
            images=int(data.get("images", 0)),
            images_used=data.get("images_used"),
            missing_predictions=list(data.get("missing_predictions", [])),
            unknown_predictions=list(data.get("unknown_predictions", [])),
            excluded=dict(data.get("excluded", {})),
            notes=list(data.get("notes", [])),
            errors=list(data.get("errors", [])),
            gt=data.get("gt"),
            pred=data.get("pred"),
            split=data.get("split"),
            version=data.get("salrank_version"),
        )

    # ------------------------------------------------------------------ terminal
    def table(self, per_image: bool = False, max_rows: int | None = None) -> str:
        """A plain-text table: protocol, metric, value, count (and per-image rows when asked)."""
        lines = [f"protocol {self.protocol}: {PROTOCOL_SOURCES.get(self.protocol, '')}".rstrip()]
        where = []
        if self.gt:
            where.append(f"GT {self.gt}" + (f" [{self.split}]" if self.split else ""))
        if self.pred:
            where.append(f"predictions {self.pred}")
        if where:
            lines.append("  ".join(where))
        used = f", {self.images_used} used" if self.images_used is not None else ""
        lines.append(f"{self.images} images{used}")
        rows = [("metric", "value", "count")]
        for name, value in self.metrics.items():
            rows.append((name, _fmt(value, self.protocol), str(self.counts.get(name, ""))))
        widths = [max(len(r[i]) for r in rows) for i in range(3)]
        sep = "  "
        lines.append("")
        for i, r in enumerate(rows):
            lines.append(sep.join([r[0].ljust(widths[0]), r[1].rjust(widths[1]), r[2].rjust(widths[2])]).rstrip())
            if i == 0:
                lines.append(sep.join("-" * w for w in widths))
        if per_image and self.per_image:
            names = list(next(iter(self.per_image.values())).keys())
            lines.append("")
            header = ["image", *names]
            body = []
            for k, (image_id, vals) in enumerate(self.per_image.items()):
                if max_rows is not None and k >= max_rows:
                    body.append([f"... {len(self.per_image) - max_rows} more", *[""] * len(names)])
                    break
                body.append([image_id, *[_fmt(vals.get(n), "per_image") for n in names]])
            w = [max(len(str(r[i])) for r in [header, *body]) for i in range(len(header))]
            lines.append(sep.join(h.ljust(w[i]) if i == 0 else h.rjust(w[i]) for i, h in enumerate(header)))
            lines.append(sep.join("-" * x for x in w))
            for r in body:
                lines.append(sep.join(str(c).ljust(w[i]) if i == 0 else str(c).rjust(w[i]) for i, c in enumerate(r)).rstrip())
        if self.excluded:
            reasons: dict[str, int] = {}
            for r in self.excluded.values():
                reasons[r] = reasons.get(r, 0) + 1
            lines.append("")
            lines.append("excluded: " + ", ".join(f"{n} {r}" for r, n in sorted(reasons.items())))
        if self.missing_predictions:
            lines.append(f"missing predictions: {len(self.missing_predictions)} GT images scored as 'nothing predicted'")
        if self.unknown_predictions:
            lines.append(f"unknown predictions: {len(self.unknown_predictions)} predicted images not in the GT (not scored)")
        for note in self.notes:
            lines.append(f"note: {note}")
        for err in self.errors:
            lines.append(f"error: {err}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()


def _fmt(value: float | None, protocol: str) -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    if isinstance(value, int):
        return str(value)
    if protocol == "seqrank":
        return f"{value:.4f}"
    return f"{value:.6f}"
