"""Container processes: started in the pod's namespace as the container's user.

`ip netns exec` enters the namespace (and binds the pod's hosts and resolv.conf), then
`setpriv` takes the container's user and groups, then the program runs: one exec chain,
so the pid we hold is the program's. Each container is a process group of its own,
signalled as a whole, as a container runtime kills every process of a container.

A container running as another user than root keeps one capability,
CAP_DAC_READ_SEARCH: its "image" is this machine's filesystem, whose Python may live
where only root may look (pyenv under /root), and there is no container filesystem to
keep it from anyway. Its user id still decides everything else (proxy-init's rules
match the proxy by it).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Mapping
from pathlib import Path
from typing import BinaryIO

from weft_localcluster.nodeagent.commands import tool
from weft_localcluster.nodeagent.launch import Identity
from weft_localcluster.nodeagent.mounts import Mount

# The kubelet gives every container this long after SIGTERM, even when a pod is deleted
# with a grace period of 0 (kuberuntime's minimumGracePeriodInSeconds).
MINIMUM_GRACE = 2.0

_READ_HOST_FILES = ["--inh-caps=+dac_read_search", "--ambient-caps=+dac_read_search"]


# Runs in the mount namespace `ip netns exec` made (a slave of the machine's): binds each
# SOURCE TARGET pair read-only, then execs the rest of the chain (setpriv, the program).
# The mount tool's path is passed as $1 (the container's PATH must not decide it).
_BIND_SCRIPT = (
    'mount="$1"; shift; while [ "$1" != -- ]; do '
    '"$mount" --bind "$1" "$2" && "$mount" -o remount,bind,ro "$2" || exit 126; shift 2; '
    'done; shift; exec "$@"'
)


def in_pod(
    netns: str, argv: list[str], identity: Identity, binds: tuple[Mount, ...] = ()
) -> list[str]:
    command = [tool("ip"), "netns", "exec", netns]
    if binds:
        command += [tool("sh"), "-c", _BIND_SCRIPT, "weft-mounts", tool("mount")]
        for bind in binds:
            command += [str(bind.host_path), bind.container_path]
        command.append("--")
    privileges = ["--no-new-privs"] if identity.no_new_privileges else []
    if identity.uid is not None or identity.gid is not None:
        groups = ",".join(map(str, identity.groups))
        command += [
            tool("setpriv"),
            f"--reuid={identity.uid or 0}",
            f"--regid={identity.gid or 0}",
            f"--groups={groups}" if groups else "--clear-groups",
            *(_READ_HOST_FILES if identity.uid else []),
            *privileges,
            "--",
        ]
    elif privileges:
        command += [tool("setpriv"), *privileges, "--"]
    return command + argv


def exit_code(returncode: int) -> tuple[int, int | None]:
    """(exit code, signal) as Kubernetes reports them: 128+N for signal N."""
    if returncode < 0:
        return 128 - returncode, -returncode
    return returncode, None


class ContainerProcess:
    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self._process = process
        self.pid = process.pid
        self.started_at = time.time()

    async def wait(self) -> int:
        returncode = await self._process.wait()
        self.signal(signal.SIGKILL)  # the rest of the container goes with its main process
        return returncode

    def signal(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, sig)

    async def stop(self, grace: float) -> int:
        """SIGTERM, then SIGKILL once `grace` seconds (at least MINIMUM_GRACE) have passed."""
        if self._process.returncode is None:
            self.signal(signal.SIGTERM)
            with contextlib.suppress(TimeoutError):
                wait = max(grace, MINIMUM_GRACE)
                return await asyncio.wait_for(asyncio.shield(self.wait()), wait)
        self.signal(signal.SIGKILL)
        return await self.wait()


def _open_log(path: Path) -> BinaryIO:
    path.parent.mkdir(parents=True, exist_ok=True)
    return open(path, "ab")  # the child keeps its own copy of the descriptor


async def start(
    command: list[str], env: Mapping[str, str], cwd: Path, log: Path
) -> ContainerProcess:
    with _open_log(log) as out:
        process = await asyncio.create_subprocess_exec(
            *command,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=out,
            stderr=asyncio.subprocess.STDOUT,
            env=dict(env),
            cwd=cwd,
            start_new_session=True,  # its own process group: signalled as one container
        )
    return ContainerProcess(process)
