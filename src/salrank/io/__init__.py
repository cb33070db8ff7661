"""Prediction files of the field: read any of them, write the official ones.

=========================== ======================================================================
what                        module
=========================== ======================================================================
SeqRank/PoseSOR result .pth :mod:`.result_file` (``{image_name: {"masks": [RLE], "scores", ...}}``)
COCO results JSON           :mod:`.coco_results` (one entry per object, with a ``rank`` field)
salrank per-image JSONs     :mod:`.json_folder` (what ``salrank predict`` writes)
grey rank-map PNGs          :mod:`.rank_maps` (ASSR/PPA and SeqRank conventions)
=========================== ======================================================================

:func:`load_predictions` detects which one a path is.
"""

from __future__ import annotations

import logging
from pathlib import Path

from salrank.errors import InputError
from salrank.io.coco_results import read_coco_results, save_coco_results
from salrank.io.json_folder import is_prediction_json, read_json_folder, read_prediction_json, save_json_folder
from salrank.io.rank_maps import (
    ASSR_GREY_LEVELS,
    RankMapFolder,
    rank_map_to_instances,
    render_rank_map,
    save_rank_maps,
)
from salrank.io.result_file import read_result_file, result_entry, save_result_file
from salrank.structures import RankedInstances, SORDataset

__all__ = [
    "ASSR_GREY_LEVELS",
    "RankMapFolder",
    "detect_predictions",
    "load_predictions",
    "rank_map_to_instances",
    "read_coco_results",
    "read_result_file",
    "render_rank_map",
    "result_entry",
    "save_coco_results",
    "save_json_folder",
    "save_rank_maps",
    "save_result_file",
]

logger = logging.getLogger(__name__)

PREDICTION_KINDS = ("result_file", "coco_results", "json", "json_folder", "rank_maps", "predict_run")


def _is_torch_file(path: Path) -> bool:
    if path.suffix.lower() in (".pth", ".pt"):
        return True
    try:
        with open(path, "rb") as fh:
            head = fh.read(4)
    except OSError:
        return False
    return head[:2] == b"PK" or head[:1] == b"\x80"  # zip (torch >= 1.6) or a legacy pickle


def detect_predictions(path: str | Path) -> str:
    """Which kind of prediction file ``path`` is: one of :data:`PREDICTION_KINDS`.

    A folder of JSONs is ``json_folder`` when its JSON files are salrank predictions; otherwise a folder
    with PNGs is ``rank_maps``.
    """
    p = Path(path)
    if not p.exists():
        raise InputError("no such file or folder", p)
    if p.is_dir():
        if _predict_run_jsons(p) is not None:
            return "predict_run"
        jsons = sorted(p.glob("*.json"))
        if jsons:
            from salrank.utils.io import read_json

            if is_prediction_json(read_json(jsons[0])):
                return "json_folder"
        if any(q.suffix.lower() == ".png" for q in p.iterdir() if q.is_file()):
            return "rank_maps"
        raise InputError(
            "no predictions found: expected salrank per-image .json files or rank-map .png files named after the images", p
        )
    if _is_torch_file(p):
        return "result_file"
    if p.suffix.lower() == ".json":
        from salrank.utils.io import read_json

        data = read_json(p)
        if isinstance(data, list):
            return "coco_results"
        if is_prediction_json(data):
            return "json"
        if isinstance(data, dict) and ("annotations" in data or "data" in data):
            raise InputError("this is a ground-truth annotation file, not predictions", p)
        raise InputError("unknown prediction JSON: expected a COCO results list or a salrank per-image prediction", p)
    raise InputError(
        "unknown prediction format: expected a result .pth, a COCO results .json, or a folder of per-image .json or "
        "rank-map .png files",
        p,
    )


