"""``salrank data convert``: read a dataset in one format and write it in another."""

from __future__ import annotations

from pathlib import Path

from salrank.data.formats import Reporter, WriteResult, read_dataset, write_dataset
from salrank.errors import InputError


def convert_dataset(
    src: str | Path,
    dst: str | Path,
    to: str,
    *,
    split: str | None = None,
    src_format: str | None = None,
    overwrite: bool = False,
    images: str = "none",
) -> WriteResult:
    """Convert the dataset at ``src`` to the format ``to`` at ``dst``.

    ``dst`` must not exist (a file, or a folder that is not empty) unless ``overwrite`` is set; with it,
    the files the conversion writes are replaced and nothing else in ``dst`` is touched. Returns the
    files written and the notes on what the target format could not keep.
    """
    dst = Path(dst)
    if not overwrite and dst.exists() and (dst.is_file() or any(dst.iterdir())):
        raise InputError("the destination exists; choose a new path or pass --overwrite", dst)
    dataset = read_dataset(src, split, src_format, Reporter(collect=False))
    return write_dataset(dataset, dst, to, split=split or dataset.split, overwrite=True, images=images)
