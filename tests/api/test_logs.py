"""`--log-format json` (operator, webhooks) and `WEFT_PROXY_LOG_FORMAT=json` (the proxy,
set by injection from `config.weft.dev/proxy-log-format`): one JSON object per line,
crashes included, from the real processes."""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from weft_api import logs, mesh

KEYS = {"time", "level", "logger", "message"}


def json_lines(text: str) -> list[dict[str, Any]]:
    lines = [line for line in text.splitlines() if line.strip()]
    assert lines, "no log lines"
    parsed = [json.loads(line) for line in lines]  # a line that is not JSON fails here
    assert all(set(entry) >= KEYS for entry in parsed), parsed
    return parsed


def test_a_record_with_a_traceback_is_one_line_of_json() -> None:
    try:
        raise ValueError("bad weight\non two lines")
    except ValueError:
        record = logging.getLogger("weft.test").makeRecord(
            "weft.test", logging.ERROR, __file__, 1, "split %s failed", ("web",), sys.exc_info()
        )
    line = logs.JsonFormatter().format(record)
    assert "\n" not in line
    entry = json.loads(line)
    assert (entry["level"], entry["logger"], entry["message"]) == (
        "ERROR",
        "weft.test",
        "split web failed",
    )
    assert entry["exception"].endswith("ValueError: bad weight\non two lines")
    assert entry["time"].endswith("+00:00")


def test_an_unknown_format_is_an_error() -> None:
    with pytest.raises(ValueError, match="plain, json"):
        logs.formatter("logfmt")


@pytest.mark.parametrize("component", ["weft_operator", "weft_webhooks"])
def test_a_component_crash_is_logged_as_json(component: str, tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\n")  # no context: it cannot start
    done = subprocess.run(
        [sys.executable, "-m", component, "--log-format=json", f"--kubeconfig={kubeconfig}"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode != 0
    entries = json_lines(done.stderr)
    assert "current-context" in entries[-1]["exception"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_the_proxy_logs_json_when_injection_asks_for_it() -> None:
    env = dict(os.environ)
    env[mesh.ProxyEnv.LOG_FORMAT] = "json"
    for name in ("INBOUND", "OUTBOUND", "ADMIN", "TAP"):
        env[getattr(mesh.ProxyEnv, f"{name}_LISTEN_ADDR")] = f"127.0.0.1:{free_port()}"
    proxy = subprocess.Popen(
        [sys.executable, "-m", "weft_proxy"], env=env, stderr=subprocess.PIPE, text=True
    )
    try:
        assert proxy.stderr is not None
        lines = []
        for line in proxy.stderr:  # until it says it listens (or exits: then EOF)
            lines.append(line)
            if "listening" in line:
                break
        proxy.send_signal(signal.SIGTERM)
        _, rest = proxy.communicate(timeout=60)
    finally:
        if proxy.poll() is None:
            proxy.kill()
            proxy.wait()
    entries = json_lines("".join(lines) + rest)
    assert any(e["logger"] == "weft_proxy" and "listening" in e["message"] for e in entries)
