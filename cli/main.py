"""`groupsense`: analyse recorded sessions and score the engine on labelled speech."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from engine import __version__

EXIT_OK, EXIT_INPUT, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 3


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="groupsense",
        description="Engagement signals from the audio of online group sessions.",
    )
    parser.add_argument("--version", action="version", version=f"groupsense {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    from cli import analyze, bench, demo, evaluate, replay, report, serve, token, watch

    for module in (demo, analyze, serve, replay, watch, report, token, evaluate, bench):
        module.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.run(args)
    except KeyboardInterrupt:
        print("groupsense: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return EXIT_OK
    except Exception as exc:
        if os.environ.get("GROUPSENSE_DEBUG"):
            raise
        print(
            f"groupsense: internal error: {type(exc).__name__}: {exc} "
            "(set GROUPSENSE_DEBUG=1 for a traceback)",
            file=sys.stderr,
        )
        return EXIT_INTERNAL
    return code


if __name__ == "__main__":
    sys.exit(main())
