"""``salrank.evaluate``: score predictions against a ground truth under one of the field's protocols.

The loop is deliberately plain: for each GT image (in dataset order, which is the official
evaluation order) take its prediction (or "nothing predicted" when there is none), compute the
protocol's per-image record with the functions of :mod:`seqrank_protocol`, :mod:`irsr_protocol` or
:mod:`assr_protocol`, then aggregate exactly as the official code does.

Inputs are converted the way each official pipeline sees them:

* ``seqrank``: GT polygons rasterised with ``cv2.fillPoly`` on integer vertices at the image size
  (SeqRank's test mapper), most salient first (ties in file order); prediction masks as given. Rank-map
  predictions are split into one instance per grey value (PoseSOR ``misc/evaluate_map.py``).
* ``irsr``: GT polygons rasterised by pycocotools (IRSR's data loader); GT rank "higher = more
  salient" from salrank's ranks; prediction scores from the file when it gave them
  (``extras["explicit_rank_scores"]``), else ``linspace(1.0, 0.5, m)`` over the predicted order
  (PoseSOR ``misc/sasor.py``).
* ``assr``: GT objects as the ASSR files hold them (``rank_order > 0.5`` salient; for other datasets the
  values salrank's ASSR writer would store), masks by pycocotools; predictions must be grey rank maps:
  a folder is read as the official code reads it (channel 0), instance predictions are drawn with
  :func:`salrank.io.rank_maps.render_rank_map`. The GT maps for MAE are the dataset's
  ``gt/{split}/<id>.png`` when it is an ASSR folder, else drawn from the GT (and the report says so).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from salrank.errors import InputError
from salrank.evaluation.assr_protocol import AssrImageResult, aggregate_assr, assr_image_metrics
from salrank.evaluation.coco_segm import coco_rle, coco_segm_metrics
from salrank.evaluation.irsr_protocol import EXCLUDED_NAN, EXCLUDED_NO_GT, EXCLUDED_SINGLE_GT, aggregate_irsr, irsr_image_sa_sor
from salrank.evaluation.joints import normalise_keypoints
from salrank.evaluation.overlaps import MaskSet
from salrank.evaluation.report import EvaluationReport
from salrank.evaluation.seqrank_protocol import JOINT_METRICS, SEQRANK_METRICS, aggregate_seqrank, seqrank_image_metrics
from salrank.structures import NUM_KEYPOINTS, GTImage, RankedInstances, SORDataset

logger = logging.getLogger(__name__)

PROTOCOLS = ("seqrank", "assr", "irsr")
ASSR_METRICS = ("sor", "mae", "mae_binary")
IRSR_METRICS = ("sa_sor",)
MAP_STYLES = ("assr", "seqrank")

_EXCLUSION_TEXT = {
    EXCLUDED_SINGLE_GT: "single GT object",
    EXCLUDED_NAN: "undefined correlation (all GT ranks equal)",
    EXCLUDED_NO_GT: "no salient GT object",
}


# ---------------------------------------------------------------------------------------------- inputs
class _Predictions:
    """Uniform access to instance predictions (``{image_id: RankedInstances}``) or a rank-map folder."""

    def __init__(self, source: Any, path: Path | None) -> None:
        from salrank.io.rank_maps import RankMapFolder

        self.path = path
        self.maps: RankMapFolder | None = source if isinstance(source, RankMapFolder) else None
        self.instances: dict[str, RankedInstances] = {} if self.maps is not None else dict(source)

    @property
    def name(self) -> str:
        if self.path is not None:
            return str(self.path)
        return str(self.maps.root) if self.maps is not None else "in-memory predictions"

    def ids(self) -> list[str]:
        return list(self.maps.keys()) if self.maps is not None else list(self.instances)

    def __contains__(self, image_id: str) -> bool:
        return image_id in (self.maps if self.maps is not None else self.instances)

    def as_instances(self, image_id: str) -> RankedInstances | None:
        if image_id not in self:
            return None
        if self.maps is not None:
            return self.maps.to_instances(image_id)
        return self.instances[image_id]

    def as_map(self, image_id: str, style: str) -> np.ndarray | None:
        if image_id not in self:
            return None
        if self.maps is not None:
            return self.maps.read(image_id)
        from salrank.io.rank_maps import render_rank_map

        return render_rank_map(self.instances[image_id], style=style)


def _load_gt(gt: SORDataset | str | Path, split: str | None) -> tuple[SORDataset, Path | None]:
    if isinstance(gt, SORDataset):
        if split is not None and gt.split is not None and split != gt.split:
            raise InputError(f"split {split!r} requested but the dataset given is split {gt.split!r}")
        return gt, None
    from salrank.data import load_dataset

    path = Path(gt)
    if not path.exists():
        raise InputError("ground truth not found", path)
    return load_dataset(path, split=split), path


def _load_predictions(pred: Any, dataset: SORDataset) -> _Predictions:
    from salrank.io.rank_maps import RankMapFolder

    if isinstance(pred, RankMapFolder):
        return _Predictions(pred, None)
    if isinstance(pred, Mapping):
        for key, value in pred.items():
            if not isinstance(value, RankedInstances):
                raise InputError(f"predictions must map image ids to RankedInstances; got {type(value).__name__}", None, key)
        return _Predictions(pred, None)
    if isinstance(pred, (list, tuple)):
        by_id: dict[str, RankedInstances] = {}
        for k, value in enumerate(pred):
            if not isinstance(value, RankedInstances):
                raise InputError(f"prediction {k} is a {type(value).__name__}, not RankedInstances")
            if value.image_name in by_id:
                raise InputError("two predictions for this image", None, value.image_name)
            by_id[value.image_name] = value
        return _Predictions(by_id, None)
    if isinstance(pred, (str, Path)):
        from salrank.io import load_predictions

        path = Path(pred)
        if not path.exists():
            raise InputError("predictions not found", path)
        return _Predictions(load_predictions(path, gt=dataset), path)
    raise InputError(f"cannot evaluate predictions of type {type(pred).__name__}")


def _prediction_masks(result: RankedInstances) -> MaskSet:
    """The masks of a prediction for overlap counting: its RLEs when it was read from a file (no decoding)."""
    if result.has_dense_masks or len(result) == 0:
        return MaskSet.from_dense(result.masks)
    return MaskSet.from_rles(result.rles, result.height, result.width)


def _check_size(result: RankedInstances, image: GTImage, where: str) -> None:
    if (result.height, result.width) != (image.height, image.width):
        raise InputError(
            f"prediction is {result.height}x{result.width} but the GT image is {image.height}x{image.width}",
            where,
            image.image_id,
        )


def _warn_ids(kind: str, ids: list[str], where: str, consequence: str) -> None:
    if not ids:
        return
    shown = ", ".join(ids[:5]) + (", ..." if len(ids) > 5 else "")
    logger.warning("%s: %d %s (%s); %s", where, len(ids), kind, shown, consequence)


# ---------------------------------------------------------------------------------------------- GT masks
def _seqrank_gt_masks(image: GTImage, where: str) -> MaskSet:
    """SeqRank's mapper rasterisation (``cv2.fillPoly`` on integer vertices; RLEs decoded), most salient first.

    Predictions given as RLEs are decoded and bit-packed to meet these masks: re-encoding the GT as
    RLEs to count in pycocotools instead was measured slower (14.3 s vs 8.4 s on 2418 images).
    """
    masks = []
    for inst in image.instances:
        try:
            masks.append(inst.mask(image.height, image.width))
        except ValueError as exc:  # e.g. an RLE of another size than the image
            raise InputError(str(exc), where, image.image_id, f"object {inst.id}") from None
    return MaskSet.from_mask_list(masks, image.height, image.width)


def _file_order(instances: Sequence[Any]) -> list[Any]:
    """Instances in the order of the source file when their ids are its indices (ASSR, IRSR readers).

    The official IRSR code breaks IoU ties by GT position, so the file order matters there.
    """
    ids = [inst.id for inst in instances]
    if all(isinstance(i, int) for i in ids) and len(set(ids)) == len(ids):
        return sorted(instances, key=lambda inst: inst.id)
    return list(instances)


def _coco_gt_rles(instances: Sequence[Any], image: GTImage) -> list[dict[str, Any]]:
    """pycocotools rasterisation (IRSR / ASSR loaders), kept as RLEs."""
    out = []
    for inst in instances:
        try:
            rle = coco_rle(inst.segmentation, image.height, image.width)
        except (ValueError, TypeError) as exc:
            raise InputError(f"unusable segmentation ({exc})", None, image.image_id, f"object {inst.id}") from None
        h, w = (int(v) for v in rle["size"])
        if (h, w) != (image.height, image.width):
            raise InputError(f"RLE of size {h}x{w} for an image of {image.height}x{image.width}", None, image.image_id, f"object {inst.id}")
        out.append(rle)
    return out


def _gt_keypoints(image: GTImage) -> np.ndarray:
    """``(n, 17, 3)`` float32 GT keypoints normalised as PoseSOR's mapper: ``/ [W, H, 1]`` (zeros when absent)."""
    kp = np.zeros((len(image.instances), NUM_KEYPOINTS, 3), np.float32)
    scale = np.array([[image.width, image.height, 1]], np.float32)
    for i, inst in enumerate(image.instances):
        if inst.keypoints is not None:
            kp[i] = np.asarray(inst.keypoints, np.float32).reshape(NUM_KEYPOINTS, 3) / scale
    return kp


