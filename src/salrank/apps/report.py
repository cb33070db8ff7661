"""``salrank report DIR``: an HTML contact sheet of a ``salrank predict`` run.

The page (``DIR/report.html``) shows every image of the run as a card: a thumbnail of the overlay
(the photo with rank colours and numbers) and of the colour map, each linking to the full-size file,
the ranked objects with their rank colour, rank score and objectness, the model that produced them,
and links to the JSON, the rank map, the skeleton composite and the source photo. Failed images are
listed with the reason. The model(s) and settings of the run(s) head the page.

It is one self-contained file plus a folder of thumbnails (``DIR/report_files/``): inline CSS, no
script, no external asset, font or CDN, and only relative links (with every file name escaped), so
the folder can be moved, zipped or served as it is.
"""

from __future__ import annotations

import html
import logging
import os
import shutil
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from salrank.errors import InputError

logger = logging.getLogger(__name__)

REPORT_NAME = "report.html"
THUMBS_DIR = "report_files"
_PICTURES = ("overlay", "colormap")
_LINKS = (("json", "JSON"), ("rank_map", "rank map"), ("skeleton", "skeletons"), ("masks", "masks"))


@dataclass
class ReportImage:
    """One image of the run as the report shows it."""

    name: str
    source: str | None = None
    status: str = "ok"
    error: str | None = None
    model: str | None = None
    size: tuple[int, int] | None = None
    ranks: list[dict[str, Any]] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)
    """``{kind: path relative to the run folder}``."""


def _url(path: str) -> str:
    """A relative URL for a relative POSIX path: every character that means something in a URL is escaped."""
    return quote(path, safe="/")


def _from_manifest(manifest: dict[str, Any]) -> tuple[list[ReportImage], list[dict[str, Any]]]:
    images = []
    for item in manifest.get("images", []):
        size = (item["width"], item["height"]) if item.get("width") and item.get("height") else None
        images.append(
            ReportImage(
                name=str(item.get("name", "?")),
                source=item.get("source"),
                status=item.get("status", "ok"),
                error=item.get("error"),
                model=item.get("model"),
                size=size,
                ranks=list(item.get("ranks", [])),
                outputs=dict(item.get("outputs", {})),
            )
        )
    return images, list(manifest.get("runs", []))


def _scan_folder(root: Path) -> list[ReportImage]:
    """A run folder without a manifest (e.g. written by ``RankedInstances.save``): find its JSONs and pictures."""
    from salrank.io.json_folder import read_prediction_json
    from salrank.outputs import OUTPUT_KINDS, OutputOptions, output_paths

    found: list[tuple[str, Path, str]] = []
    for p in sorted((root / "json").glob("*.json")):
        found.append((p.stem, p, "by-kind"))
    for p in sorted(root.glob("*/result.json")):
        found.append((p.parent.name, p, "per-image"))
    images = []
    for name, path, layout in found:
        try:
            result = read_prediction_json(path)
        except InputError as exc:
            images.append(ReportImage(name=name, status="failed", error=exc.message))
            continue
        outputs: dict[str, Any] = {}
        for fmt in ("jpg", "png"):
            options = OutputOptions(layout=layout, overlay_format=fmt, masks=True)
            for kind, p in output_paths(root, name, options).items():
                if kind in OUTPUT_KINDS and p.exists() and kind not in outputs:
                    outputs[kind] = p.relative_to(root).as_posix()
        kinds = result.extras.get("kinds")
        ranks = [
            {"rank": inst.rank, "saliency": round(inst.saliency, 4), "score": round(inst.score, 4)}
            | ({"kind": kinds[i]} if isinstance(kinds, list) and i < len(kinds) else {})
            for i, inst in enumerate(result)
        ]
        images.append(
            ReportImage(name=name, model=result.model, size=(result.width, result.height), ranks=ranks, outputs=outputs)
        )
    return images


def load_run(run_dir: str | os.PathLike[str]) -> tuple[list[ReportImage], list[dict[str, Any]]]:
    """The images (and run records) of a predict run folder: from its manifest, else by scanning it."""
    from salrank.outputs import read_manifest

    root = Path(run_dir)
    if not root.is_dir():
        raise InputError("not a folder", root)
    manifest = read_manifest(root)
    if manifest is not None:
        return _from_manifest(manifest)
    images = _scan_folder(root)
    if not images:
        raise InputError("no salrank predict results here (no manifest.json, no json/*.json, no */result.json)", root)
    return images, []


