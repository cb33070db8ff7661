"""Grey-level rank maps: one PNG per image, brighter = more salient, 0 = background.

Two conventions are in use, and :func:`render_rank_map` draws both:

``assr`` (ASSR GT maps, the ASSR evaluation, PPA)
    At most 5 ranked objects, grey 255 / 229 / 204 / 178 / 153 for ranks 1-5 (the ASSR GT values, i.e.
    ``int(255 * v)`` for ``v`` = 1.0, 0.9, ..., 0.6, also the constants of ASSR's
    ``generate_saliency_map.py``). Objects are painted in descending mask-area order, so smaller objects
    end up on top where they overlap, as PPA's ``SORVisualizer`` does (``np.argsort(-areas)``; with at
    most 5 objects numpy's sort is stable, so equal areas keep rank order, and so do we).
    PPA itself draws through detectron2/matplotlib, which differs in three ways we do not copy: the
    fill greys come out as 255/230/204/179/153 (Agg rounds 0.9*255 and 0.7*255 up; checked with
    matplotlib 3.11), every object gets a dark ~1 px anti-aliased outline (detectron2 darkens the
    edge colour when alpha > 0.8), and edges are anti-aliased. Neither changes which grey covers most
    of an object, so the ``assr`` protocol's SOR is unaffected except at the 50 %-coverage boundary;
    the graded MAE changes slightly.

``seqrank`` (SeqRank/PoseSOR ``TEST.EVAL_SAVE``)
    Every instance, grey ``uint8(linspace(1.0, 0.5, n) * 255)`` by rank in float64 with truncation
    (``astype(np.uint8)``, as the official code does: 255, 229, ... for n = 6), painted from the last
    rank to the first so rank 1 ends up on top. The official files are named ``<image>_count_<n>.png``.

Reading: :class:`RankMapFolder` reads channel 0 of ``cv2.imread(path)`` (the blue channel of a colour
PNG, the grey value of a grey one), exactly what the ASSR evaluation reads, and splits maps into
instances like PoseSOR's ``misc/evaluate_map.py`` (:func:`rank_map_to_instances`).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from salrank.errors import InputError
from salrank.structures import RankedInstances

logger = logging.getLogger(__name__)

ASSR_GREY_LEVELS = (255, 229, 204, 178, 153)
"""Grey values of ranks 1-5 in the ASSR convention."""

RANK_MAP_STYLES = ("assr", "seqrank")

_COUNT_SUFFIX = re.compile(r"^(?P<stem>.+)_count_\d+$")


def encode_png(image: np.ndarray) -> bytes:
    """PNG bytes of a ``uint8`` ``(H, W)`` or ``(H, W, 3)`` (BGR) array."""
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(image))
    if not ok:  # pragma: no cover - cv2 only fails on invalid arrays
        raise ValueError("could not encode the array as PNG")
    return buf.tobytes()


def render_rank_map(result: RankedInstances, style: str = "assr", max_ranks: int | None = None) -> np.ndarray:
    """Draw a grey rank map (``uint8`` ``(H, W)``) of a prediction.

    Args:
        result: instances in rank order.
        style: ``"assr"`` (top 5, 255/229/204/178/153, painted by descending area) or ``"seqrank"``
            (all instances, ``uint8(linspace(1, 0.5, n) * 255)``, rank 1 on top); see the module docstring.
        max_ranks: draw only the first ``max_ranks`` instances (for ``assr`` at most 5, the default).
    """
    if style not in RANK_MAP_STYLES:
        raise ValueError(f"unknown rank-map style {style!r}; choose one of {', '.join(RANK_MAP_STYLES)}")
    n = len(result)
    canvas_shape = (result.height, result.width)
    if style == "assr":
        k = min(n, len(ASSR_GREY_LEVELS) if max_ranks is None else max_ranks)
        if k > len(ASSR_GREY_LEVELS):
            raise ValueError(f"the assr style has grey levels for {len(ASSR_GREY_LEVELS)} ranks, not {k}")
        out = np.zeros(canvas_shape, np.uint8)
        masks = result.masks[:k]
        areas = masks.reshape(k, -1).sum(axis=1)
        for i in np.argsort(-areas, kind="stable"):
            out[masks[i]] = ASSR_GREY_LEVELS[i]
        return out
    k = n if max_ranks is None else min(n, max_ranks)
    levels = np.linspace(1.0, 0.5, k)
    canvas = np.zeros(canvas_shape, np.float64)
    for i in range(k - 1, -1, -1):
        canvas[result.masks[i]] = levels[i]
    return (canvas * 255).astype(np.uint8)


def rank_map_to_instances(rank_map: np.ndarray, image_name: str) -> RankedInstances:
    """Split a grey rank map into instances: one per distinct non-zero grey value, brightest first.

    This is how PoseSOR's ``misc/evaluate_map.py`` evaluates maps, with one difference: the official
    code drops the *darkest* value (``np.unique(m)[::-1][0:-1]``), which is the background only when the
    map has a zero pixel; we always drop exactly 0. ``saliency`` is the grey value / 255 (brighter =
    more salient), ``scores`` are 1, boxes are the masks' boxes. A colour map ``(H, W, 3)`` (RGB) is
    converted to luma first, like PIL's ``convert("L")``.
    """
    arr = np.asarray(rank_map)
    if arr.ndim == 3 and arr.shape[2] in (3, 4):
        rgb = arr[:, :, :3].astype(np.float64)
        # ITU-R 601-2 luma with PIL's fixed-point rounding
        arr = ((rgb[:, :, 0] * 19595 + rgb[:, :, 1] * 38470 + rgb[:, :, 2] * 7471 + 0x8000) // 65536).astype(np.uint8)
    if arr.ndim != 2:
        raise ValueError(f"a rank map must be (H, W) or (H, W, 3); got shape {arr.shape}")
    levels = np.unique(arr)[::-1]
    levels = levels[levels != 0]
    h, w = arr.shape
    masks = np.stack([arr == v for v in levels]) if len(levels) else np.zeros((0, h, w), bool)
    result = RankedInstances.from_masks(
        masks,
        image_name=image_name,
        height=h,
        width=w,
        saliency=np.asarray(levels, np.float32) / 255.0,
    )
    result.extras["grey_levels"] = [int(v) for v in levels]
    return result


def image_id_of_map(path: Path) -> str:
    """``<id>.png`` and SeqRank's ``<id>_count_<n>.png`` both name image ``<id>``."""
    m = _COUNT_SUFFIX.match(path.stem)
    return m.group("stem") if m else path.stem


