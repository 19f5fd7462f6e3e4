"""A component that dies while starting is reported with its exit code and its log."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from weft_localcluster import processes
from weft_localcluster.cluster import ClusterError, LocalCluster


def test_a_component_that_exits_during_start_is_named_with_its_log(tmp_path: Path) -> None:
    script = "import sys; print('bind: address already in use', flush=True); sys.exit(3)"
    record = processes.start("etcd", [sys.executable, "-c", script], tmp_path)
    cluster = LocalCluster(tmp_path)
    with pytest.raises(ClusterError) as failure:
        cluster._wait_healthy(record, lambda: False, deadline=time.monotonic() + 30)
    message = str(failure.value)
    assert "etcd exited during start with code 3" in message
    assert "bind: address already in use" in message
    assert "weft cluster down" in message