# ---------------------------------------------------------------------------------------------- protocols
def _iterate(images: Sequence[GTImage], progress: bool, protocol: str) -> Any:
    if not progress:
        return images
    from tqdm import tqdm

    return tqdm(images, desc=f"eval {protocol}", unit="img")


def _run_seqrank(dataset: SORDataset, preds: _Predictions, report: EvaluationReport, metrics: Sequence[str] | None,
                 progress: bool) -> None:
    with_joints = any(inst.keypoints is not None for img in dataset.images for inst in img.instances)
    if with_joints and (preds.maps is not None or not any(r.keypoints is not None for r in preds.instances.values())):
        report.notes.append("the GT has keypoints but the predictions have none: jacc/jae not computed")
        with_joints = False
    elif with_joints:
        report.notes.append("jacc/jae (PoseSOR's joint metrics) computed on the Hungarian pairs, keypoints normalised by the image size")
    names = list(SEQRANK_METRICS) + (list(JOINT_METRICS) if with_joints else [])
    if metrics is not None:
        names = [m for m in names if m in metrics]
    rows: list[dict[str, float | None]] = []
    for image in _iterate(dataset.images, progress, "seqrank"):
        if not image.instances:
            report.excluded[image.image_id] = "no salient GT object"
            continue
        result = preds.as_instances(image.image_id)
        if result is None:
            result = RankedInstances.empty(image.image_id, image.height, image.width)
        _check_size(result, image, preds.name)
        gt = _seqrank_gt_masks(image, report.gt or "ground truth")
        pred = _prediction_masks(result)
        kwargs: dict[str, Any] = {}
        if with_joints:
            kwargs["gt_keypoints"] = _gt_keypoints(image)
            if result.keypoints is not None:
                kwargs["pred_keypoints"] = normalise_keypoints(result.keypoints, image.height, image.width)
        values = seqrank_image_metrics(gt, pred, **kwargs)
        row = {m: values.get(m) for m in names}
        rows.append(row)
        report.per_image[image.image_id] = row
    if report.excluded:
        logger.warning(
            "%d GT images have no salient object and are left out (the official code cannot score them)", len(report.excluded)
        )
    aggregates = aggregate_seqrank(rows, names)
    for name in names:
        agg = aggregates[name]
        report.metrics[name] = agg.value
        report.metrics_unrounded[name] = agg.unrounded
        report.counts[name] = agg.count


