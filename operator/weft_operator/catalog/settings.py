"""Cluster-wide facts the catalog needs, set once at install time."""

from __future__ import annotations

from dataclasses import dataclass

from weft_api.config import DefaultPolicy
from weft_api.identity import DEFAULT_TRUST_DOMAIN
from weft_api.mesh import ACCESS_MODEL_LINKERD

# Linkerd's default clusterNetworks: where "cluster-*" default policies admit clients.
DEFAULT_CLUSTER_NETWORKS = (
    "10.0.0.0/8",
    "100.64.0.0/10",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "fd00::/8",
)


@dataclass(frozen=True, slots=True)
class MeshSettings:
    trust_domain: str = DEFAULT_TRUST_DOMAIN
    cluster_domain: str = "cluster.local"
    cluster_networks: tuple[str, ...] = DEFAULT_CLUSTER_NETWORKS
    default_inbound_policy: DefaultPolicy = DefaultPolicy.ALL_UNAUTHENTICATED
    # mesh.ACCESS_MODELS: "smi" denies what no TrafficTarget (or Server) allows
    access_model: str = ACCESS_MODEL_LINKERD

    def authority(self, service: str, namespace: str) -> str:
        """The name clients use for a Service: `books.default.svc.cluster.local`."""
        return f"{service}.{namespace}.svc.{self.cluster_domain}"
