"""Per-pod proxy options, read from `config.weft.dev/*` annotations (pod, then namespace).

A value that does not parse is ignored with a warning, never a refusal: a typo in an
annotation must not stop a Deployment from rolling out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from weft_api import http2_limits, logs, mesh
from weft_api.config import DefaultPolicy
from weft_api.mesh import PortRange, parse_port_ranges
from weft_webhooks.injection.decision import annotations_of, setting

_POLICY_NAMES = tuple(policy.value for policy in DefaultPolicy)


@dataclass(frozen=True, slots=True)
class ProxyOptions:
    skip_inbound_ports: tuple[PortRange, ...] = ()
    skip_outbound_ports: tuple[PortRange, ...] = ()
    opaque_ports: tuple[PortRange, ...] = ()
    inbound_ports: tuple[int, ...] = ()  # what the pod's containers declare
    http2_limits: str = ""  # as the annotation gave it, once it parsed
    log_format: str = ""  # one of weft_api.logs.FORMATS; "": the proxy's default
    tap_clients: str | None = None  # the annotation's; None: the install's


@dataclass(frozen=True, slots=True)
class ReadOptions:
    options: ProxyOptions
    warnings: tuple[str, ...]


def read_options(pod: Mapping[str, Any], namespace_annotations: Mapping[str, str]) -> ReadOptions:
    pod_annotations = annotations_of(pod)
    warnings: list[str] = []

    def ports(key: str) -> tuple[PortRange, ...]:
        text = setting(key, pod_annotations, namespace_annotations)
        try:
            return parse_port_ranges(text or "")
        except ValueError as error:
            warnings.append(f"{key}: {error}; ignored")
            return ()

    options = ProxyOptions(
        skip_inbound_ports=ports(mesh.SKIP_INBOUND_PORTS_ANNOTATION),
        skip_outbound_ports=ports(mesh.SKIP_OUTBOUND_PORTS_ANNOTATION),
        opaque_ports=ports(mesh.OPAQUE_PORTS_ANNOTATION),
        inbound_ports=_declared_ports(pod.get("spec") or {}),
        http2_limits=_http2_limits(pod_annotations, namespace_annotations, warnings),
        log_format=_log_format(pod_annotations, namespace_annotations, warnings),
        tap_clients=setting(mesh.TAP_CLIENTS_ANNOTATION, pod_annotations, namespace_annotations),
    )
    policy_key = mesh.DEFAULT_INBOUND_POLICY_ANNOTATION
    policy = setting(policy_key, pod_annotations, namespace_annotations)
    if policy is not None and policy not in _POLICY_NAMES:
        warnings.append(
            f"{policy_key}: {policy!r} is not one of {', '.join(_POLICY_NAMES)}; "
            "the cluster's default applies"
        )
    return ReadOptions(options, tuple(warnings))


def _http2_limits(
    pod_annotations: Mapping[str, str],
    namespace_annotations: Mapping[str, str],
    warnings: list[str],
) -> str:
    key = mesh.HTTP2_LIMITS_ANNOTATION
    text = setting(key, pod_annotations, namespace_annotations) or ""
    try:
        http2_limits.parse(text)
    except ValueError as error:
        warnings.append(f"{key}: {error}; the defaults apply")
        return ""
    return text


def _log_format(
    pod_annotations: Mapping[str, str],
    namespace_annotations: Mapping[str, str],
    warnings: list[str],
) -> str:
    key = mesh.PROXY_LOG_FORMAT_ANNOTATION
    text = setting(key, pod_annotations, namespace_annotations) or ""
    if text and text not in logs.FORMATS:
        warnings.append(f"{key}: {text!r} is not one of {', '.join(logs.FORMATS)}; ignored")
        return ""
    return text


def _declared_ports(spec: Mapping[str, Any]) -> tuple[int, ...]:
    declared = {
        port["containerPort"]
        for container in (*spec.get("containers", ()), *spec.get("initContainers", ()))
        for port in container.get("ports") or ()
        if port.get("protocol", "TCP") == "TCP" and isinstance(port.get("containerPort"), int)
    }
    return tuple(sorted(declared))
