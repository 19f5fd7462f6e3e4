"""Every knob of the bookshop is an environment variable, with a default that works in
the sample's manifests (Service names and ports)."""

from __future__ import annotations

import os

WEB_PORT = 8080
BOOKS_PORT = 8080
RATINGS_PORT = 8090


def text(name: str, default: str) -> str:
    return os.environ.get(name, default)


def number(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name, default))
    except ValueError:
        raise SystemExit(f"{name} must be a number, not {os.environ[name]!r}") from None


def port(default: int) -> int:
    return int(number("PORT", default))
