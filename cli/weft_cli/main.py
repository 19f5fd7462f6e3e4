"""Entry point of the `weft` command: one sub-command module per topic."""

from __future__ import annotations

import argparse
import sys

from rich.console import Console

from weft_cli import cluster_cmd, demo_cmd, inject_cmd


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="weft", description="Weft: a light service mesh.")
    topics = parser.add_subparsers(dest="topic", required=True, metavar="COMMAND")
    cluster_cmd.register(topics)
    demo_cmd.register(topics)
    inject_cmd.register(topics)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    err = Console(stderr=True)
    try:
        code: int = args.run(args)
    except KeyboardInterrupt:
        err.print("interrupted")
        code = 130
    sys.exit(code)
