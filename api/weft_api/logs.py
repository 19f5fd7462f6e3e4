"""Log formats shared by the operator, the webhooks and the proxy: `plain` lines for
people, or `json`, one object per line for log pipelines (Loki, Elasticsearch, Cloud
Logging), with the keys Linkerd's JSON logs use where they mean the same.

Standard library only: the proxy imports this in every pod.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from types import TracebackType
from typing import TextIO

PLAIN, JSON = "plain", "json"
FORMATS = (PLAIN, JSON)
_PLAIN_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    """`{"time", "level", "logger", "message"[, "exception"]}`; json.dumps escapes
    newlines, so a traceback stays inside its line."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False)


def formatter(log_format: str) -> logging.Formatter:
    """The formatter of `log_format` (one of FORMATS); ValueError for another."""
    if log_format == JSON:
        return JsonFormatter()
    if log_format == PLAIN:
        return logging.Formatter(_PLAIN_FORMAT)
    raise ValueError(f"log format {log_format!r} is not one of {', '.join(FORMATS)}")


def configure(level: int | str, log_format: str = PLAIN, stream: TextIO | None = None) -> None:
    """The root logger writes to `stream` (stderr) in `log_format`, at `level`. In JSON,
    a crash is logged too, so that its traceback is no run of lines a pipeline splits."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatter(log_format))
    logging.basicConfig(level=level, handlers=[handler])
    if log_format == JSON:
        sys.excepthook = _log_uncaught


def _log_uncaught(
    kind: type[BaseException], error: BaseException, trace: TracebackType | None
) -> None:
    if issubclass(kind, KeyboardInterrupt):
        sys.__excepthook__(kind, error, trace)
        return
    logging.getLogger("weft").critical("uncaught exception", exc_info=(kind, error, trace))