def _run_irsr(dataset: SORDataset, preds: _Predictions, report: EvaluationReport, progress: bool) -> None:
    results = []
    explicit = 0
    for image in _iterate(dataset.images, progress, "irsr"):
        result = preds.as_instances(image.image_id)
        if result is None:
            result = RankedInstances.empty(image.image_id, image.height, image.width)
        _check_size(result, image, preds.name)
        instances = _file_order(image.instances) if dataset.format == "irsr" else list(image.instances)
        ranks = [-float(inst.rank) for inst in instances]  # higher = more salient; ties stay ties
        scores = None
        if result.extras.get("explicit_rank_scores"):
            scores = np.asarray(result.extras.get("rank_scores", result.saliency), dtype=np.float64)
            explicit += 1
        if len(ranks) > 1:
            r = irsr_image_sa_sor(_coco_gt_rles(instances, image), ranks, _prediction_masks(result), scores)
        else:  # excluded before any mask is looked at
            r = irsr_image_sa_sor([], ranks, [], height=image.height, width=image.width)
        results.append(r)
        report.per_image[image.image_id] = {"sa_sor": r.sa_sor, "used": int(r.used)}
        if not r.used:
            report.excluded[image.image_id] = _EXCLUSION_TEXT[r.status]
    if explicit:
        report.notes.append(f"{explicit} images ranked by the rank scores given in the prediction file")
    agg = aggregate_irsr(results)
    report.metrics["sa_sor"] = agg.sa_sor
    report.metrics_unrounded["sa_sor"] = agg.sa_sor
    report.counts["sa_sor"] = agg.images_used
    report.images_used = agg.images_used
    if agg.error:
        report.errors.append(agg.error)


