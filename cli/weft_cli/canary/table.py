"""The live table of a canary: per backend its weight, the share of traffic it got,
and its golden metrics, as the clients' proxies measured them over the last window."""

from __future__ import annotations

from collections.abc import Sequence

from rich.table import Table

from weft_cli.canary.steps import Verdict
from weft_cli.observe import format
from weft_cli.observe.splits import SplitRow

VERDICT_STYLE = {
    Verdict.PROMOTE: "green",
    Verdict.DONE: "bold green",
    Verdict.HOLD: "yellow",
    Verdict.ROLLBACK: "bold red",
}


def canary_table(
    title: str, rows: Sequence[SplitRow], canary_weight: int, verdict: Verdict | None
) -> Table:
    caption = f"canary weight {canary_weight}%"
    if verdict is not None:
        caption += f" - [{VERDICT_STYLE[verdict]}]{verdict.value}[/]"
    table = Table(title=title, caption=caption)
    for header in ("BACKEND", "WEIGHT", "TRAFFIC", "RPS", "SUCCESS", "P50", "P99"):
        table.add_column(header, justify="left" if header == "BACKEND" else "right")
    for row in rows:
        figures = row.figures
        table.add_row(
            row.backend,
            row.weight,
            format.percent(row.traffic_share),
            format.rate(figures.rps),
            format.percent(figures.success),
            format.milliseconds(figures.p50),
            format.milliseconds(figures.p99),
        )
    return table
