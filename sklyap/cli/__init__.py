"""The command line: ``python -m sklyap`` and the ``sklyap`` console script.

One module per command: ``demo`` and ``study`` (the AeLLE study), ``sweep``
(early selection on recorded populations), ``spectra`` (checkpoints) and
``cache``. The study and the sweep are the project's experiments
(:mod:`sklyap.study`), imported only when their commands run.
"""

import argparse
import sys

from .. import __version__
from . import cache, spectra, study, sweep
from ._options import UsageError

__all__ = ["UsageError", "build_parser", "main"]


def build_parser():
    """The parser of every command."""
    parser = argparse.ArgumentParser(
        prog="python -m sklyap" if sys.argv[0].endswith("__main__.py") else "sklyap",
        description="Lyapunov spectra of trained recurrent networks.",
    )
    parser.add_argument("--version", action="version", version=f"sklyap {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in (study, sweep, spectra, cache):
        command.register(commands)
    return parser


def main(argv=None):
    """Run the command line ``argv`` (default ``sys.argv[1:]``); return the exit status.

    Usage errors (:class:`UsageError`, and argparse's own) exit with status 2
    and the command's usage line; any other error propagates with its traceback.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return args.func(args)
    except UsageError as exc:
        # The command's own parser, so that the usage line shown is the command's.
        getattr(args, "command_parser", parser).error(str(exc))
