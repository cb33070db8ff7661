"""A ``salrank predict`` run: rank many files, write their outputs, report what failed, and sum up.

:func:`predict_files` is the whole run behind the command (and usable from Python): it checks up
front that no output would be overwritten, ranks the files in batches with a progress bar
(:meth:`salrank.Ranker.rank_files`), writes each image's outputs as soon as it is ranked
(:func:`salrank.outputs.write_outputs`), reports a file that fails (unreadable, not an image, a model
error) and goes on, writes the optional COCO results file of the whole run and the run manifest
(also when the run is interrupted), and returns a :class:`PredictSummary`.
"""

from __future__ import annotations

import logging
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from salrank.errors import InputError
from salrank.outputs import (
    ImageRecord,
    OutputOptions,
    RunRecord,
    existing_outputs,
    now_iso,
    output_names,
    write_manifest,
    write_outputs,
)
from salrank.ranker import Ranker

logger = logging.getLogger(__name__)


@dataclass
class PredictSummary:
    """What a run did."""

    model: str
    out_dir: Path
    total: int
    done: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    """``(file, reason)`` of every file that was skipped."""
    objects: int = 0
    wall_seconds: float = 0.0
    model_seconds: list[float] = field(default_factory=list)
    coco_file: Path | None = None
    manifest: Path | None = None
    interrupted: bool = False
    note: str | None = None

    @property
    def exit_code(self) -> int:
        """0 when every image was ranked, 1 when some failed (or the run was interrupted)."""
        return 0 if not self.failed and not self.interrupted and self.done == self.total else 1

    def text(self) -> str:
        """The summary printed at the end of ``salrank predict``."""
        lines = []
        status = "interrupted: " if self.interrupted else ""
        lines.append(
            f"{status}{self.done} of {self.total} image{'s' if self.total != 1 else ''} ranked"
            + (f", {len(self.failed)} failed" if self.failed else "")
            + f", {self.objects} object{'s' if self.objects != 1 else ''} found"
        )
        if self.done:
            per_image = self.wall_seconds / max(1, self.done + len(self.failed))
            model = statistics.median(self.model_seconds) if self.model_seconds else 0.0
            lines.append(
                f"  time      {per_image:.2f} s per image (model: median {model:.2f} s), {self.wall_seconds:.1f} s in all"
            )
        lines.append(f"  model     {self.model}")
        lines.append(f"  outputs   {self.out_dir}")
        if self.coco_file is not None:
            lines.append(f"  coco      {self.coco_file}")
        if self.note:
            lines.append(f"  note      {self.note}")
        if self.failed:
            lines.append("  failed:")
            lines.extend(f"    {path}: {reason}" for path, reason in self.failed)
        return "\n".join(lines)


def check_targets(out_dir: Path, names: list[str], options: OutputOptions, coco: Path | None) -> None:
    """Raise :class:`InputError` when the run would replace an existing output (unless ``options.overwrite``)."""
    if options.overwrite:
        return
    existing = existing_outputs(out_dir, names, options)
    if coco is not None and coco.exists():
        existing.insert(0, coco)
    if existing:
        shown = ", ".join(str(p) for p in existing[:3]) + (f" and {len(existing) - 3} more" if len(existing) > 3 else "")
        raise InputError(
            f"refusing to overwrite {len(existing)} existing output{'s' if len(existing) != 1 else ''} ({shown}); "
            "pass --overwrite, or choose another --out"
        )
    if coco is not None and coco.is_dir():
        raise InputError("--coco must be a file name, not a folder", coco)


