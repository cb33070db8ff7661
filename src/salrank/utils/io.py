"""File input/output helpers: atomic writes, safe checkpoint loading and image reading.

* Every file salrank writes for the user goes through :func:`atomic_write` (temp file + ``os.replace``),
  so an interrupted run never leaves a half-written output or checkpoint behind.
* Pickled files from elsewhere (checkpoints, result files) are only loaded with
  ``torch.load(..., weights_only=True)`` through :func:`safe_torch_load`.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np

from salrank.errors import InputError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str], mode: str = "wb") -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path`` and move it over ``path`` only when the block succeeds."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        # mkstemp creates the file readable by its owner only; give it the mode a plain open() would
        os.chmod(tmp, 0o666 & ~_current_umask())
        with os.fdopen(fd, mode) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_json(path: str | os.PathLike[str], data: Any, indent: int | None = 2) -> None:
    """Write JSON atomically."""
    with atomic_write(path, "w") as fh:
        json.dump(data, fh, indent=indent)
        fh.write("\n")


def write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write bytes atomically."""
    with atomic_write(path, "wb") as fh:
        fh.write(data)


def read_json(path: str | os.PathLike[str]) -> Any:
    """Read a JSON file; a missing, truncated or malformed file is an :class:`InputError` naming it."""
    p = Path(path)
    if not p.is_file():
        raise InputError("file not found", p)
    try:
        with open(p, encoding="utf-8") as fh:
            return json.load(fh)
    except json.JSONDecodeError as exc:
        raise InputError(f"not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})", p) from None
    except UnicodeDecodeError:
        raise InputError("not a text (JSON) file", p) from None


