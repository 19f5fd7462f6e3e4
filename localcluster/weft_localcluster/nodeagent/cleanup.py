"""Remove everything a node agent made: pod processes, namespaces, veths, the bridge,
/etc/netns and /run/weft folders. Idempotent, and works after the agent was killed:
it finds what to remove from the agent's network record and the names derived from it.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import time
from pathlib import Path

from weft_localcluster.nodeagent.addressing import RECORD_FILE, RUNTIME_ROOT, NodeNetwork
from weft_localcluster.nodeagent.commands import CommandError, run_sync, tool
from weft_localcluster.nodeagent.network import ETC_NETNS

TERM_GRACE = 3.0


def our_namespaces(network: NodeNetwork) -> list[str]:
    listing = run_sync(tool("ip"), "netns", "list")
    names = [line.split()[0] for line in listing.splitlines() if line.strip()]
    return [name for name in names if name.startswith(network.netns_prefix)]


def our_links(network: NodeNetwork) -> list[str]:
    links = [link["ifname"] for link in json.loads(run_sync(tool("ip"), "-j", "link", "show"))]
    return [
        name for name in links if name == network.bridge or name.startswith(network.veth_prefix)
    ]


def processes_in(namespace: str) -> list[int]:
    with contextlib.suppress(CommandError):
        return [int(pid) for pid in run_sync(tool("ip"), "netns", "pids", namespace).split()]
    return []


def sweep(state_dir: Path) -> list[str]:
    """Remove what the agent of `state_dir` created; return what was found."""
    network = NodeNetwork.read(state_dir)
    if network is None:
        return []
    namespaces = our_namespaces(network)
    _end_processes([pid for ns in namespaces for pid in processes_in(ns)])
    for namespace in namespaces:
        run_sync(tool("ip"), "netns", "del", namespace, check=False)
        shutil.rmtree(ETC_NETNS / namespace, ignore_errors=True)
    links = our_links(network)
    for link in links:
        run_sync(tool("ip"), "link", "del", link, check=False)
    shutil.rmtree(network.runtime_dir, ignore_errors=True)
    for folder in (RUNTIME_ROOT, ETC_NETNS):
        with contextlib.suppress(OSError):
            folder.rmdir()  # only when no other cluster's agent uses it
    (state_dir / RECORD_FILE).unlink(missing_ok=True)
    return namespaces + links


def _end_processes(pids: list[int]) -> None:
    """SIGTERM, then SIGKILL what is left after a short grace."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + TERM_GRACE
        while pids and time.monotonic() < deadline:
            pids = [pid for pid in pids if Path(f"/proc/{pid}").exists() and not _zombie(pid)]
            time.sleep(0.05)


def _zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat[stat.rindex(")") + 2 :].startswith(("Z", "X"))
