"""Errors that salrank raises for user mistakes.

Every error a person can cause (a wrong path, a truncated file, a mask of the wrong size) is an
:class:`InputError`. It names the file and, where there is one, the image and the annotation, so the
command line can print one readable line instead of a traceback.
"""

from __future__ import annotations

from os import PathLike


class SalrankError(Exception):
    """Base class of every error salrank raises on purpose."""


class InputError(SalrankError):
    """Bad user input: a file that is missing, unreadable, of an unknown format or inconsistent.

    Args:
        message: what is wrong, in words a user understands.
        path: the file (or folder) the problem is in.
        image: the image id or name the problem concerns, if any.
        item: a finer location inside the image (an annotation id, an instance index), if any.
    """

    def __init__(
        self,
        message: str,
        path: str | PathLike[str] | None = None,
        image: str | int | None = None,
        item: str | int | None = None,
    ) -> None:
        self.message = message
        self.path = None if path is None else str(path)
        self.image = image
        self.item = item
        super().__init__(self.__str__())

    def __str__(self) -> str:
        where = []
        if self.path is not None:
            where.append(self.path)
        if self.image is not None:
            where.append(f"image {self.image}")
        if self.item is not None:
            where.append(str(self.item))
        prefix = ": ".join(where)
        return f"{prefix}: {self.message}" if prefix else self.message


class CheckpointError(InputError):
    """A checkpoint that cannot be loaded into the requested model (wrong model, wrong variant, bad keys)."""


class WeightsNotFoundError(SalrankError):
    """Weights of a model-zoo entry are not installed and cannot be downloaded here."""