def _assr_objects(image: GTImage, same_format: bool) -> tuple[list[Any], list[float]]:
    """Salient objects (ASSR ``rank_order > 0.5``) in file order, with their values."""
    from salrank.data.formats.assr import SAL_VAL_THRESH, rank_order_values

    values = rank_order_values(image, same_format)
    everything = list(image.instances) + list(image.unranked)
    if same_format:
        everything = _file_order(everything)
    salient = [inst for inst in everything if values[id(inst)] > SAL_VAL_THRESH]
    return salient, [values[id(inst)] for inst in salient]


def _assr_gt_map_dir(dataset: SORDataset, gt_path: Path | None, gt_maps: str | Path | None) -> Path | None:
    if gt_maps is not None:
        folder = Path(gt_maps)
        if not folder.is_dir():
            raise InputError("GT map folder not found", folder)
        return folder
    if dataset.format != "assr" or not dataset.split:
        return None
    candidates = []
    if gt_path is not None:
        root = gt_path if gt_path.is_dir() else gt_path.parent
        candidates.append(root / "gt" / dataset.split)
    if dataset.image_root is not None:
        candidates.append(Path(dataset.image_root).parent.parent / "gt" / dataset.split)
    for c in candidates:
        if c.is_dir():
            return c
    return None


def _run_assr(dataset: SORDataset, preds: _Predictions, report: EvaluationReport, map_style: str,
              gt_path: Path | None, gt_maps: str | Path | None, progress: bool) -> None:
    from salrank.data.formats.assr import rank_order_values, render_gt_map
    from salrank.io.rank_maps import read_rank_map_file

    same_format = dataset.format == "assr"
    gt_dir = _assr_gt_map_dir(dataset, gt_path, gt_maps)
    rendered_gt = 0
    if preds.maps is None:
        report.notes.append(
            f"instance predictions were drawn as grey rank maps with render_rank_map(style={map_style!r}) "
            "(the assr protocol reads maps)"
        )
    if not same_format:
        report.notes.append(
            "GT objects and values are those salrank's ASSR writer would store (rank r -> rank_order 1.1 - 0.1 r; "
            "ranks above 5 are not salient in ASSR)"
        )
    results: list[AssrImageResult] = []
    for image in _iterate(dataset.images, progress, "assr"):
        pmap = preds.as_map(image.image_id, map_style)
        if pmap is None:
            pmap = np.zeros((image.height, image.width), np.uint8)
        if pmap.shape != (image.height, image.width):
            raise InputError(
                f"rank map is {pmap.shape[0]}x{pmap.shape[1]} but the GT image is {image.height}x{image.width}",
                preds.name,
                image.image_id,
            )
        objects, values = _assr_objects(image, same_format)
        object_rles = _coco_gt_rles(objects, image)
        gmap_path = gt_dir / f"{image.image_id}.png" if gt_dir is not None else None
        if gmap_path is not None and gmap_path.is_file():
            gmap = read_rank_map_file(gmap_path)
            if gmap.shape != pmap.shape:
                raise InputError(f"GT map is {gmap.shape[0]}x{gmap.shape[1]}, the image {image.height}x{image.width}", gmap_path)
        else:
            gmap = render_gt_map(image, rank_order_values(image, same_format))
            rendered_gt += 1
        r = assr_image_metrics(object_rles, values, pmap, gmap)
        results.append(r)
        report.per_image[image.image_id] = {
            "sor": r.sor, "spr": r.spr, "mae": r.mae, "mae_binary": r.mae_binary, "used": int(r.used),
        }  # fmt: skip
        if not r.used:
            report.excluded[image.image_id] = (
                "undefined Spearman (constant ranks)" if r.spr_is_nan else "no salient object covered by the map"
            )
    if rendered_gt:
        where = f" ({gt_dir} has no map for {rendered_gt} of them)" if gt_dir is not None else ""
        report.notes.append(
            f"{rendered_gt} GT rank maps for MAE were drawn from the GT (int(255 * rank_order), least salient first){where}"
        )
    agg = aggregate_assr(results)
    report.metrics.update({"sor": agg.sor, "mae": agg.mae, "mae_binary": agg.mae_binary})
    report.metrics_unrounded.update({"sor": agg.sor, "mae": agg.mae, "mae_binary": agg.mae_binary})
    report.counts.update({"sor": agg.images_used, "mae": agg.images, "mae_binary": agg.images})
    report.images_used = agg.images_used
    if agg.images_used == 0 and agg.images:
        report.notes.append("no image is usable for the SOR (as the official code, SOR is NaN, reported as null)")