def predict_files(
    ranker: Ranker,
    files: Sequence[Path],
    out_dir: str | Path,
    options: OutputOptions | None = None,
    *,
    roots: dict[Path, Path] | None = None,
    names: Sequence[str] | None = None,
    coco: str | Path | None = None,
    progress: bool = True,
    command: list[str] | None = None,
    settings: dict[str, Any] | None = None,
) -> PredictSummary:
    """Rank ``files`` with ``ranker`` and write their outputs into ``out_dir``.

    Args:
        ranker: the model.
        files: image files (see :func:`salrank.utils.io.list_images` to expand folders and globs).
        out_dir: the output folder (created).
        options: which outputs (:class:`salrank.outputs.OutputOptions`).
        roots: the input folder each file was found in (names files whose stems collide).
        names: the output name of each file (default: :func:`salrank.outputs.output_names`).
        coco: also write one COCO results file of the whole run here (what ``salrank eval`` reads).
        progress: show a progress bar on stderr.
        command: the command line, for the manifest.
        settings: extra settings to record in the manifest.

    Raises:
        InputError: outputs exist and ``options.overwrite`` is not set (nothing is written then).
    """
    from tqdm import tqdm

    from salrank.io.coco_results import coco_entries
    from salrank.utils.io import write_json

    options = options or OutputOptions()
    out = Path(out_dir)
    coco_path = None if coco is None else Path(coco)
    files = [Path(f) for f in files]
    names = list(names) if names is not None else output_names(files, roots)
    if len(names) != len(files):
        raise InputError(f"{len(files)} files but {len(names)} names")
    check_targets(out, names, options, coco_path)
    out.mkdir(parents=True, exist_ok=True)

    summary = PredictSummary(model=ranker.name, out_dir=out, total=len(files), note=None)
    if ranker.is_default:
        summary.note = "salrank-default is a training-free baseline; the learned models are far better (salrank weights list)"
    run = RunRecord(
        model=ranker.describe(), settings={**(settings or {}), **_option_settings(options, coco_path)}, command=command
    )
    records: list[ImageRecord] = []
    coco_results: list[dict[str, Any]] = []
    start = time.perf_counter()
    bar = tqdm(total=len(files), unit="img", desc="salrank predict", disable=not progress, file=sys.stderr, dynamic_ncols=True)
    try:
        for outcome in ranker.rank_files(files, names):
            source = str(outcome.path)
            if outcome.ok and outcome.result is not None:
                try:
                    written = write_outputs(outcome.result, outcome.image, out, options, name=outcome.name, source=source)
                except OSError as exc:  # a full disk or a read-only folder is not worth carrying on for
                    raise InputError(
                        f"cannot write the outputs ({exc.strerror or exc})", getattr(exc, "filename", None) or out
                    ) from None
                records.append(ImageRecord.from_result(outcome.name, source, outcome.result, written, out, outcome.seconds))
                if coco_path is not None:
                    coco_results.extend(coco_entries(outcome.result, outcome.name))
                summary.done += 1
                summary.objects += len(outcome.result)
                summary.model_seconds.append(outcome.seconds)
            else:
                reason = outcome.error or "unknown error"
                summary.failed.append((source, reason))
                records.append(ImageRecord(name=outcome.name, source=source, status="failed", error=reason))
                message = f"skipped {source}: {reason}"
                if progress:
                    bar.write(message, file=sys.stderr)
                else:
                    logger.warning(message)
            bar.update(1)
            bar.set_postfix(objects=summary.objects, failed=len(summary.failed), refresh=False)
    except KeyboardInterrupt:
        summary.interrupted = True
    finally:
        bar.close()
        summary.wall_seconds = time.perf_counter() - start
        if coco_path is not None and (summary.done or not summary.interrupted):
            write_json(coco_path, coco_results, indent=None)
            summary.coco_file = coco_path
        run.finished = now_iso()
        run.summary = {
            "images": summary.total,
            "done": summary.done,
            "failed": len(summary.failed),
            "objects": summary.objects,
            "seconds": round(summary.wall_seconds, 3),
            "interrupted": summary.interrupted,
        }
        if records or not summary.interrupted:
            summary.manifest = write_manifest(out, run, records, options)
    return summary


def _option_settings(options: OutputOptions, coco: Path | None) -> dict[str, Any]:
    return {
        "outputs": options.kinds(),
        "layout": options.layout,
        "rank_map_style": options.rank_map_style,
        "overlay_format": options.overlay_format,
        "coco": None if coco is None else str(coco),
        "overwrite": options.overwrite,
    }
