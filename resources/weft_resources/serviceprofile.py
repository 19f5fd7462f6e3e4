"""Linkerd `linkerd.io`: ServiceProfile, served at v1alpha1 and v1alpha2 (same shape)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any, ClassVar, Self

from pydantic import Field, model_validator

from weft_resources.base import Frozen, Kind, Resource
from weft_resources.fields import (
    DurationMs,
    MilliWeight,
    ObjectOrList,
    PortNumber,
    Regex,
)
from weft_resources.manifest import Manifest

_DNS_LABEL = r"[a-z0-9](?:[-a-z0-9]*[a-z0-9])?"
_PROFILE_NAME = re.compile(
    rf"(?P<service>{_DNS_LABEL})\.(?P<namespace>{_DNS_LABEL})\.svc\.(?P<domain>.+)"
)


def _require_a_condition(condition: Frozen) -> None:
    if not any(value is not None for value in condition.__dict__.values()):
        names = ", ".join(
            field.alias or name for name, field in type(condition).model_fields.items()
        )
        raise ValueError(f"a condition must set one of {names}")


class RequestCondition(Frozen):
    """Fields set together are ANDed, as upstream does."""

    path_regex: Regex | None = None
    method: str | None = None
    all: tuple[RequestCondition, ...] | None = None
    any: tuple[RequestCondition, ...] | None = None
    not_: Annotated[RequestCondition | None, ObjectOrList] = Field(None, alias="not")

    @model_validator(mode="after")
    def _not_empty(self) -> Self:
        _require_a_condition(self)
        return self


class StatusRange(Frozen):
    """Only `min` or only `max` means that one status code."""

    min: int | None = Field(None, ge=100, le=599)
    max: int | None = Field(None, ge=100, le=599)

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.min is None and self.max is None:
            raise ValueError("a status range needs min, max or both")
        if self.lowest > self.highest:
            raise ValueError(f"min {self.min} is greater than max {self.max}")
        return self

    @property
    def lowest(self) -> int:
        return next(bound for bound in (self.min, self.max) if bound is not None)

    @property
    def highest(self) -> int:
        return next(bound for bound in (self.max, self.min) if bound is not None)


class ResponseCondition(Frozen):
    status: StatusRange | None = None
    all: tuple[ResponseCondition, ...] | None = None
    any: tuple[ResponseCondition, ...] | None = None
    not_: Annotated[ResponseCondition | None, ObjectOrList] = Field(None, alias="not")

    @model_validator(mode="after")
    def _not_empty(self) -> Self:
        _require_a_condition(self)
        return self


class ResponseClassSpec(Frozen):
    condition: ResponseCondition
    is_failure: bool = False


class RouteSpec(Frozen):
    name: str
    condition: RequestCondition
    response_classes: tuple[ResponseClassSpec, ...] = ()
    is_retryable: bool = False
    timeout_ms: DurationMs | None = Field(None, alias="timeout")


class RetryBudgetSpec(Frozen):
    """Fields left out take Linkerd's defaults."""

    retry_ratio: float = Field(0.2, ge=0)
    min_retries_per_second: int = Field(10, ge=0)
    ttl_ms: DurationMs = Field(10_000, alias="ttl")


class OverrideTarget(Frozen):
    """The Service a dstOverrides authority names; `namespace` None: the profile's."""

    name: str
    namespace: str | None = None
    port: int | None = None


_AUTHORITY = re.compile(
    rf"(?P<name>{_DNS_LABEL})(?:\.(?P<namespace>{_DNS_LABEL})(?:\.svc(?:\.[-a-z0-9.]+)?)?)?"
    r"(?::(?P<port>[0-9]{1,5}))?"
)


class WeightedDestination(Frozen):
    """Linkerd sends `weight` parts of the Service's traffic to `authority`: a split
    of the parent, here over Services of the cluster only."""

    authority: str
    weight: MilliWeight

    @property
    def target(self) -> OverrideTarget:
        found = _AUTHORITY.fullmatch(self.authority)
        assert found is not None  # checked when parsed
        port = int(found["port"]) if found["port"] else None
        return OverrideTarget(name=found["name"], namespace=found["namespace"], port=port)

    @model_validator(mode="after")
    def _a_cluster_service(self) -> Self:
        found = _AUTHORITY.fullmatch(self.authority)
        if found is None or (found["port"] and not 0 < int(found["port"]) < 65536):
            raise ValueError(
                f"authority {self.authority!r} is not a Service of the cluster: write "
                "<name>.<namespace>.svc.<cluster-domain>[:port] (Weft does not send "
                "traffic to hosts outside the cluster)"
            )
        return self


class ServiceProfileSpec(Frozen):
    routes: tuple[RouteSpec, ...] = ()
    retry_budget: RetryBudgetSpec | None = None
    dst_overrides: tuple[WeightedDestination, ...] = ()
    opaque_ports: tuple[PortNumber, ...] = ()


class ProfiledService(Frozen):
    """The Service a profile describes, read from the profile's name."""

    name: str
    namespace: str
    cluster_domain: str


class ServiceProfile(Resource):
    KIND: ClassVar[Kind] = Kind.SERVICE_PROFILE
    API_GROUP: ClassVar[str] = "linkerd.io"
    SERVED_VERSIONS: ClassVar[tuple[str, ...]] = ("v1alpha1", "v1alpha2")
    spec: ServiceProfileSpec
    service: ProfiledService


def parse_service_profile(body: Mapping[str, Any]) -> ServiceProfile:
    manifest = Manifest.read(body, ServiceProfile)
    named = _PROFILE_NAME.fullmatch(manifest.meta.name)
    if named is None:
        raise manifest.invalid(
            f"metadata.name: {manifest.meta.name!r} must be <service>.<namespace>.svc."
            "<cluster-domain>, such as books.default.svc.cluster.local"
        )
    service = ProfiledService(
        name=named["service"], namespace=named["namespace"], cluster_domain=named["domain"]
    )
    return ServiceProfile(
        meta=manifest.meta, spec=manifest.part(ServiceProfileSpec), service=service
    )
