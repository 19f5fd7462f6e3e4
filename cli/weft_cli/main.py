"""Entry point of the `weft` command: one sub-command module per topic."""

from __future__ import annotations

import argparse
import os
import sys

from rich.console import Console
from rich.markup import escape

from weft_cli import (
    check_cmd,
    cluster_cmd,
    demo_cmd,
    edges_cmd,
    inject_cmd,
    install_cmd,
    routes_cmd,
    stat_cmd,
    tap_cmd,
    top_cmd,
    viz_cmd,
)
from weft_cli.errors import CliError

DEBUG_ENV = "WEFT_DEBUG"  # set it to see the traceback of an unexpected error


def one_line(message: str) -> str:
    """A message as one line of text, safe from rich's markup (API errors hold newlines
    and brackets)."""
    return escape(" ".join(message.split()))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="weft", description="Weft: a light service mesh.")
    topics = parser.add_subparsers(dest="topic", required=True, metavar="COMMAND")
    cluster_cmd.register(topics)
    demo_cmd.register(topics)
    inject_cmd.register(topics)
    install_cmd.register(topics)
    check_cmd.register(topics)
    stat_cmd.register(topics)
    routes_cmd.register(topics)
    edges_cmd.register(topics)
    top_cmd.register(topics)
    tap_cmd.register(topics)
    viz_cmd.register(topics)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    err = Console(stderr=True, highlight=False, soft_wrap=True)  # one line, never wrapped
    try:
        code: int = args.run(args)
    except KeyboardInterrupt:
        err.print("interrupted")
        code = 130
    except CliError as error:
        err.print(f"[red]error:[/] {one_line(str(error))}")
        code = 1
    except Exception as error:  # a bug: still one line, unless asked for the traceback
        if os.environ.get(DEBUG_ENV):
            raise
        what = one_line(f"{type(error).__name__}: {error}")
        err.print(f"[red]error:[/] {what} (set {DEBUG_ENV}=1 to see where)")
        code = 1
    sys.exit(code)
