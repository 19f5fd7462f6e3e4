"""Core Kubernetes kinds, reduced to the fields the mesh reads."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from pydantic import Field

from weft_resources.base import Frozen, Kind, Resource
from weft_resources.fields import PortNumber, PortReference
from weft_resources.manifest import Manifest

SERVICE_NAME_LABEL = "kubernetes.io/service-name"


class _CoreResource(Resource):
    API_GROUP: ClassVar[str] = ""
    SERVED_VERSIONS: ClassVar[tuple[str, ...]] = ("v1",)


class Namespace(_CoreResource):
    KIND: ClassVar[Kind] = Kind.NAMESPACE


class ServiceAccount(_CoreResource):
    KIND: ClassVar[Kind] = Kind.SERVICE_ACCOUNT


class ServicePortSpec(Frozen):
    name: str = ""
    port: PortNumber
    target_port: PortReference | None = None
    protocol: str = "TCP"
    app_protocol: str | None = None


class ServiceSpec(Frozen):
    type: str = "ClusterIP"
    cluster_ip: str | None = Field(None, alias="clusterIP")
    cluster_ips: tuple[str, ...] = Field((), alias="clusterIPs")
    ports: tuple[ServicePortSpec, ...] = ()
    selector: dict[str, str] = Field(default_factory=dict)


class Service(_CoreResource):
    KIND: ClassVar[Kind] = Kind.SERVICE
    spec: ServiceSpec


class ContainerPort(Frozen):
    name: str = ""
    container_port: PortNumber
    protocol: str = "TCP"


class HttpGetAction(Frozen):
    path: str = "/"
    port: PortReference


class Probe(Frozen):
    http_get: HttpGetAction | None = None


class Container(Frozen):
    name: str
    ports: tuple[ContainerPort, ...] = ()
    liveness_probe: Probe | None = None
    readiness_probe: Probe | None = None
    startup_probe: Probe | None = None


class PodSpec(Frozen):
    service_account_name: str = "default"
    node_name: str | None = None
    host_network: bool = False
    containers: tuple[Container, ...] = ()
    init_containers: tuple[Container, ...] = ()


class PodIp(Frozen):
    ip: str


class PodStatus(Frozen):
    """Only the addresses: the config server checks that a proxy's stream comes from
    its own pod (other status fields change often and would churn the index)."""

    pod_ip: str | None = Field(None, alias="podIP")
    pod_ips: tuple[PodIp, ...] = Field((), alias="podIPs")


class Pod(_CoreResource):
    KIND: ClassVar[Kind] = Kind.POD
    spec: PodSpec
    status: PodStatus = PodStatus()

    @property
    def ips(self) -> frozenset[str]:
        found = {entry.ip for entry in self.status.pod_ips}
        if self.status.pod_ip:
            found.add(self.status.pod_ip)
        return frozenset(found)


class EndpointConditions(Frozen):
    """Kubernetes: an unset `ready` means unknown, to be read as ready."""

    ready: bool | None = None
    serving: bool | None = None
    terminating: bool | None = None


class ObjectReference(Frozen):
    kind: str = ""
    name: str = ""
    namespace: str = ""


class SliceEndpoint(Frozen):
    addresses: tuple[str, ...]
    conditions: EndpointConditions = EndpointConditions()
    target_ref: ObjectReference | None = None
    node_name: str | None = None


class SlicePort(Frozen):
    name: str = ""
    port: PortNumber | None = None
    protocol: str = "TCP"


class EndpointSliceSpec(Frozen):
    """An EndpointSlice keeps these fields at the top level of its manifest."""

    address_type: str
    endpoints: tuple[SliceEndpoint, ...] = ()
    ports: tuple[SlicePort, ...] = ()


class EndpointSlice(Resource):
    KIND: ClassVar[Kind] = Kind.ENDPOINT_SLICE
    API_GROUP: ClassVar[str] = "discovery.k8s.io"
    SERVED_VERSIONS: ClassVar[tuple[str, ...]] = ("v1",)
    spec: EndpointSliceSpec

    @property
    def service_name(self) -> str | None:
        return self.meta.labels.get(SERVICE_NAME_LABEL)


def parse_namespace(body: Mapping[str, Any]) -> Namespace:
    return Namespace(meta=Manifest.read(body, Namespace).meta)


def parse_service_account(body: Mapping[str, Any]) -> ServiceAccount:
    return ServiceAccount(meta=Manifest.read(body, ServiceAccount).meta)


def parse_service(body: Mapping[str, Any]) -> Service:
    manifest = Manifest.read(body, Service)
    return Service(meta=manifest.meta, spec=manifest.part(ServiceSpec))


def parse_pod(body: Mapping[str, Any]) -> Pod:
    manifest = Manifest.read(body, Pod)
    status = manifest.part(PodStatus, at="status")
    return Pod(meta=manifest.meta, spec=manifest.part(PodSpec), status=status)


def parse_endpoint_slice(body: Mapping[str, Any]) -> EndpointSlice:
    manifest = Manifest.read(body, EndpointSlice)
    return EndpointSlice(meta=manifest.meta, spec=manifest.part(EndpointSliceSpec, at=""))
