"""The `loopweave` command: one subcommand per module, each registering its own parser.

    loopweave show kernel.lw [--stage ir|schedule|loops|source] [--target cpu]

Each module of SUBCOMMANDS defines `register(subparsers)`, which adds its parser(s) and sets
`handler=` (a function args -> exit status) as a default.
"""

from __future__ import annotations

import argparse
import sys

from loopweave import emit
from loopweave.autotune import cli as tune_cli
from loopweave.driver import stages
from loopweave.errors import LoopweaveError


def register(subparsers) -> None:
    show = subparsers.add_parser("show", help="print a stage of the compilation of a kernel")
    show.add_argument("file", help="DSL source file")
    show.add_argument("--kernel", help="which kernel of the file (when it defines several)")
    show.add_argument("--target", default="cpu")
    show.add_argument("--stage", default="source", choices=("ir", "schedule", "loops", "source"))
    show.set_defaults(handler=_show)


def _show(args) -> int:
    with open(args.file, encoding="utf-8") as f:
        result = stages(f.read(), args.target, kernel=args.kernel)
    print(dict(result.dumps).get(args.stage, ""))
    return 0


SUBCOMMANDS = (sys.modules[__name__], emit, tune_cli)  # show; emit; tune and db


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `loopweave` command."""
    parser = argparse.ArgumentParser(prog="loopweave", description=__doc__.splitlines()[0])
    subparsers = parser.add_subparsers(dest="command", required=True)
    for module in SUBCOMMANDS:
        module.register(subparsers)
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except LoopweaveError as e:
        print(f"loopweave {args.command}: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"loopweave {args.command}: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
