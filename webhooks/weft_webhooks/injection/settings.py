"""What an install decides for every injected pod: image, control plane, resources."""

from __future__ import annotations

from dataclasses import dataclass, field

from weft_api import mesh
from weft_api.identity import DEFAULT_TRUST_DOMAIN, identity_name


@dataclass(frozen=True, slots=True)
class Resources:
    """Requests and limits of one injected container; None leaves a value unset."""

    cpu_request: str | None = None
    memory_request: str | None = None
    cpu_limit: str | None = None
    memory_limit: str | None = None


# The proxy: small requests so injection does not block scheduling on busy nodes, and
# a memory limit so a leak takes down one pod, not the node. No CPU limit: throttling
# a proxy adds latency to every request of the pod.
PROXY_RESOURCES = Resources(cpu_request="20m", memory_request="48Mi", memory_limit="256Mi")
# proxy-init runs iptables-restore once and exits.
INIT_RESOURCES = Resources(
    cpu_request="10m", memory_request="16Mi", cpu_limit="100m", memory_limit="64Mi"
)


@dataclass(frozen=True, slots=True)
class InjectorSettings:
    # The proxy image `weft install` injects (the Dockerfile's `proxy` target).
    image: str = mesh.PROXY_IMAGE
    version: str = mesh.PROXY_VERSION
    image_pull_policy: str = "IfNotPresent"
    control_plane_namespace: str = mesh.DEFAULT_CONTROL_PLANE_NAMESPACE
    cluster_domain: str = "cluster.local"
    trust_domain: str = DEFAULT_TRUST_DOMAIN
    proxy_resources: Resources = field(default=PROXY_RESOURCES)
    init_resources: Resources = field(default=INIT_RESOURCES)
    # PEM of the mesh's trust roots, given to the proxy so that it can verify the
    # identity service; "" when not known (then the proxy runs without an identity).
    trust_anchors_pem: str = ""
    # The webhook sets this: without trust anchors a pod is left unmeshed (see
    # injector.py). Offline `weft inject` does not know the cluster's anchors.
    require_trust_anchors: bool = False
    # Who may tap the proxies (WEFT_PROXY_TAP_CLIENTS; "cli": `weft tap`'s identity);
    # "" leaves tap ports open to the pod network. A pod's annotation may override it.
    tap_clients: str = "cli"

    @property
    def config_address(self) -> str:
        return mesh.control_plane_address(
            mesh.CONFIG_SERVICE, self.control_plane_namespace, self.cluster_domain, mesh.CONFIG_PORT
        )

    @property
    def identity_address(self) -> str:
        return mesh.control_plane_address(
            mesh.IDENTITY_SERVICE,
            self.control_plane_namespace,
            self.cluster_domain,
            mesh.IDENTITY_PORT,
        )

    @property
    def identity_server_name(self) -> str:
        """The name the identity service's certificate carries, which the proxy checks."""
        return identity_name(
            mesh.OPERATOR_SERVICE_ACCOUNT, self.control_plane_namespace, self.trust_domain
        )
