"""`weft stat deploy|rollout|rs|pod|ns`: the golden metrics of workloads, as their own proxies
see the requests they serve (inbound), with how many of their pods are meshed."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from weft_cli.observe.golden import INBOUND, Figures, Golden
from weft_cli.observe.pods import PodInfo
from weft_cli.observe.window import Window

DEPLOYMENT, POD, NAMESPACE = "deployment", "pod", "namespace"
ROLLOUT, REPLICA_SET = "rollout", "replicaset"  # an Argo Rollout; any ReplicaSet
KINDS = (DEPLOYMENT, ROLLOUT, REPLICA_SET, POD, NAMESPACE)

Key = tuple[str, str]  # (namespace, name)


@dataclass(frozen=True)
class StatRow:
    namespace: str
    name: str
    meshed: int
    pods: int
    figures: Figures

    def as_dict(self) -> dict[str, Any]:
        return {
            "namespace": self.namespace,
            "name": self.name,
            "meshed_pods": self.meshed,
            "pods": self.pods,
            **self.figures.as_dict(),
        }


def counted_under(kind: str, pod: PodInfo) -> str:
    """The name of the row of `kind` a pod counts in; "" when none."""
    if kind == NAMESPACE:
        return pod.namespace
    if kind == POD:
        return pod.name
    if kind == REPLICA_SET:
        return pod.replica_set
    return pod.workload if pod.workload_kind == kind else ""


def _pod_key(kind: str) -> Callable[[PodInfo], Key | None]:
    def key(pod: PodInfo) -> Key | None:
        name = counted_under(kind, pod)
        if not name:
            return None
        return ("", name) if kind == NAMESPACE else (pod.namespace, name)

    return key


def _series_key(kind: str, labels: Any) -> Key | None:
    namespace = labels.get("namespace", "")
    if kind == NAMESPACE:
        return ("", namespace)
    name = labels.get("pod" if kind == POD else "deployment")
    return (namespace, name) if name else None


def workload_stats(
    kind: str, pods: Sequence[PodInfo], window: Window, name: str | None = None
) -> list[StatRow]:
    """One row per workload of `kind` among `pods` (all of them, meshed or not, so the
    MESHED column tells what is missing), sorted; only `name` when given."""
    key_of = _pod_key(kind)
    members: dict[Key, list[PodInfo]] = {}
    for pod in pods:
        key = key_of(pod)
        if key is not None and (name is None or key[1] == name):
            members.setdefault(key, []).append(pod)
    totals = {key: Golden() for key in members}
    # Rollouts and ReplicaSets by their pods: Linkerd's scrape labels name neither.
    by_pod = {
        (pod.namespace, pod.name): key
        for key, group in members.items()
        for pod in group
        if kind in (ROLLOUT, REPLICA_SET)
    }
    for series in window.series:
        if series.labels.get("direction") != INBOUND:
            continue
        if by_pod:
            pod_key = (series.labels.get("namespace", ""), series.labels.get("pod", ""))
            key = by_pod.get(pod_key)
        else:
            key = _series_key(kind, series.labels)
        if key is not None and key in totals:
            totals[key].add(series)
    return [
        StatRow(
            namespace=key[0],
            name=key[1],
            meshed=sum(pod.meshed for pod in group),
            pods=len(group),
            figures=totals[key].figures(window.seconds),
        )
        for key, group in sorted(members.items())
    ]