def safe_torch_load(path: str | os.PathLike[str]) -> Any:
    """Load a ``torch.save`` file with ``weights_only=True`` (tensors, numbers, strings, containers only).

    Raises :class:`InputError` for a missing or truncated file, or one that holds arbitrary Python
    objects (which would need an unsafe unpickle).
    """
    import pickle

    import torch

    p = Path(path)
    if not p.is_file():
        raise InputError("file not found", p)
    try:
        return torch.load(p, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "unpickling failed"
        raise InputError(
            "refusing to load: the file holds objects that only an unsafe unpickle could restore "
            f"(weights_only=True). Detail: {first}",
            p,
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError) as exc:
        raise InputError(f"cannot read this file as a PyTorch file (truncated or not a torch.save file): {exc}", p) from None


class _HasTensors(Exception):
    """Raised by the plain-data unpickler when the file stores tensors (then torch.load takes over)."""


def load_torch_plain_data(path: str | os.PathLike[str], allowed: dict[tuple[str, str], Any]) -> Any:
    """Load a ``torch.save`` file that holds only plain data, with a restricted (C-speed) unpickler.

    ``torch.load(weights_only=True)`` runs a pure-Python unpickler, which takes seconds on a result file
    of a whole test set. A file of plain containers (the SeqRank/PoseSOR result files) does not need it:
    the standard library's ``pickle.Unpickler`` with ``find_class`` restricted to ``allowed``
    (``{(module, name): object}``) is the documented way to unpickle untrusted data safely, and it runs
    in C. A file that stores tensors, or is not a zip-format ``torch.save`` file, falls back to
    :func:`safe_torch_load`; a global outside ``allowed`` is refused like ``weights_only`` refuses it.
    """
    import pickle
    import zipfile

    p = Path(path)
    if not p.is_file():
        raise InputError("file not found", p)

    def _latin1_bytes(text: str, encoding: str = "latin1") -> bytes:
        # pickle protocol 2 stores bytes as _codecs.encode(text, "latin1"); nothing else is accepted
        if encoding not in ("latin1", "latin-1"):
            raise pickle.UnpicklingError(f"_codecs.encode with encoding {encoding!r} is not allowed")
        return text.encode("latin1")

    class _Restricted(pickle.Unpickler):
        def find_class(self, module: str, name: str) -> Any:
            if (module, name) == ("_codecs", "encode"):
                return _latin1_bytes
            if (module, name) in allowed:
                return allowed[(module, name)]
            if module.startswith("torch"):
                raise _HasTensors
            raise pickle.UnpicklingError(f"global {module}.{name} is not allowed")

        def persistent_load(self, pid: Any) -> Any:
            raise _HasTensors

    try:
        with zipfile.ZipFile(p) as zf:
            names = [n for n in zf.namelist() if n.endswith("/data.pkl") or n == "data.pkl"]
            if len(names) != 1:
                return safe_torch_load(p)
            with zf.open(names[0]) as fh:
                return _Restricted(io.BytesIO(fh.read())).load()
    except (zipfile.BadZipFile, _HasTensors):
        return safe_torch_load(p)
    except pickle.UnpicklingError as exc:
        raise InputError(f"refusing to load: {exc} (only plain data is accepted)", p) from None
    except (EOFError, ValueError, OSError) as exc:
        raise InputError(f"cannot read this file as a PyTorch file (truncated or not a torch.save file): {exc}", p) from None


def read_image(source: Any, exif: bool = True) -> np.ndarray:
    """Read an image as an ``(H, W, 3)`` RGB ``uint8`` array.

    ``source`` is a path, a PIL image or a numpy array (``(H, W)``, ``(H, W, 3)`` RGB or ``(H, W, 4)`` RGBA).
    EXIF orientation is honoured (unless ``exif=False``: training reads the stored pixel layout, which is
    what dataset annotations refer to), greyscale is expanded to RGB and alpha is composited on white.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    if isinstance(source, np.ndarray):
        arr = source
        if arr.dtype != np.uint8:
            if np.issubdtype(arr.dtype, np.floating) and arr.size and arr.max() <= 1.0:
                arr = (arr * 255.0).round()
            arr = np.clip(arr, 0, 255).astype(np.uint8)
        if arr.ndim == 2:
            arr = np.repeat(arr[:, :, None], 3, axis=2)
        elif arr.ndim == 3 and arr.shape[2] == 4:
            alpha = arr[:, :, 3:4].astype(np.float32) / 255.0
            arr = (arr[:, :, :3] * alpha + 255.0 * (1 - alpha)).round().astype(np.uint8)
        elif arr.ndim != 3 or arr.shape[2] != 3:
            raise InputError(f"an image array must be (H, W), (H, W, 3) or (H, W, 4); got shape {arr.shape}")
        return np.ascontiguousarray(arr)
    if isinstance(source, Image.Image):
        img = source
        path = None
    else:
        path = Path(source)
        if not path.is_file():
            raise InputError("image file not found", path)
        try:
            with open(path, "rb") as fh:
                data = fh.read()
            img = Image.open(io.BytesIO(data))
            img.load()
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
            reason = "unknown or unsupported image format" if isinstance(exc, UnidentifiedImageError) else str(exc)
            raise InputError(f"not a readable image ({reason})", path) from None
    try:
        if exif:
            img = ImageOps.exif_transpose(img)
    except Exception:  # a broken EXIF block must not make a good image unreadable
        pass
    if img.mode in ("RGBA", "LA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, rgba)
    return np.asarray(img.convert("RGB"), dtype=np.uint8).copy()


def list_images(inputs: list[str], recursive: bool = True) -> list[Path]:
    """Expand files, folders (recursively) and glob patterns into a sorted, de-duplicated image list."""
    import glob

    found: list[Path] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            pattern = "**/*" if recursive else "*"
            found.extend(q for q in sorted(p.glob(pattern)) if q.is_file() and q.suffix.lower() in IMAGE_EXTENSIONS)
        elif p.is_file():
            found.append(p)
        else:
            matches = sorted(glob.glob(item, recursive=True))
            if not matches:
                raise InputError("no such file, folder or matching glob", item)
            found.extend(Path(m) for m in matches if Path(m).is_file())
    seen: set[Path] = set()
    unique = []
    for f in found:
        key = f.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(f)
    return unique
