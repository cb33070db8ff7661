"""The ``salrank`` command line.

Each subcommand is one module of this package that defines ``COMMAND`` (its name), ``HELP`` (one
line), ``ORDER`` (its place in ``salrank --help``), ``add_arguments(parser)`` and ``run(args) -> int``.
Modules are discovered, so adding a command means adding a file. Heavy imports (torch, models) happen
inside ``run`` so that ``salrank --help`` is instant.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import sys
from collections.abc import Sequence
from types import ModuleType

from salrank.errors import InputError, SalrankError, WeightsNotFoundError

DESCRIPTION = """\
salrank: Salient Object Ranking without detectron2.

Find the salient objects in a photo and rank them in the order a person's attention shifts to them,
with the PPA, SeqRank and PoseSOR models (official checkpoints), a built-in training-free default,
and exact evaluation under the field's three protocols.
"""

EPILOG = """\
Run 'salrank COMMAND --help' for the options of a command.
Examples:
  salrank predict photo.jpg --out results/          rank the objects of a photo
  salrank eval --protocol seqrank --gt test.json --pred results.pth
  salrank data check path/to/dataset
"""


def _command_modules() -> list[ModuleType]:
    import salrank.cli as pkg

    modules = []
    for info in pkgutil.iter_modules(pkg.__path__):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"salrank.cli.{info.name}")
        if hasattr(module, "COMMAND") and hasattr(module, "run"):
            modules.append(module)
    return sorted(modules, key=lambda m: (getattr(m, "ORDER", 100), m.COMMAND))


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser (used by ``main`` and by the help tests)."""
    from salrank import __version__

    parser = argparse.ArgumentParser(
        prog="salrank", description=DESCRIPTION, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"salrank {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    for module in _command_modules():
        p = sub.add_parser(
            module.COMMAND,
            help=module.HELP,
            description=getattr(module, "DESCRIPTION", module.HELP),
            epilog=getattr(module, "EPILOG", None),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def _setup_logging(verbose: int, quiet: bool) -> None:
    level = logging.WARNING if quiet else (logging.DEBUG if verbose > 1 else logging.INFO)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s" if verbose else "%(message)s")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``salrank`` console script; returns the exit code."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:
        # KEY=VALUE overrides may come after options ("salrank train CFG --resume solver.max_iter=10"),
        # which argparse does not collect into a positional list it has already closed.
        if isinstance(getattr(args, "overrides", None), list) and all("=" in x and not x.startswith("-") for x in extra):
            args.overrides.extend(extra)
        else:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if not getattr(args, "_run", None):
        parser.print_help()
        return 0
    _setup_logging(args.verbose, args.quiet)
    try:
        return int(args._run(args) or 0)
    except (InputError, WeightsNotFoundError, SalrankError) as exc:
        print(f"salrank {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
