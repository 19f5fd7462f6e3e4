"""`weft check [--pre] [--proxy] [-n NS]`: is Weft installed and working? One line per
check, a hint under each failure, and an exit code that says whether all passed."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from rich.console import Group
from rich.padding import Padding
from rich.text import Text

from weft_cli import output
from weft_cli.check.model import Result, Status, all_passed
from weft_cli.options import add_kube_options, add_output_option, add_weft_namespace_option

INDENT = 4
MARKS = {Status.PASS: ("✔", "green"), Status.WARN: ("‼", "yellow"), Status.FAIL: ("✘", "red")}


def register(topics: Any) -> None:
    parser = topics.add_parser(
        "check",
        help="check that Weft is installed and working",
        description="Checks the cluster, Weft's CRDs, operator, webhooks, identity and the "
        "convergence of its resources; exits with 1 if any check fails.",
    )
    parser.add_argument("--pre", action="store_true", help="before installing: can Weft go in?")
    parser.add_argument("--proxy", action="store_true", help="also check the meshed pods' proxies")
    parser.add_argument(
        "-n", "--namespace", help="limit the resource and proxy checks to this namespace"
    )
    add_output_option(parser)
    add_weft_namespace_option(parser)
    add_kube_options(parser)
    parser.set_defaults(run=run)


def result_lines(result: Result, terminal: bool = False) -> Group:
    """`✔ title: detail`, or for a problem the detail and hint indented below it
    (on a terminal, wrapped lines keep the indent; piped, lines are never cut)."""
    mark, color = MARKS[result.outcome.status]
    outcome = result.outcome
    title = Text.assemble((f"{mark} ", color), (result.title, color))
    if outcome.status is Status.PASS:
        if outcome.detail:
            title.append(f": {outcome.detail}", style="dim")
        return Group(title)
    below = [Text(outcome.detail)] if outcome.detail else []
    if outcome.hint:
        below.append(Text(f"hint: {outcome.hint}", style="cyan"))
    if terminal:
        return Group(title, *(Padding(text, (0, 0, 0, INDENT)) for text in below))
    return Group(title, *(Text(" " * INDENT) + text for text in below))


def summary(results: list[Result]) -> Text:
    failures = sum(r.outcome.status is Status.FAIL for r in results)
    warnings = sum(r.outcome.status is Status.WARN for r in results)
    if failures:
        return Text(f"\n{failures} of {len(results)} checks failed", style="bold red")
    noted = f" ({warnings} with warnings)" if warnings else ""
    return Text(f"\nall {len(results)} checks passed{noted}", style="bold green")


async def _check(args: argparse.Namespace) -> list[Result]:
    # The Kubernetes client loads when a check runs, not for `--help`.
    from weft_cli.check.gather import CheckRequest, run_checks
    from weft_cli.kube import Kube, KubeOptions

    request = CheckRequest(args.weft_namespace, args.namespace, args.pre, args.proxy)
    console = output.stdout()
    results: list[Result] = []
    async with await Kube.connect(KubeOptions.of(args)) as kube:
        async for result in run_checks(kube, request):
            if args.output == output.TABLE:
                if not results or results[-1].category != result.category:
                    heading = "" if not results else "\n"
                    console.print(Text(f"{heading}{result.category}", style="bold"))
                console.print(result_lines(result, output.on_terminal()))
            results.append(result)
    return results


def run(args: argparse.Namespace) -> int:
    results = asyncio.run(_check(args))
    if args.output == output.TABLE:
        output.stdout().print(summary(results))
    else:
        checks = [
            {
                "category": r.category,
                "check": r.title,
                "status": r.outcome.status.value,
                "detail": r.outcome.detail,
                "hint": r.outcome.hint,
            }
            for r in results
        ]
        output.print_data({"passed": all_passed(results), "checks": checks}, args.output)
    return 0 if all_passed(results) else 1
