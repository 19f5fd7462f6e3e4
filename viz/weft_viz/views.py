"""What each page shows, from pods, a window of traffic and resources: pure.

The figures are `weft stat`'s, computed by the CLI's own aggregations
(weft_cli.observe) from the same Prometheus queries; this module only adds what a page
needs beside them (the mTLS share, the graph's layout, resources' conditions).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from weft_cli.observe.edges import EdgeRow
from weft_cli.observe.golden import INBOUND, RESPONSES
from weft_cli.observe.pods import PodInfo
from weft_cli.observe.stats import DEPLOYMENT, NAMESPACE, ROLLOUT, workload_stats
from weft_cli.observe.window import Window

WORKLOAD_KINDS = (DEPLOYMENT, ROLLOUT)  # the kinds `weft stat` reads from Prometheus
CONDITION_TYPES = ("Accepted", "ResolvedRefs", "Ready", "Programmed")

Key = tuple[str, str]


def _mtls_shares(kind: str, pods: Sequence[PodInfo], window: Window) -> dict[Key, float | None]:
    """Per workload (or namespace): the share of the requests it served that came over
    mTLS, as its own proxies saw them (inbound `tls="true"`)."""
    key_of: dict[Key, Key] = {}
    for pod in pods:
        if kind == NAMESPACE:
            key_of[(pod.namespace, pod.name)] = ("", pod.namespace)
        elif pod.workload_kind == kind and pod.workload:
            key_of[(pod.namespace, pod.name)] = (pod.namespace, pod.workload)
    secured: dict[Key, float] = {}
    total: dict[Key, float] = {}
    for series in window.series:
        labels = series.labels
        if series.name != RESPONSES or labels.get("direction") != INBOUND:
            continue
        key = key_of.get((labels.get("namespace", ""), labels.get("pod", "")))
        if key is None:
            continue
        total[key] = total.get(key, 0.0) + series.value
        if labels.get("tls") == "true":
            secured[key] = secured.get(key, 0.0) + series.value
    return {key: secured.get(key, 0.0) / n if n else None for key, n in total.items()}


def namespace_rows(pods: Sequence[PodInfo], window: Window) -> list[dict[str, Any]]:
    shares = _mtls_shares(NAMESPACE, pods, window)
    return [
        {**row.as_dict(), "mtls_share": shares.get(("", row.name))}
        for row in workload_stats(NAMESPACE, pods, window)
    ]


def workload_rows(pods: Sequence[PodInfo], window: Window) -> list[dict[str, Any]]:
    """`weft stat deploy` (and `rollout`) rows, with each workload's mTLS share."""
    rows = []
    for kind in WORKLOAD_KINDS:
        shares = _mtls_shares(kind, pods, window)
        for row in workload_stats(kind, pods, window):
            share = shares.get((row.namespace, row.name))
            rows.append({"kind": kind, **row.as_dict(), "mtls_share": share})
    return rows


@dataclass(frozen=True)
class Node:
    id: str  # "ns/deploy/web"
    namespace: str
    name: str  # "deploy/web"
    rank: int  # column: 0 for workloads nobody calls
    order: int  # row within its column


def _node_id(namespace: str, name: str) -> str:
    return f"{namespace}/{name}"


def _ranks(nodes: Iterable[str], calls: Mapping[str, set[str]]) -> dict[str, int]:
    """Each node's column: one past the deepest caller on a path from a node nobody
    calls (a longest-path layering); a cycle is cut where the walk meets it again."""
    rank: dict[str, int] = {}
    called = {callee for callees in calls.values() for callee in callees}
    roots = sorted(n for n in nodes if n not in called) or sorted(nodes)[:1]
    for root in roots:
        stack: list[tuple[str, int, frozenset[str]]] = [(root, 0, frozenset())]
        while stack:
            node, depth, path = stack.pop()
            if node in path or rank.get(node, -1) >= depth:
                continue
            rank[node] = depth
            for callee in sorted(calls.get(node, ())):
                stack.append((callee, depth + 1, path | {node}))
    for node in nodes:  # only inside cycles no root reaches
        rank.setdefault(node, 0)
    return rank


def graph(rows: Sequence[EdgeRow]) -> dict[str, Any]:
    """Nodes in columns (callers left of callees) and the edges between them, for a
    drawing that stays readable with tens of workloads: no edge goes right to left
    except in a cycle, and each column is sorted by name."""
    calls: dict[str, set[str]] = {}
    names: dict[str, tuple[str, str]] = {}
    for row in rows:
        source = _node_id(row.src_namespace, row.src)
        target = _node_id(row.dst_namespace, row.dst)
        names[source] = (row.src_namespace, row.src)
        names[target] = (row.dst_namespace, row.dst)
        calls.setdefault(source, set()).add(target)
    ranks = _ranks(names, calls)
    columns: dict[int, list[str]] = {}
    for node in sorted(names):
        columns.setdefault(ranks[node], []).append(node)
    nodes = [
        Node(node, *names[node], rank, order)
        for rank, members in sorted(columns.items())
        for order, node in enumerate(members)
    ]
    edges = [
        {
            "source": _node_id(row.src_namespace, row.src),
            "target": _node_id(row.dst_namespace, row.dst),
            **row.as_dict(),
        }
        for row in rows
    ]
    return {"nodes": [node.__dict__ for node in nodes], "edges": edges}


def resource_row(kind: str, body: Mapping[str, Any]) -> dict[str, Any]:
    """A Weft resource as the resources page lists it: the conditions the operator
    writes, each with its reason and message ("2/3 proxies" for Programmed)."""
    metadata = body.get("metadata") or {}
    status = body.get("status") or {}
    found = {c.get("type"): c for c in status.get("conditions") or [] if isinstance(c, dict)}
    conditions = [
        {
            "type": kind_of,
            "status": found[kind_of].get("status", "Unknown") if kind_of in found else "",
            "reason": found.get(kind_of, {}).get("reason", ""),
            "message": found.get(kind_of, {}).get("message", ""),
        }
        for kind_of in CONDITION_TYPES
    ]
    proxies = status.get("proxies")
    return {
        "kind": kind,
        "namespace": metadata.get("namespace", ""),
        "name": metadata.get("name", ""),
        "generation": metadata.get("generation"),
        "conditions": conditions,
        "proxies": proxies if isinstance(proxies, dict) else None,
    }
