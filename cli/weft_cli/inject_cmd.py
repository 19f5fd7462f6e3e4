"""`weft inject FILE|-`: add the proxy to workload manifests offline, for GitOps.

Reads YAML (one or many documents, Lists too), writes the injected YAML to stdout and
a line per workload to stderr. Comments and key order beyond YAML's are not kept.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console

from weft_webhooks.injection.arguments import add_injector_arguments, injector_settings
from weft_webhooks.injection.decision import Outcome
from weft_webhooks.injection.manifests import Report, inject_manifests


def register(topics: Any) -> None:
    parser = topics.add_parser("inject", help="add the Weft proxy to workload manifests")
    parser.add_argument("file", help="a YAML file, or - for stdin")
    add_injector_arguments(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    err = Console(stderr=True, highlight=False)
    try:
        text = sys.stdin.read() if args.file == "-" else Path(args.file).read_text()
        documents = [doc for doc in yaml.safe_load_all(text) if doc is not None]
    except (OSError, yaml.YAMLError) as exc:
        err.print(f"[red]error:[/] cannot read {args.file}: {exc}")
        return 1
    injected, reports = inject_manifests(documents, injector_settings(args))
    sys.stdout.write(yaml.safe_dump_all(injected, sort_keys=False, explicit_start=True))
    for report in reports:
        err.print(_describe(report))
    return 0


def _describe(report: Report) -> str:
    injected = report.outcome is Outcome.INJECTED
    mark = "[green]injected[/]" if injected else f"skipped ({report.outcome})"
    lines = [f"{report.kind.lower()}/{report.name}: {mark}"]
    lines += [f"  [yellow]warning:[/] {warning}" for warning in report.warnings]
    return "\n".join(lines)