def _thumbnail(source: Path, target: Path, max_side: int) -> bool:
    """Write a small JPEG of an image file; ``False`` when the file cannot be read."""
    from salrank.outputs import write_image
    from salrank.utils.io import read_image
    from salrank.viz.render import fit_within

    try:
        picture = read_image(source)
    except InputError as exc:
        logger.warning("no thumbnail: %s", exc)
        return False
    write_image(target, fit_within(picture, max_side))
    return True


_CSS = """
:root { color-scheme: light dark; --bg: #f4f4f2; --card: #fff; --ink: #1d1d1f; --muted: #6b6b70; --line: #deded9; }
@media (prefers-color-scheme: dark) { :root { --bg: #17181a; --card: #222326; --ink: #ececec; --muted: #9a9aa0; --line: #34353a; } }
* { box-sizing: border-box; }
body { margin: 0; padding: 24px; background: var(--bg); color: var(--ink);
       font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
h1 { font-size: 22px; margin: 0 0 4px; }
header p, .muted { color: var(--muted); }
.note { border-left: 4px solid #ea573d; padding: 6px 10px; background: var(--card); margin: 10px 0; }
table.runs { border-collapse: collapse; margin: 8px 0 16px; }
table.runs td, table.runs th { border-bottom: 1px solid var(--line); padding: 3px 10px 3px 0; text-align: left; vertical-align: top; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(330px, 1fr)); gap: 16px; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 10px; overflow: hidden; }
.card h2 { font-size: 14px; margin: 0 0 6px; word-break: break-all; }
.pics { display: grid; grid-template-columns: 1fr 1fr; gap: 6px; }
.pics img { width: 100%; height: auto; display: block; border-radius: 4px; background: #000; }
.pics figure { margin: 0; }
.pics figcaption { font-size: 11px; color: var(--muted); }
table.ranks { width: 100%; border-collapse: collapse; margin-top: 6px; font-variant-numeric: tabular-nums; }
table.ranks th, table.ranks td { text-align: left; padding: 1px 6px 1px 0; border-bottom: 1px solid var(--line); font-size: 12px; }
.sw { display: inline-block; width: 11px; height: 11px; border-radius: 2px; vertical-align: -1px; margin-right: 4px; }
.links { margin-top: 6px; font-size: 12px; }
.links a { margin-right: 10px; }
.failed { border-color: #ea573d; }
.error { color: #c0392b; word-break: break-word; }
"""


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _source_link(source: str | None, root: Path, report_dir: Path) -> str:
    if not source:
        return ""
    path = Path(source)
    if not path.is_absolute():
        path = Path.cwd() / path
    if not path.exists():
        return f'<span class="muted">source: {_e(source)} (not found)</span>'
    rel = os.path.relpath(path, report_dir)
    return f'<a href="{_url(Path(rel).as_posix())}">source photo</a>'


def _runs_table(runs: list[dict[str, Any]]) -> str:
    if not runs:
        return ""
    rows = []
    for i, run in enumerate(runs):
        model = run.get("model", {})
        summary = run.get("summary", {})
        counts = f"{summary.get('done', '?')} ranked, {summary.get('failed', 0)} failed, {summary.get('objects', '?')} objects"
        rows.append(
            f"<tr><td>{i + 1}</td><td><b>{_e(model.get('name', '?'))}</b><br><span class=muted>{_e(model.get('source', ''))}</span></td>"
            f"<td>{_e(run.get('started', ''))}</td><td>{_e(counts)}</td>"
            f"<td>{_e(model.get('device', ''))}{', size ' + _e(model['size']) if model.get('size') else ''}</td></tr>"
        )
    return (
        '<table class="runs"><tr><th>run</th><th>model</th><th>started</th><th>images</th><th>device</th></tr>'
        + "".join(rows)
        + "</table>"
    )


def _rank_rows(ranks: Iterable[dict[str, Any]]) -> str:
    from salrank.viz.palette import rank_color

    rows = []
    for item in ranks:
        r = int(item.get("rank", 0))
        colour = "rgb({},{},{})".format(*rank_color(max(1, r)))
        kind = f"<td>{_e(item['kind'])}</td>" if "kind" in item else "<td></td>"
        rows.append(
            f'<tr><td><span class="sw" style="background:{colour}"></span>{r}</td>'
            f"<td>{float(item.get('saliency', 0)):.3f}</td><td>{float(item.get('score', 0)):.3f}</td>{kind}</tr>"
        )
    if not rows:
        return '<p class="muted">no salient object found</p>'
    return (
        '<table class="ranks"><tr><th>rank</th><th>rank score</th><th>objectness</th><th>kind</th></tr>'
        + "".join(rows)
        + "</table>"
    )


