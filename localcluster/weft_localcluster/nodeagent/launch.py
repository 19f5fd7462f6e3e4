"""How one container runs (pure): argv, environment, folder and user, from its spec."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from weft_localcluster.nodeagent.env import ConfigError, expand
from weft_localcluster.nodeagent.images import Image, argv
from weft_localcluster.nodeagent.mounts import Mount, bound_mounts, rewrite, rewrite_arg


@dataclass(frozen=True)
class Identity:
    """Who a container's processes run as; uid None: root (images without USER)."""

    uid: int | None = None
    gid: int | None = None
    groups: tuple[int, ...] = ()
    no_new_privileges: bool = False


@dataclass(frozen=True)
class LaunchPlan:
    argv: list[str]
    env: dict[str, str]
    cwd: Path
    identity: Identity
    binds: tuple[Mount, ...] = ()  # bound at their real path (api_access.bound_mounts)


def identity(pod: Mapping[str, Any], container: Mapping[str, Any], image: Image) -> Identity:
    """The container's user: its securityContext, then the pod's, then the image's."""
    pod_context = (pod.get("spec") or {}).get("securityContext") or {}
    own = container.get("securityContext") or {}

    def setting(key: str) -> Any:
        return own.get(key, pod_context.get(key))

    uid = setting("runAsUser")
    gid = setting("runAsGroup")
    if uid is None and image.user is not None:
        uid, gid = image.user, gid if gid is not None else image.user
    if setting("runAsNonRoot") and not uid:
        raise ConfigError(
            f"container {container['name']!r} has runAsNonRoot and image will run as root "
            "(set runAsUser, or use an image with a USER)"
        )
    groups = [pod_context["fsGroup"]] if pod_context.get("fsGroup") is not None else []
    groups += pod_context.get("supplementalGroups") or []
    return Identity(
        uid=uid,
        gid=gid,
        groups=tuple(dict.fromkeys(groups)),
        no_new_privileges=own.get("allowPrivilegeEscalation") is False,
    )


def launch_plan(
    pod: Mapping[str, Any],
    container: Mapping[str, Any],
    image: Image,
    spec_env: Mapping[str, str],
    mounts: list[Mount],
    own_dir: Path,
    service_env: Mapping[str, str] | None = None,
) -> LaunchPlan:
    """`spec_env` is the pod spec's variables (env.container_env); the image's come first,
    then `service_env` (the `kubernetes` Service's, as the kubelet sets them)."""
    metadata, spec = pod.get("metadata") or {}, pod.get("spec") or {}
    env = {
        **image.env,
        "HOSTNAME": spec.get("hostname") or metadata.get("name", ""),
        "HOME": str(own_dir),
        **(service_env or {}),
        **{name: rewrite(value, mounts) for name, value in spec_env.items()},
    }
    command = [expand(part, spec_env) for part in container.get("command") or []]
    args = [expand(part, spec_env) for part in container.get("args") or []]
    cwd = own_dir
    if container.get("workingDir"):
        cwd = Path(rewrite(container["workingDir"], mounts))
        if str(cwd) == container["workingDir"]:
            raise ConfigError(
                f"workingDir {container['workingDir']!r} is not inside a volume: "
                "the node agent runs containers without a filesystem of their own"
            )
    return LaunchPlan(
        argv=[rewrite_arg(part, mounts) for part in argv(image, command, args)],
        env=env,
        cwd=cwd,
        identity=identity(pod, container, image),
        binds=bound_mounts(mounts),
    )
