"""`weft stat ts`: the canary view. Per backend of a TrafficSplit, the weight it was
given next to the share of traffic it got, with its success rate and latency, as the
clients' proxies saw the requests they sent to the apex Service."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from weft_cli.observe.golden import Figures, Golden, addressed_to, service_hosts
from weft_cli.observe.window import Window


@dataclass(frozen=True)
class Backend:
    service: str
    weight: int  # relative, as the operator reads it (v1alpha1 quantities in thousandths)
    written: str  # as the user wrote it: "900m", "90"


@dataclass(frozen=True)
class Split:
    namespace: str
    name: str
    apex: str
    backends: tuple[Backend, ...]


@dataclass(frozen=True)
class SplitRow:
    namespace: str
    split: str
    apex: str
    backend: str
    weight: str  # as written; "-" for traffic to a Service the split does not name
    weight_share: float | None
    traffic_share: float | None  # None: no traffic to the apex in the window
    figures: Figures

    def as_dict(self) -> dict[str, Any]:
        return {
            "namespace": self.namespace,
            "trafficsplit": self.split,
            "apex": self.apex,
            "backend": self.backend,
            "weight": self.weight,
            "weight_share": self.weight_share,
            "traffic_share": self.traffic_share,
            **self.figures.as_dict(),
        }


def split_stats(split: Split, window: Window, cluster_domain: str) -> list[SplitRow]:
    hosts = service_hosts(split.apex, split.namespace, cluster_domain)
    by_backend = {backend.service: Golden() for backend in split.backends}
    for series in window.series:
        if addressed_to(series, hosts, split.namespace):
            service = series.labels.get("dst_service", split.apex)
            by_backend.setdefault(service, Golden()).add(series)
    all_responses = sum(golden.responses for golden in by_backend.values())
    total_weight = sum(backend.weight for backend in split.backends)
    declared = {backend.service: backend for backend in split.backends}
    rows = []
    for service, golden in by_backend.items():
        declared_backend = declared.get(service)
        rows.append(
            SplitRow(
                namespace=split.namespace,
                split=split.name,
                apex=split.apex,
                backend=service,
                weight=declared_backend.written if declared_backend else "-",
                weight_share=(
                    declared_backend.weight / total_weight
                    if declared_backend and total_weight
                    else None
                ),
                traffic_share=golden.responses / all_responses if all_responses else None,
                figures=golden.figures(window.seconds),
            )
        )
    return rows
