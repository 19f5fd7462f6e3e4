"""A check's result: pass, warn (the exit code stays 0) or fail, a detail and a hint."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Status(enum.Enum):
    PASS = "pass"
    WARN = "warn"
    FAIL = "fail"


@dataclass(frozen=True)
class Outcome:
    status: Status
    detail: str = ""
    hint: str = ""


@dataclass(frozen=True)
class Result:
    category: str
    title: str
    outcome: Outcome


def passed(detail: str = "") -> Outcome:
    return Outcome(Status.PASS, detail)


def warned(detail: str, hint: str = "") -> Outcome:
    return Outcome(Status.WARN, detail, hint)


def failed(detail: str, hint: str = "") -> Outcome:
    return Outcome(Status.FAIL, detail, hint)


def all_passed(results: list[Result]) -> bool:
    return all(result.outcome.status is not Status.FAIL for result in results)
