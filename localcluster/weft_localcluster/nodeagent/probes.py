"""Probe specs and their result over time (pure): thresholds as the kubelet counts them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from weft_localcluster.nodeagent.env import ConfigError


@dataclass(frozen=True)
class HttpGet:
    port: int
    path: str = "/"
    host: str | None = None  # None: the pod's IP
    scheme: str = "HTTP"
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class TcpSocket:
    port: int
    host: str | None = None


@dataclass(frozen=True)
class Exec:
    command: tuple[str, ...]


@dataclass(frozen=True)
class Grpc:
    port: int
    service: str = ""


Action = HttpGet | TcpSocket | Exec | Grpc


@dataclass(frozen=True)
class ProbeSpec:
    action: Action
    initial_delay: float = 0.0
    period: float = 10.0
    timeout: float = 1.0
    success_threshold: int = 1
    failure_threshold: int = 3


def probe_spec(probe: Mapping[str, Any], container: Mapping[str, Any]) -> ProbeSpec:
    return ProbeSpec(
        action=_action(probe, container),
        initial_delay=float(probe.get("initialDelaySeconds", 0)),
        period=float(probe.get("periodSeconds", 10)),
        timeout=float(probe.get("timeoutSeconds", 1)),
        success_threshold=int(probe.get("successThreshold", 1)),
        failure_threshold=int(probe.get("failureThreshold", 3)),
    )


def _action(probe: Mapping[str, Any], container: Mapping[str, Any]) -> Action:
    if "httpGet" in probe:
        get = probe["httpGet"]
        return HttpGet(
            port=_port(get["port"], container),
            path=get.get("path") or "/",
            host=get.get("host") or None,
            scheme=get.get("scheme", "HTTP"),
            headers=tuple((h["name"], h["value"]) for h in get.get("httpHeaders") or []),
        )
    if "tcpSocket" in probe:
        tcp = probe["tcpSocket"]
        return TcpSocket(port=_port(tcp["port"], container), host=tcp.get("host") or None)
    if "exec" in probe:
        return Exec(tuple(probe["exec"].get("command") or ()))
    if "grpc" in probe:
        return Grpc(port=int(probe["grpc"]["port"]), service=probe["grpc"].get("service") or "")
    raise ConfigError(f"probe {sorted(probe)} has no handler the node agent knows")


def _port(port: int | str, container: Mapping[str, Any]) -> int:
    if isinstance(port, int) or port.isdigit():
        return int(port)
    for declared in container.get("ports") or []:
        if declared.get("name") == port:
            return int(declared["containerPort"])
    raise ConfigError(f"probe port {port!r} is not a port of container {container['name']!r}")


@dataclass
class ProbeResult:
    """The current verdict, flipped by consecutive successes or failures."""

    spec: ProbeSpec
    ok: bool
    _successes: int = field(default=0, repr=False)
    _failures: int = field(default=0, repr=False)

    def record(self, success: bool) -> bool:
        """Count one probe; return whether the verdict changed."""
        before = self.ok
        if success:
            self._successes, self._failures = self._successes + 1, 0
            if self._successes >= self.spec.success_threshold:
                self.ok = True
        else:
            self._successes, self._failures = 0, self._failures + 1
            if self._failures >= self.spec.failure_threshold:
                self.ok = False
        return self.ok != before
