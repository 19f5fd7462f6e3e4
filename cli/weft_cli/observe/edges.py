"""`weft edges`: who talks to whom, and with which identities. An edge is what a
client's proxy sent to a destination workload (outbound series: the server's identity,
whether it was mTLS); the client identity is what the destination's proxy saw
(inbound `client_id`) from that client's ServiceAccount."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from weft_cli.observe.golden import INBOUND, OUTBOUND, Figures, Golden
from weft_cli.observe.pods import PodInfo
from weft_cli.observe.window import Series, Window

_IDENTITY_INFIX = ".serviceaccount.identity."
# Workload kinds as kubectl's short names, and the labels that name a workload, best first.
SHORT = {
    "deployment": "deploy",
    "statefulset": "sts",
    "daemonset": "ds",
    "job": "job",
    "pod": "pod",
}
_DESTINATION_LABELS = ("deployment", "statefulset", "daemonset", "job", "pod")

Workload = tuple[str, str]  # (namespace, "deploy/web")


@dataclass(frozen=True)
class EdgeRow:
    src_namespace: str
    src: str
    dst_namespace: str
    dst: str
    client_id: str
    server_id: str
    secured: bool
    no_tls_reason: str
    figures: Figures

    def as_dict(self) -> dict[str, Any]:
        return {
            "src_namespace": self.src_namespace,
            "src": self.src,
            "dst_namespace": self.dst_namespace,
            "dst": self.dst,
            "client_id": self.client_id,
            "server_id": self.server_id,
            "secured": self.secured,
            "no_tls_reason": self.no_tls_reason,
            **self.figures.as_dict(),
        }


@dataclass
class _Edge:
    traffic: Golden = field(default_factory=Golden)
    server_ids: set[str] = field(default_factory=set)
    tls: set[str] = field(default_factory=set)
    no_tls_reasons: set[str] = field(default_factory=set)


def _source(labels: Mapping[str, str]) -> Workload | None:
    for kind in _DESTINATION_LABELS:
        if labels.get(kind):
            return labels.get("namespace", ""), f"{SHORT[kind]}/{labels[kind]}"
    return None


def _destination(labels: Mapping[str, str]) -> Workload:
    namespace = labels.get("dst_namespace", "")
    for kind in _DESTINATION_LABELS:
        if labels.get(f"dst_{kind}"):
            return namespace, f"{SHORT[kind]}/{labels[f'dst_{kind}']}"
    if labels.get("dst_service"):
        return namespace, f"svc/{labels['dst_service']}"
    return namespace, labels.get("target_addr", "?")


def _account(identity: str) -> tuple[str, str] | None:
    """`web.shop.serviceaccount.identity.cluster.local` -> ("shop", "web")."""
    left, infix, _ = identity.partition(_IDENTITY_INFIX)
    if not infix:
        return None
    account, _, namespace = left.rpartition(".")  # account names may hold dots
    return (namespace, account) if account else None


def _seen_clients(series: Sequence[Series]) -> dict[Workload, set[str]]:
    """Destination workload -> the client identities its proxies saw."""
    seen: dict[Workload, set[str]] = {}
    for one in series:
        workload = _source(one.labels)
        client_id = one.labels.get("client_id")
        if one.labels.get("direction") == INBOUND and workload and client_id:
            seen.setdefault(workload, set()).add(client_id)
    return seen


def edges(pods: Sequence[PodInfo], window: Window) -> list[EdgeRow]:
    accounts: dict[Workload, set[tuple[str, str]]] = {}
    for pod in pods:
        workload = _source(pod.labels())
        if workload:
            accounts.setdefault(workload, set()).add((pod.namespace, pod.service_account))
    found: dict[tuple[Workload, Workload], _Edge] = {}
    for series in window.series:
        source = _source(series.labels)
        if series.labels.get("direction") != OUTBOUND or source is None:
            continue
        edge = found.setdefault((source, _destination(series.labels)), _Edge())
        edge.traffic.add(series)
        if series.name == "response_total":
            edge.tls.add(series.labels.get("tls", ""))
            edge.server_ids.add(series.labels.get("server_id", ""))
            edge.no_tls_reasons.add(series.labels.get("no_tls_reason", ""))
    seen = _seen_clients(window.series)
    rows = []
    for (source, destination), edge in sorted(found.items()):
        if not edge.traffic.responses:
            continue
        client_ids = sorted(
            identity
            for identity in seen.get(destination, ())
            if _account(identity) in accounts.get(source, set())
        )
        rows.append(
            EdgeRow(
                src_namespace=source[0],
                src=source[1],
                dst_namespace=destination[0],
                dst=destination[1],
                client_id=",".join(client_ids),
                server_id=",".join(sorted(edge.server_ids - {""})),
                secured=edge.tls == {"true"},
                no_tls_reason=",".join(sorted(edge.no_tls_reasons - {""})),
                figures=edge.traffic.figures(window.seconds),
            )
        )
    return rows
