"""What the CLI needs to know of a pod: where it belongs, whether it is meshed, and how
to reach its proxy. Pure: built from the API's JSON or from a proxies file."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from weft_api import mesh
from weft_api.workload import owning_workload


@dataclass(frozen=True)
class PodInfo:
    namespace: str
    name: str
    # deployment, rollout (Argo Rollouts), statefulset, daemonset, job, replicaset (one
    # no Deployment or Rollout owns), ...; "" when none
    workload_kind: str = ""
    workload: str = ""
    service_account: str = "default"
    proxy_version: str | None = None  # None: not meshed
    ip: str = ""
    phase: str = ""
    proxy_ready: bool = False
    # Set when the proxy is reached directly rather than through the API server.
    admin_address: str = ""
    tap_address: str = ""
    replica_set: str = ""  # the ReplicaSet that owns the pod (of a Deployment, a Rollout)
    # The proxy's tap port is mTLS, admitting the identities it names (docs/mtls.md).
    tap_tls: bool = False

    @property
    def meshed(self) -> bool:
        return self.proxy_version is not None

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}"

    def labels(self) -> dict[str, str]:
        """The labels Prometheus adds to a pod's series when it scrapes (Linkerd's
        scrape configuration): the same aggregation reads scrapes and Prometheus."""
        labels = {"namespace": self.namespace, "pod": self.name}
        if self.workload_kind:
            labels[self.workload_kind] = self.workload
        return labels


def _proxy_ready(status: Mapping[str, Any]) -> bool:
    # A native sidecar reports among the init containers; a classic one among the rest.
    statuses = [
        *(status.get("initContainerStatuses") or []),
        *(status.get("containerStatuses") or []),
    ]
    return any(s.get("name") == mesh.PROXY_CONTAINER and s.get("ready") for s in statuses)


def _tap_tls(spec: Mapping[str, Any]) -> bool:
    """As the proxy decides: tap clients named, and trust anchors to verify them."""
    for container in (*(spec.get("initContainers") or []), *(spec.get("containers") or [])):
        if container.get("name") == mesh.PROXY_CONTAINER:
            env = {var.get("name"): var.get("value") for var in container.get("env") or []}
            return bool(env.get(mesh.ProxyEnv.TAP_CLIENTS) and env.get(mesh.ProxyEnv.TRUST_ANCHORS))
    return False


def from_api(pod: Mapping[str, Any]) -> PodInfo:
    metadata, spec, status = pod["metadata"], pod.get("spec") or {}, pod.get("status") or {}
    workload = owning_workload(metadata)
    return PodInfo(
        namespace=metadata["namespace"],
        name=metadata["name"],
        workload_kind=workload.kind,
        workload=workload.name,
        replica_set=workload.replica_set,
        service_account=spec.get("serviceAccountName") or "default",
        proxy_version=(metadata.get("annotations") or {}).get(mesh.PROXY_VERSION_ANNOTATION),
        ip=status.get("podIP") or "",
        phase=status.get("phase") or "",
        proxy_ready=_proxy_ready(status),
        tap_tls=_tap_tls(spec),
    )
