"""A canary rollout on the cluster: every window, read the split's traffic from the
clients' proxies (as `weft stat ts` does), judge the canary, and shift the
TrafficSplit's weights; a live table shows each window. Flagger's loop, in small."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from rich.table import Table

from weft_cli.canary.steps import CanaryPolicy, Verdict, judge, next_weight
from weft_cli.canary.table import canary_table
from weft_cli.kube import Kube
from weft_cli.observe import resources
from weft_cli.observe.api_source import ApiDirectory, PodProxyScraper
from weft_cli.observe.sources import ScrapedWindow
from weft_cli.observe.splits import SplitRow, split_stats

SPLIT_API = "/apis/split.smi-spec.io/v1alpha2"  # the version the sample is written in


@dataclass
class Rollout:
    kube: Kube
    namespace: str
    split: str  # the TrafficSplit, named after its apex Service
    primary: str
    canary: str
    policy: CanaryPolicy
    window_s: float = 5.0
    cluster_domain: str = "cluster.local"

    @property
    def _path(self) -> str:
        return f"{SPLIT_API}/namespaces/{self.namespace}/trafficsplits/{self.split}"

    async def set_weight(self, canary_weight: int) -> None:
        """Write the weights as a user (or Flagger) would: the whole object, replaced."""
        body = await self.kube.get(self._path)
        body["spec"]["backends"] = [
            {"service": self.primary, "weight": 100 - canary_weight},
            {"service": self.canary, "weight": canary_weight},
        ]
        await self.kube.call("PUT", self._path, body=body)

    async def measure(self) -> list[SplitRow]:
        pods = await ApiDirectory(self.kube).pods(self.namespace)
        window = await ScrapedWindow(PodProxyScraper(self.kube)).window(pods, self.window_s)
        splits, invalid = await resources.traffic_splits(self.kube, self.namespace, self.split)
        if not splits:
            raise RuntimeError(invalid[0] if invalid else f"no TrafficSplit {self.split}")
        rows = split_stats(splits[0], window, self.cluster_domain)
        return sorted(rows, key=lambda row: row.backend)

    async def run(self, show: Callable[[Table], None], max_windows: int = 40) -> Verdict:
        """Step the canary from 0 to 100% while it stays healthy; roll it back to 0 at
        the first unhealthy window. HOLD if `max_windows` pass without a decision."""
        weight = 0
        await self.set_weight(weight)
        title = f"canary {self.namespace}/{self.split}: {self.primary} -> {self.canary}"
        for _ in range(max_windows):
            rows = await self.measure()
            canary = next((row.figures for row in rows if row.backend == self.canary), None)
            verdict = judge(weight, canary, self.policy)
            show(canary_table(title, rows, weight, verdict))
            if verdict is Verdict.DONE:
                return verdict
            weight = next_weight(weight, verdict, self.policy)
            await self.set_weight(weight)
            if verdict is Verdict.ROLLBACK:
                return verdict
        return Verdict.HOLD
