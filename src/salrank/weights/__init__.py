"""The model zoo and weight management shared by all models.

* :mod:`~salrank.weights.zoo`: :class:`ZooEntry` and the registry (:func:`get_entry`, :func:`list_entries`).
* :mod:`~salrank.weights.entries`: the released SeqRank, PoseSOR and PPA checkpoints and the pretrained
  backbones, with links, configs and published numbers.
* :mod:`~salrank.weights.store`: where weights live (``$SALRANK_HOME/weights``), :func:`fetch_weights`,
  :func:`import_file`, :func:`resolve_weights`.
* :mod:`~salrank.weights.download`: HTTP and Google Drive downloads.
* :mod:`~salrank.weights.verify`: structural verification of a checkpoint against its entry.

Model code gets its weights with ``path, entry = resolve_weights("seqrank-assr")`` (or a file path).
"""

from salrank.weights.download import DownloadError, download_url, google_drive_id
from salrank.weights.store import (
    FetchError,
    fetch_weights,
    find_weights,
    import_file,
    installed_path,
    manual_instructions,
    resolve_weights,
    salrank_home,
    target_path,
    verify_installed,
    weights_dir,
)
from salrank.weights.verify import VerifyReport, identify, identify_file, verify_file
from salrank.weights.zoo import ZooEntry, get_entry, has_entry, list_entries, register_entry

__all__ = [
    "DownloadError",
    "FetchError",
    "VerifyReport",
    "ZooEntry",
    "download_url",
    "fetch_weights",
    "find_weights",
    "get_entry",
    "google_drive_id",
    "has_entry",
    "identify",
    "identify_file",
    "import_file",
    "installed_path",
    "list_entries",
    "manual_instructions",
    "register_entry",
    "resolve_weights",
    "salrank_home",
    "target_path",
    "verify_file",
    "verify_installed",
    "weights_dir",
]