def _warn_unknown(path: Path, names: list[str], gt: SORDataset) -> None:
    unknown = [n for n in names if n not in gt]
    if unknown:
        shown = ", ".join(unknown[:20]) + (f" and {len(unknown) - 20} more" if len(unknown) > 20 else "")
        logger.warning("%s: %d predicted images are not in the ground truth and will be ignored: %s", path, len(unknown), shown)
    missing = sum(1 for img in gt.images if img.image_id not in set(names))
    if missing:
        logger.info("%s: %d ground-truth images have no prediction (they count as empty predictions)", path, missing)


def _check_sizes(path: Path, preds: dict[str, RankedInstances], gt: SORDataset) -> None:
    for name, result in preds.items():
        if name not in gt:
            continue
        img = gt[name]
        if len(result) == 0 and (result.height, result.width) != (img.height, img.width):
            preds[name] = RankedInstances.empty(name, img.height, img.width, model=result.model)
        elif (result.height, result.width) != (img.height, img.width):
            raise InputError(
                f"prediction size {result.height}x{result.width} differs from the image size {img.height}x{img.width}",
                path,
                name,
            )


def _predict_run_jsons(folder: Path) -> list[Path] | None:
    """The per-image JSONs of a ``salrank predict`` output folder (found through its manifest), else ``None``."""
    from salrank.outputs import MANIFEST_FORMAT, MANIFEST_NAME
    from salrank.utils.io import read_json

    manifest = folder / MANIFEST_NAME
    if not manifest.is_file():
        return None
    data = read_json(manifest)
    if not isinstance(data, dict) or data.get("format") != MANIFEST_FORMAT:
        return None
    files = []
    for record in data.get("images", []):
        rel = (record.get("outputs") or {}).get("json") if isinstance(record, dict) else None
        if isinstance(rel, str) and record.get("status", "ok") == "ok":
            files.append(folder / rel)
    missing = [f for f in files if not f.is_file()]
    if missing:
        raise InputError(f"the run manifest lists {len(missing)} JSON file(s) that are missing, e.g. {missing[0]}", manifest)
    if not files:
        raise InputError("this predict run has no per-image JSON outputs (it was run without JSON output)", manifest)
    return files


def load_predictions(path: str | Path, *, gt: SORDataset | None = None) -> dict[str, RankedInstances] | RankMapFolder:
    """Read predictions of any kind the field uses.

    Args:
        path: a SeqRank/PoseSOR result ``.pth`` (loaded with ``weights_only=True``), a COCO results JSON,
            one salrank per-image JSON or a folder of them, a ``salrank predict`` output folder (its
            manifest lists the JSONs), or a folder of rank-map PNGs named after the images.
        gt: the ground truth. Needed to map integer COCO ``image_id`` values to names; with it,
            predictions for images not in the GT are warned about (listing them) and mask sizes are
            checked against the GT's image sizes.

    Returns:
        ``{image_id: RankedInstances}``, or a :class:`RankMapFolder` for rank maps (read lazily).
    """
    p = Path(path)
    kind = detect_predictions(p)
    preds: dict[str, RankedInstances]
    if kind == "rank_maps":
        folder = RankMapFolder(p)
        if gt is not None:
            _warn_unknown(p, folder.keys(), gt)
        return folder
    if kind == "result_file":
        sizes = None if gt is None else {img.image_id: (img.height, img.width) for img in gt.images}
        preds = read_result_file(p, sizes)
    elif kind == "coco_results":
        preds = read_coco_results(p, gt)
    elif kind == "json":
        result = read_prediction_json(p)
        result.image_name = p.stem
        preds = {p.stem: result}
    elif kind == "predict_run":
        preds = {}
        for f in _predict_run_jsons(p) or []:
            result = read_prediction_json(f)
            if result.image_name in preds:
                raise InputError("two predictions for this image in the run", f, result.image_name)
            preds[result.image_name] = result
    else:
        preds = read_json_folder(p)
    if gt is not None:
        _warn_unknown(p, list(preds), gt)
        _check_sizes(p, preds, gt)
    return preds
