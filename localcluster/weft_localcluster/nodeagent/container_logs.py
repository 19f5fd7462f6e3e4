"""Which log file `kubectl logs` reads, and its last lines (no asyncio, no sockets).

The supervisor writes each run of a container to its own file,
`<logs>/<namespace>_<pod>_<uid>/<container>/<run>.log` (run = restart count): the
current run is the highest number, `--previous` the one before it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

BLOCK = 64 * 1024


class LogNotFound(LookupError):
    """No such log; the message is the kubelet's answer (HTTP 400)."""


@dataclass(frozen=True)
class LogQuery:
    follow: bool = False
    previous: bool = False
    tail_lines: int | None = None
    limit_bytes: int | None = None

    @classmethod
    def from_params(cls, params: dict[str, str]) -> LogQuery:
        def flag(name: str) -> bool:
            return params.get(name, "").lower() in ("true", "1")

        def number(name: str) -> int | None:
            text = params.get(name)
            if text is None or text == "":
                return None
            value = int(text)
            if value < 0:
                raise ValueError(f"{name} must not be negative")
            return value

        return cls(
            follow=flag("follow"),
            previous=flag("previous"),
            tail_lines=number("tailLines"),
            limit_bytes=number("limitBytes"),
        )


def runs(container_dir: Path) -> list[int]:
    """The container's runs that have a log, oldest first."""
    found = []
    for path in container_dir.glob("*.log"):
        if path.stem.isdigit():
            found.append(int(path.stem))
    return sorted(found)


def pick_run(container_dir: Path, pod: str, container: str, previous: bool) -> int:
    numbers = runs(container_dir)
    if previous:
        if len(numbers) < 2:
            raise LogNotFound(
                f'previous terminated container "{container}" in pod "{pod}" not found'
            )
        return numbers[-2]
    if not numbers:
        raise LogNotFound(f'container "{container}" in pod "{pod}" is waiting to start')
    return numbers[-1]


def tail_offset(path: Path, lines: int) -> int:
    """Where the last `lines` lines of the file start (a last line without a newline
    counts as a line)."""
    with open(path, "rb") as log_file:
        end = log_file.seek(0, 2)
        if lines == 0:
            return end
        position = end
        newlines = 0
        # A final newline ends the last line; it does not start another.
        log_file.seek(max(0, end - 1))
        skip_last = log_file.read(1) == b"\n"
        while position > 0:
            start = max(0, position - BLOCK)
            log_file.seek(start)
            block = log_file.read(position - start)
            limit = len(block) - 1 if skip_last and position == end else len(block)
            index = limit
            while True:
                index = block.rfind(b"\n", 0, index)
                if index < 0:
                    break
                newlines += 1
                if newlines == lines:
                    return start + index + 1
            position = start
        return 0