def read_rank_map_file(path: Path) -> np.ndarray:
    """Channel 0 of ``cv2.imread(path)`` (``uint8`` ``(H, W)``); :class:`InputError` when unreadable."""
    try:
        data = np.fromfile(str(path), dtype=np.uint8)
    except OSError as exc:
        raise InputError(f"cannot read the rank map ({exc})", path) from None
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if image is None:
        raise InputError("not a readable image (truncated or not a PNG)", path)
    return np.ascontiguousarray(image[:, :, 0])


class RankMapFolder:
    """A folder of grey rank maps named after the images (``<id>.png`` or ``<id>_count_<n>.png``).

    Maps are read lazily. Keys are image ids.
    """

    def __init__(self, root: str | Path, files: dict[str, Path] | None = None) -> None:
        self.root = Path(root)
        if files is None:
            if not self.root.is_dir():
                raise InputError("rank-map folder not found", self.root)
            files = {}
            for p in sorted(self.root.iterdir()):
                if not (p.is_file() and p.suffix.lower() == ".png"):
                    continue
                image_id = image_id_of_map(p)
                if image_id in files:
                    raise InputError(f"two rank maps for image {image_id}: {files[image_id].name} and {p.name}", self.root, image_id)
                files[image_id] = p
        self.files: dict[str, Path] = files

    def __len__(self) -> int:
        return len(self.files)

    def __contains__(self, image_id: object) -> bool:
        return image_id in self.files

    def __iter__(self) -> Iterator[str]:
        return iter(self.files)

    def keys(self) -> list[str]:
        return list(self.files)

    def path(self, image_id: str) -> Path:
        if image_id not in self.files:
            raise InputError("no rank map for this image", self.root, image_id)
        return self.files[image_id]

    def read(self, image_id: str) -> np.ndarray:
        """The map of ``image_id`` as the ASSR evaluation reads it: ``cv2.imread(path)[:, :, 0]``."""
        return read_rank_map_file(self.path(image_id))

    def to_instances(self, image_id: str) -> RankedInstances:
        """The map split into instances as PoseSOR's ``misc/evaluate_map.py`` does (see
        :func:`rank_map_to_instances`); the map is read as ``Image.open(path).convert("L")``."""
        from PIL import Image, UnidentifiedImageError

        path = self.path(image_id)
        try:
            with Image.open(path) as img:
                grey = np.asarray(img.convert("L"))
        except (OSError, UnidentifiedImageError, ValueError, SyntaxError) as exc:
            raise InputError(f"not a readable image ({exc})", path, image_id) from None
        return rank_map_to_instances(grey, image_id)

    def __repr__(self) -> str:
        return f"RankMapFolder({str(self.root)!r}, {len(self)} maps)"


def save_rank_maps(preds: dict[str, RankedInstances], folder: str | Path, style: str = "assr", *, overwrite: bool = False) -> list[Path]:
    """Write ``<id>.png`` rank maps of predictions into ``folder`` (atomic writes; see :func:`render_rank_map`)."""
    from salrank.utils.io import write_bytes

    out = Path(folder)
    targets = {name: out / f"{name}.png" for name in preds}
    if not overwrite:
        existing = [p for p in targets.values() if p.exists()]
        if existing:
            raise InputError(f"refusing to overwrite {len(existing)} existing rank maps (e.g. {existing[0].name}); pass overwrite=True", out)
    for name, result in preds.items():
        write_bytes(targets[name], encode_png(render_rank_map(result, style)))
    return list(targets.values())
