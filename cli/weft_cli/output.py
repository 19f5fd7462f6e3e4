"""How commands print: rich tables on a terminal, plain columns when piped (for grep,
awk and diffs), or JSON / YAML with `-o` for scripts."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Literal

import yaml
from rich import box
from rich.console import Console
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

TABLE, JSON, YAML = "table", "json", "yaml"
FORMATS = (TABLE, JSON, YAML)
COLUMN_GAP = "   "
UNLIMITED = 10_000  # characters: to measure a table's natural width


def on_terminal() -> bool:
    return sys.stdout.isatty()


def stdout() -> Console:
    # highlight=False: rich would color numbers and paths on its own.
    return Console(highlight=False, soft_wrap=not on_terminal())


def stderr() -> Console:
    return Console(stderr=True, highlight=False, soft_wrap=True)


def plain_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Columns padded to their widest cell, kubectl style; no trailing spaces."""
    widths = [len(header) for header in headers]
    for row in rows:
        widths = [max(width, len(cell)) for width, cell in zip(widths, row, strict=True)]
    lines = []
    for row in (headers, *rows):
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=True)]
        lines.append(COLUMN_GAP.join(cells).rstrip())
    return "\n".join(lines) + "\n"


def rich_table(
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    right_aligned: Sequence[str] = (),
    caption: str | None = None,
) -> Table:
    table = Table(box=box.SIMPLE_HEAD, header_style="bold", pad_edge=False, caption=caption)
    for header in headers:
        justify: Literal["left", "right"] = "right" if header in right_aligned else "left"
        table.add_column(header, justify=justify, no_wrap=True)
    for row in rows:
        table.add_row(*row)
    return table


def print_table(
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    right_aligned: Sequence[str] = (),
    empty: str = "nothing to show",
) -> None:
    if not rows:
        stderr().print(empty)
        return
    if not on_terminal():
        sys.stdout.write(plain_table(headers, rows))
        return
    table = rich_table(headers, rows, right_aligned)
    console = stdout()
    needed = Measurement.get(console, console.options.update(max_width=UNLIMITED), table).maximum
    if needed > console.width:  # as kubectl does: whole names, the terminal wraps lines
        console = Console(highlight=False, width=needed)
    console.print(table)


def dump(data: Any, fmt: str) -> str:
    """`data` (plain dicts, lists, strings, numbers) as JSON or YAML text."""
    if fmt == JSON:
        return json.dumps(data, indent=2) + "\n"
    return yaml.safe_dump(data, sort_keys=False)


def print_data(data: Any, fmt: str) -> None:
    sys.stdout.write(dump(data, fmt))


@dataclass(frozen=True)
class Report:
    """One result, two faces: cells for the table, plain data for -o json|yaml."""

    headers: Sequence[str]
    cells: Sequence[Sequence[str]]
    data: list[dict[str, Any]]


def show(report: Report, fmt: str, *, right_aligned: Sequence[str] = (), empty: str) -> None:
    if fmt == TABLE:
        print_table(report.headers, report.cells, right_aligned=right_aligned, empty=empty)
    else:
        print_data(report.data, fmt)


def warn(message: str) -> None:
    stderr().print(Text.assemble(("warning: ", "yellow"), message))


def progress(message: str) -> AbstractContextManager[object]:
    """A spinner on a terminal while the user waits; nothing when not watched."""
    if sys.stderr.isatty():
        return stderr().status(message)
    return contextlib.nullcontext()
