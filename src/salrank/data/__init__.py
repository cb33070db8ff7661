"""Ground-truth datasets of Salient Object Ranking: read, write, convert and check them.

Every format of the field is read into one representation, :class:`~salrank.structures.SORDataset`
(images, each with its salient objects in attention order):

========== ==================================================================================
format     what it is
========== ==================================================================================
posesor    PoseSOR's COCO-style JSON (``category_id`` = visiting order, 17 keypoints)
seqrank    SeqRank's ``{"data": [...]}`` JSON (``category_id``: larger = more salient)
assr       the original ASSR folder (``obj_seg_data_{split}.json``, ``rank_order/``, ``gt/``)
irsr       the original IRSR folder (``Annotations/{split}.pkl``), unpickled safely
========== ==================================================================================

>>> from salrank.data import load_dataset
>>> ds = load_dataset("datasets/assr/assr_test.json")        # doctest: +SKIP
>>> ds[0].image_id, [inst.rank for inst in ds[0].instances]   # doctest: +SKIP
"""

from __future__ import annotations

import logging
from pathlib import Path

from salrank.data.check import CheckReport, DatasetSummary, check_dataset
from salrank.data.convert import convert_dataset
from salrank.data.formats import DATASET_FORMATS, Reporter, read_dataset, write_dataset
from salrank.structures import SORDataset

__all__ = [
    "DATASET_FORMATS",
    "CheckReport",
    "DatasetSummary",
    "check_dataset",
    "convert_dataset",
    "load_dataset",
    "save_dataset",
]

logger = logging.getLogger(__name__)


def load_dataset(path: str | Path, split: str | None = None, format: str | None = None) -> SORDataset:
    """Read a ground-truth dataset in any of :data:`DATASET_FORMATS`.

    Args:
        path: a PoseSOR or SeqRank JSON file (or a folder of ``<name>_<split>.json`` files), an ASSR root
            folder (``obj_seg_data_{split}.json``, ``rank_order/``, ``gt/``, ``images/``,
            ``{split}_images.txt``) or one of its ``obj_seg_data`` files, an IRSR root folder
            (``Annotations/{split}.pkl``, ``Images/{split}/rgb``) or the ``.pkl`` itself.
        split: the split to read from layouts with several (an error lists them when it is missing
            and ambiguous, or wrong).
        format: skip auto-detection and read this format.

    Returns:
        The dataset; ``image_root`` is set when the image folder exists.

    Raises:
        InputError: unreadable or inconsistent files, naming the file, the image and the problem.
            Problems that leave the data usable are logged as warnings instead (``salrank data
            check`` lists them all).
    """
    return read_dataset(path, split, format, Reporter(collect=False))


def save_dataset(
    dataset: SORDataset,
    path: str | Path,
    format: str,
    *,
    split: str | None = None,
    overwrite: bool = False,
    images: str = "none",
) -> None:
    """Write ``dataset`` in ``format`` (one of :data:`DATASET_FORMATS`); every file is written atomically.

    ``path`` is the JSON file (or a folder for ``<name>_<split>.json``) for ``posesor``/``seqrank`` and the
    root folder for ``assr``/``irsr``. ``split`` defaults to the dataset's. Existing files are replaced
    only with ``overwrite=True``. ``images="copy"``/``"link"`` also puts the image files where the layout
    expects them. What the target format cannot express is logged as a warning (see
    ``docs/readme/data.md``, "What conversions lose").
    """
    result = write_dataset(dataset, path, format, split=split, overwrite=overwrite, images=images)
    for note in result.notes:
        logger.warning("%s: %s", path, note)
