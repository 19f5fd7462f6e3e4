"""A controller the e2e suite runs on the host against the local cluster (Flagger, Argo
Rollouts): the node agent runs processes, not images, so a tool shipped as an image runs
beside the cluster with its kubeconfig."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

STOP_GRACE_S = 15.0


@contextlib.contextmanager
def host_process(command: list[str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`command` running, its output in `log`; stopped as a pod is: SIGTERM, then
    SIGKILL if it is still there after a grace."""
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
