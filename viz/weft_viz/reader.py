"""The dashboard's reads: pods and Weft's resources from the API server (with the
dashboard's read-only ServiceAccount), traffic from Prometheus with `weft stat`'s own
queries (weft_cli.observe.prometheus), aggregated by the CLI's own functions."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from weft_cli.errors import CliError
from weft_cli.kube import Kube, NotFound
from weft_cli.observe.api_source import ApiDirectory
from weft_cli.observe.edges import edges
from weft_cli.observe.pods import PodInfo
from weft_cli.observe.prometheus import MIN_WINDOW_SECONDS, PrometheusWindow
from weft_cli.observe.resources import service_profiles, traffic_splits
from weft_cli.observe.routes import route_stats
from weft_cli.observe.splits import split_stats
from weft_cli.observe.window import Window
from weft_resources.kinds import WATCHED
from weft_viz import views

DEFAULT_WINDOW_SECONDS = 60  # `weft stat --prometheus`'s default window (1m)


@dataclass(frozen=True)
class ReaderSettings:
    prometheus_url: str
    window_seconds: int = DEFAULT_WINDOW_SECONDS
    cluster_domain: str = "cluster.local"


class MeshReader:
    def __init__(self, kube: Kube, settings: ReaderSettings) -> None:
        self.kube = kube
        self.settings = settings
        self.directory = ApiDirectory(kube)
        self.prometheus = PrometheusWindow(settings.prometheus_url)

    async def pods(self, namespace: str | None) -> list[PodInfo]:
        return await self.directory.pods(namespace)

    async def window(self, pods: Sequence[PodInfo]) -> Window:
        seconds = max(MIN_WINDOW_SECONDS, self.settings.window_seconds)
        return await self.prometheus.window(pods, seconds)

    async def _measured(self, namespace: str | None) -> tuple[list[PodInfo], Window]:
        pods = await self.pods(namespace)
        return pods, await self.window(pods)

    async def namespaces(self) -> dict[str, Any]:
        pods, window = await self._measured(None)
        return {"window_seconds": window.seconds, "rows": views.namespace_rows(pods, window)}

    async def workloads(self, namespace: str) -> dict[str, Any]:
        pods, window = await self._measured(namespace)
        return {"window_seconds": window.seconds, "rows": views.workload_rows(pods, window)}

    async def graph(self, namespace: str | None) -> dict[str, Any]:
        # Edges leave the namespace: the callers' series are in theirs, so read all.
        pods, window = await self._measured(None)
        rows = [
            row
            for row in edges(pods, window)
            if namespace is None or namespace in (row.src_namespace, row.dst_namespace)
        ]
        return {"window_seconds": window.seconds, **views.graph(rows)}

    async def splits(self, namespace: str) -> dict[str, Any]:
        found, invalid = await traffic_splits(self.kube, namespace, None)
        _pods, window = await self._measured(namespace)  # the clients in its namespace
        domain = self.settings.cluster_domain
        splits = [
            {
                "name": split.name,
                "apex": split.apex,
                "backends": [row.as_dict() for row in split_stats(split, window, domain)],
            }
            for split in found
        ]
        return {"window_seconds": window.seconds, "splits": splits, "invalid": invalid}

    async def routes(self, namespace: str) -> dict[str, Any]:
        domain = self.settings.cluster_domain
        found, invalid = await service_profiles(self.kube, namespace, None, domain)
        _pods, window = await self._measured(namespace)
        profiles = [
            {
                "name": profile.name,
                "service": profile.service,
                "routes": [row.as_dict() for row in route_stats(profile, window)],
            }
            for profile in found
        ]
        return {"window_seconds": window.seconds, "profiles": profiles, "invalid": invalid}

    async def resources(self, namespace: str) -> dict[str, Any]:
        """Every Weft (SMI, Linkerd) resource of the namespace with its conditions; a
        kind this cluster does not serve is listed as missing."""
        kinds = [watched for watched in WATCHED if watched.reports_status]

        async def listed(path: str) -> list[dict[str, Any]] | None:
            try:
                return await self.kube.items(path)
            except NotFound:
                return None

        answers = await asyncio.gather(
            *(listed(f"/apis/{w.api_version}/namespaces/{namespace}/{w.plural}") for w in kinds)
        )
        rows, missing = [], []
        for watched, items in zip(kinds, answers, strict=True):
            if items is None:
                missing.append(watched.plural)
                continue
            rows += [views.resource_row(watched.kind.value, item) for item in items]
        return {"rows": rows, "missing_kinds": missing}

    async def namespace_names(self) -> list[str]:
        try:
            listed = await self.kube.items("/api/v1/namespaces")
        except CliError:
            raise
        return sorted(item["metadata"]["name"] for item in listed)
