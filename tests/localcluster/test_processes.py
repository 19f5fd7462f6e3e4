"""Pid files name exactly the processes we started, and stop signals only those."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from weft_localcluster import processes


def test_started_process_is_alive_logged_and_stopped(tmp_path: Path) -> None:
    record = processes.start("echoer", [sys.executable, "-c", _SCRIPT], tmp_path)
    assert processes.alive(record)
    assert processes.read_records(tmp_path) == [record]
    for _ in range(200):
        if "hello from the child" in Path(record.log).read_text():
            break
        time.sleep(0.02)
    else:
        raise AssertionError("the child's output never reached its log")
    processes.stop(record, tmp_path)
    assert not processes.alive(record)
    assert processes.read_records(tmp_path) == []


def test_a_reused_pid_is_not_ours_and_is_never_signalled(tmp_path: Path) -> None:
    stranger = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        forged = processes.ProcessRecord("etcd", stranger.pid, start_ticks=1, log="")
        assert not processes.alive(forged)
        processes.stop(forged, tmp_path)
        assert stranger.poll() is None  # still running: stop() left it alone
    finally:
        stranger.kill()
        stranger.wait()


def test_an_exited_child_is_dead_and_reports_its_exit_code(tmp_path: Path) -> None:
    record = processes.start("failing", [sys.executable, "-c", "raise SystemExit(3)"], tmp_path)
    code = None
    for _ in range(200):
        code = processes.exit_code(record)
        if code is not None:
            break
        time.sleep(0.02)
    assert code == 3
    assert not processes.alive(record)


_SCRIPT = "import time; print('hello from the child', flush=True); time.sleep(60)"
