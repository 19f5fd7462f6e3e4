"""Volume mounts without a container filesystem: paths are rewritten, not mounted.

A container's processes see the machine's filesystem. Each volume is a folder under
the pod's runtime folder, and wherever a container's env values or args name a path
inside one of its `volumeMounts` (`/var/run/secrets/x/token`, or `--config=/etc/app/c.yaml`),
the agent rewrites it to the folder on the host. Programs that take their paths from
env or flags (the proxy, the samples) thus find their files; a hard-coded path does not.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from weft_localcluster.nodeagent.env import expand

# The one mount bound at its real path in the container's mount namespace (api_access.py):
# in-cluster clients read the ServiceAccount's files from there, not from env or flags.
SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"


@dataclass(frozen=True)
class Mount:
    container_path: str
    host_path: Path


def container_mounts(
    container: Mapping[str, Any], volume_dir: Callable[[str], Path], env: Mapping[str, str]
) -> list[Mount]:
    """The container's mounts, deepest first (so nested mounts win)."""
    mounts = []
    for mount in container.get("volumeMounts") or []:
        sub_path = mount.get("subPath") or expand(mount.get("subPathExpr", ""), env)
        host = volume_dir(mount["name"]) / sub_path if sub_path else volume_dir(mount["name"])
        mounts.append(Mount(mount["mountPath"].rstrip("/") or "/", host))
    return sorted(mounts, key=lambda m: len(m.container_path), reverse=True)


def rewrite(value: str, mounts: list[Mount]) -> str:
    """`value` with a leading mount path replaced by its host folder."""
    for mount in mounts:
        prefix = mount.container_path
        if value == prefix:
            return str(mount.host_path)
        if value.startswith(prefix.rstrip("/") + "/"):
            return str(mount.host_path / value[len(prefix) :].lstrip("/"))
    return value


def rewrite_arg(arg: str, mounts: list[Mount]) -> str:
    """Like `rewrite`, also for the value of a `--flag=/path` argument."""
    rewritten = rewrite(arg, mounts)
    if rewritten != arg or "=" not in arg:
        return rewritten
    flag, _, value = arg.partition("=")
    return f"{flag}={rewrite(value, mounts)}"


def bound_mounts(mounts: list[Mount]) -> tuple[Mount, ...]:
    """The mounts bound at their real path in the container: the ServiceAccount's."""
    return tuple(m for m in mounts if m.container_path == SERVICE_ACCOUNT_DIR)