# ---------------------------------------------------------------------------------------------- API
def evaluate(
    gt: SORDataset | str | Path,
    pred: Mapping[str, RankedInstances] | Sequence[RankedInstances] | Any,
    protocol: str = "seqrank",
    *,
    split: str | None = None,
    metrics: Sequence[str] | None = None,
    coco_ap: bool = False,
    progress: bool = False,
    map_style: str = "assr",
    gt_maps: str | Path | None = None,
) -> EvaluationReport:
    """Score predictions under one of the field's evaluation protocols, exactly as its official code.

    Args:
        gt: a :class:`~salrank.structures.SORDataset`, or a path :func:`salrank.data.load_dataset` reads
            (any GT format of the field).
        pred: ``{image_id: RankedInstances}``, a list of :class:`RankedInstances` (matched on
            ``image_name``), a :class:`~salrank.io.rank_maps.RankMapFolder`, or a path
            :func:`salrank.io.load_predictions` reads (SeqRank/PoseSOR result ``.pth``, COCO results JSON,
            salrank JSON folder, folder of rank-map PNGs).
        protocol: ``"seqrank"`` (SeqRank/PoseSOR), ``"assr"`` (ASSR/PPA) or ``"irsr"`` (IRSR SA-SOR).
            Numbers of different protocols are not comparable.
        split: the split of a GT layout with several (ASSR, IRSR originals).
        metrics: report only these metrics of the protocol (default: all).
        coco_ap: also compute class-agnostic COCO segmentation AP/AR (``segm_*``).
        progress: show a progress bar.
        map_style: how the ``assr`` protocol draws instance predictions into rank maps (``"assr"``:
            PPA's 5 grey levels; ``"seqrank"``: SeqRank's ``linspace(1, 0.5, n)`` greys).
        gt_maps: ``assr``: folder of GT rank maps ``<id>.png`` for MAE (default: the dataset's
            ``gt/{split}`` folder when it is an ASSR layout, else drawn from the GT).

    Returns:
        An :class:`EvaluationReport`. GT images without a prediction are scored as images where
        nothing was predicted and listed in ``missing_predictions``; predictions for images that are
        not in the GT are listed in ``unknown_predictions`` (and logged) but not scored.

    Raises:
        InputError: unreadable inputs, unknown protocol or metric, a prediction whose size differs from
            its GT image.
    """
    if protocol not in PROTOCOLS:
        raise InputError(f"unknown protocol {protocol!r}; choose one of {', '.join(PROTOCOLS)}")
    if map_style not in MAP_STYLES:
        raise InputError(f"unknown map style {map_style!r}; choose one of {', '.join(MAP_STYLES)}")
    known = {"seqrank": SEQRANK_METRICS + JOINT_METRICS, "assr": ASSR_METRICS, "irsr": IRSR_METRICS}[protocol]
    if metrics is not None:
        bad = [m for m in metrics if m not in known]
        if bad:
            raise InputError(f"unknown {protocol} metric(s) {', '.join(bad)}; known: {', '.join(known)}")

    dataset, gt_path = _load_gt(gt, split)
    preds = _load_predictions(pred, dataset)
    from salrank import __version__

    report = EvaluationReport(
        protocol=protocol,
        metrics={},
        metrics_unrounded={},
        counts={},
        per_image={},
        images=len(dataset),
        gt=str(gt_path) if gt_path is not None else f"{dataset.name} (in memory)",
        pred=preds.name,
        split=dataset.split,
        version=__version__,
    )
    gt_ids = {img.image_id for img in dataset.images}
    report.missing_predictions = [img.image_id for img in dataset.images if img.image_id not in preds]
    report.unknown_predictions = [i for i in preds.ids() if i not in gt_ids]
    _warn_ids(
        "GT images have no prediction", report.missing_predictions, preds.name,
        "they are scored as images where nothing was predicted",
    )  # fmt: skip
    if preds.path is None:  # load_predictions already warned about the files it read
        _warn_ids(
            f"predicted images are not in the GT ({report.gt})", report.unknown_predictions, preds.name,
            "they are not scored (listed in the report under unknown_predictions)",
        )  # fmt: skip
    if not dataset.images:
        raise InputError("the ground truth has no image", report.gt)

    if protocol == "seqrank":
        _run_seqrank(dataset, preds, report, metrics, progress)
    elif protocol == "irsr":
        _run_irsr(dataset, preds, report, progress)
    else:
        _run_assr(dataset, preds, report, map_style, gt_path, gt_maps, progress)

    if metrics is not None:
        for d in (report.metrics, report.metrics_unrounded, report.counts):
            for k in [k for k in d if k not in metrics]:
                del d[k]
    if coco_ap:
        instances = {
            img.image_id: r for img in dataset.images if (r := preds.as_instances(img.image_id)) is not None
        }  # fmt: skip
        for name, value in coco_segm_metrics(dataset.images, instances).items():
            report.metrics[name] = value
            report.metrics_unrounded[name] = value
            report.counts[name] = len(dataset.images)
    return report
