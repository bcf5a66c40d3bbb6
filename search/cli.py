"""``gansearch``: one command, a subcommand per job.

Each subcommand lives in ``search/commands/<name>.py`` and exports ``add_parser(subparsers)``
and ``run(args) -> int``. Bad input raises GansearchError, printed here as one line, exit 2.
Command modules import only light modules at the top (no torch, Ray or Optuna): building the
parser for ``--help`` must not cost seconds; ``run`` imports what the job needs.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import sys
from typing import NoReturn

from gan_core.errors import GansearchError
from search.help_format import HelpFormatter

COMMANDS = ("train", "sample", "score", "classifier", "search", "resume", "review", "retrain", "explore")

class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, exit 2, as for every other bad input
        self.print_usage(sys.stderr)
        self.exit(2, f"gansearch: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="gansearch",
        description="Find good GANs by distributed hyperparameter search.",
        formatter_class=HelpFormatter,
        epilog="example:\n  gansearch train --preset mnist-dcgan --out runs/dcgan --steps 500",
    )
    from search import __version__

    parser.add_argument("--version", action="version", version=f"gansearch {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for name in COMMANDS:
        importlib.import_module(f"search.commands.{name}").add_parser(sub)
    return parser


# The machine's faults rather than the user's: no space, a quota, a file-size limit, a failing disk.
ENVIRONMENT_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO, errno.ENOMEM)


def os_error_line(exc: OSError) -> str:
    """``PATH: reason`` for an OSError (the destination of a rename, else the file it names)."""
    reason = exc.strerror or str(exc)
    reason = reason[:1].lower() + reason[1:]
    path = exc.filename2 if exc.filename2 is not None else exc.filename
    if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        reason += " (files written before are unchanged)"
    return f"{path}: {reason}" if path is not None else reason


def _out_of_memory(exc: BaseException) -> bool:
    text = str(exc)
    return (isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError"
            or "can't allocate memory" in text or "out of memory" in text.lower())


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except GansearchError as exc:
        print(f"gansearch: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a path the user gave (exit 2) or the machine's fault, e.g. a full disk (exit 1)
        print(f"gansearch: error: {os_error_line(exc)}", file=sys.stderr)
        return 1 if exc.errno in ENVIRONMENT_ERRNOS else 2
    except (MemoryError, RuntimeError) as exc:
        if not _out_of_memory(exc):
            raise
        first = next((ln.strip() for ln in str(exc).splitlines() if ln.strip()), type(exc).__name__)
        print(f"gansearch: error: out of memory ({first[:160]}); a smaller train.batch_size, eval.n or --n "
              "fits", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("gansearch: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