def build_report(
    run_dir: str | os.PathLike[str],
    output: str | os.PathLike[str] | None = None,
    *,
    thumb_size: int = 320,
    overwrite: bool = False,
    title: str | None = None,
) -> Path:
    """Write the contact sheet of a predict run; returns the HTML file's path.

    Args:
        run_dir: the ``--out`` folder of ``salrank predict``.
        output: the HTML file (default ``run_dir/report.html``); thumbnails go beside it in ``report_files/``.
        thumb_size: longer side of the thumbnails in pixels.
        overwrite: replace an existing report (and its thumbnails).
        title: the page title (default: the folder's name).
    """
    from salrank.utils.io import atomic_write

    root = Path(run_dir)
    images, runs = load_run(root)
    target = Path(output) if output is not None else root / REPORT_NAME
    if target.exists() and not overwrite:
        raise InputError("refusing to overwrite the existing report; pass --overwrite", target)
    report_dir = target.parent.resolve()
    thumbs = target.parent / THUMBS_DIR
    if thumbs.exists() and overwrite:
        shutil.rmtree(thumbs)
    cards = []
    models: dict[str, int] = {}
    failed = 0
    for index, img in enumerate(images):
        if img.status != "ok":
            failed += 1
            cards.append(
                f'<div class="card failed"><h2>{_e(img.name)}</h2><p class="error">failed: {_e(img.error or "unknown error")}</p>'
                f'<div class="links">{_source_link(img.source, root, report_dir)}</div></div>'
            )
            continue
        if img.model:
            models[img.model] = models.get(img.model, 0) + 1
        figures = []
        for kind in _PICTURES:
            rel = img.outputs.get(kind)
            if not isinstance(rel, str):
                continue
            full = root / rel
            thumb = thumbs / f"{index:05d}_{kind}.jpg"
            if not full.exists() or not _thumbnail(full, thumb, thumb_size):
                continue
            link = _url(Path(os.path.relpath(full.resolve(), report_dir)).as_posix())
            src = _url(Path(os.path.relpath(thumb.resolve(), report_dir)).as_posix())
            label = "overlay" if kind == "overlay" else "colour map"
            figures.append(
                f'<figure><a href="{link}"><img loading="lazy" src="{src}" alt="{_e(label)} of {_e(img.name)}"></a>'
                f"<figcaption>{label}</figcaption></figure>"
            )
        links = []
        for kind, label in _LINKS:
            rel = img.outputs.get(kind)
            if isinstance(rel, list):  # masks: a list of files; link their folder
                rel = Path(rel[0]).parent.as_posix() if rel else None
            if isinstance(rel, str) and (root / rel).exists():
                links.append(
                    f'<a href="{_url(Path(os.path.relpath((root / rel).resolve(), report_dir)).as_posix())}">{label}</a>'
                )
        source = _source_link(img.source, root, report_dir)
        size = f"{img.size[0]}x{img.size[1]}, " if img.size else ""
        count = len(img.ranks)
        cards.append(
            f'<div class="card"><h2>{_e(img.name)}</h2>'
            f'<div class="muted">{_e(size)}{count} object{"s" if count != 1 else ""} - {_e(img.model or "unknown model")}</div>'
            f'<div class="pics">{"".join(figures)}</div>{_rank_rows(img.ranks)}'
            f'<div class="links">{" ".join(links)} {source}</div></div>'
        )
    page_title = title or f"salrank results: {root.resolve().name}"
    model_list = ", ".join(f"{_e(m)} ({n} image{'s' if n != 1 else ''})" for m, n in models.items()) or "unknown"
    note = ""
    if any(m == "salrank-default" for m in models):
        note = (
            '<p class="note">salrank-default is the built-in, training-free baseline. The learned models '
            "(SeqRank, PoseSOR, PPA) are far better: <code>salrank weights list</code>.</p>"
        )
    body = (
        f"<header><h1>{_e(page_title)}</h1>"
        f"<p>{len(images) - failed} image{'s' if len(images) - failed != 1 else ''} ranked"
        + (f", {failed} failed" if failed else "")
        + f" &middot; model: {model_list}</p>{note}{_runs_table(runs)}</header>"
        f'<main class="grid">{"".join(cards)}</main>'
    )
    page = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(page_title)}</title><style>{_CSS}</style></head><body>{body}</body></html>\n"
    )
    with atomic_write(target, "w") as fh:
        fh.write(page)
    return target
