"""Start control-plane processes with logs and pid files; stop exactly those processes.

A pid file records the pid and the process's start time (from /proc), so `down` never
signals an unrelated process that happens to reuse a pid after a reboot or a crash.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass(frozen=True)
class ProcessRecord:
    name: str
    pid: int
    start_ticks: int
    log: str


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    return raw[raw.rindex(")") + 2 :].split()


def _start_ticks(pid: int) -> int | None:
    fields = _stat_fields(pid)
    return int(fields[19]) if fields else None  # field 22 of stat, counted from field 3


def alive(record: ProcessRecord) -> bool:
    fields = _stat_fields(record.pid)
    if fields is None or fields[0] in ("Z", "X"):
        return False
    return int(fields[19]) == record.start_ticks


def _reap(pid: int) -> None:
    """Collect the exit status when we are the parent (e.g. a pytest session)."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def exit_code(record: ProcessRecord) -> int | None:
    """The exit code of a process we started in this Python process, if it has ended."""
    try:
        pid, status = os.waitpid(record.pid, os.WNOHANG)
    except (ChildProcessError, OSError):
        return None
    return os.waitstatus_to_exitcode(status) if pid else None


def pid_dir(state: Path) -> Path:
    return state / "run"


def log_dir(state: Path) -> Path:
    return state / "logs"


def start(name: str, argv: list[str], state: Path) -> ProcessRecord:
    pid_dir(state).mkdir(parents=True, exist_ok=True)
    log_dir(state).mkdir(parents=True, exist_ok=True)
    log = log_dir(state) / f"{name}.log"
    with open(log, "ab") as out:
        # A session of its own: the process outlives `weft cluster up` and a Ctrl-C in
        # the shell that ran it does not reach it.
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=state,
        )
    ticks = _start_ticks(proc.pid)
    record = ProcessRecord(name=name, pid=proc.pid, start_ticks=ticks or -1, log=str(log))
    (pid_dir(state) / f"{name}.pid").write_text(json.dumps(asdict(record)))
    return record


def read_records(state: Path) -> list[ProcessRecord]:
    records = []
    for path in sorted(pid_dir(state).glob("*.pid")):
        try:
            records.append(ProcessRecord(**json.loads(path.read_text())))
        except (ValueError, TypeError):
            continue  # a torn pid file from a killed run: nothing to signal
    return records


def stop(record: ProcessRecord, state: Path, grace: float = 10.0) -> None:
    """SIGTERM, then SIGKILL after `grace` seconds; remove the pid file."""
    if alive(record):
        with contextlib.suppress(ProcessLookupError):
            os.kill(record.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while alive(record) and time.monotonic() < deadline:
            _reap(record.pid)
            time.sleep(0.05)
        if alive(record):
            with contextlib.suppress(ProcessLookupError):
                os.kill(record.pid, signal.SIGKILL)
            while alive(record):
                _reap(record.pid)
                time.sleep(0.05)
    _reap(record.pid)
    (pid_dir(state) / f"{record.name}.pid").unlink(missing_ok=True)


def log_tail(record: ProcessRecord, lines: int = 12) -> str:
    try:
        text = Path(record.log).read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])
