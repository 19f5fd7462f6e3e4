"""How figures read in a table: "-" where there is nothing to show."""

from __future__ import annotations

from weft_cli.observe.golden import Figures

DASH = "-"
GOLDEN_HEADERS = ("SUCCESS", "RPS", "LATENCY_P50", "LATENCY_P95", "LATENCY_P99")


def percent(fraction: float | None) -> str:
    return DASH if fraction is None else f"{fraction * 100:.2f}%"


def rate(per_second: float) -> str:
    return f"{per_second:.1f}"


def milliseconds(value: float | None) -> str:
    if value is None:
        return DASH
    return f"{value:.0f}ms" if value >= 10 else f"{value:.1f}ms"


def count(value: int | None) -> str:
    return DASH if value is None else str(value)


def golden_cells(figures: Figures) -> list[str]:
    return [
        percent(figures.success),
        rate(figures.rps),
        milliseconds(figures.p50),
        milliseconds(figures.p95),
        milliseconds(figures.p99),
    ]
