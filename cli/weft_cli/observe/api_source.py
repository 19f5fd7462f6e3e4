"""Pods from the API server, and their proxies' metrics through its pod proxy
(`/api/v1/namespaces/NS/pods/NAME:4191/proxy/metrics`): nothing to expose, and the
user's own RBAC (pods/proxy) decides who may read them."""

from __future__ import annotations

from weft_api import mesh
from weft_cli.errors import CliError
from weft_cli.kube import Kube
from weft_cli.observe import pods
from weft_cli.observe.pods import PodInfo
from weft_cli.observe.sources import ProxyUnreachable

SCRAPE_TIMEOUT = 5.0


def metrics_path(pod: PodInfo) -> str:
    return (
        f"/api/v1/namespaces/{pod.namespace}/pods/{pod.name}:{mesh.PROXY_ADMIN_PORT}/proxy/metrics"
    )


class ApiDirectory:
    def __init__(self, kube: Kube) -> None:
        self.kube = kube

    async def pods(self, namespace: str | None) -> list[PodInfo]:
        path = f"/api/v1/namespaces/{namespace}/pods" if namespace else "/api/v1/pods"
        return [pods.from_api(pod) for pod in await self.kube.items(path)]


class PodProxyScraper:
    def __init__(self, kube: Kube, timeout: float = SCRAPE_TIMEOUT) -> None:
        self.kube = kube
        self.timeout = timeout

    async def scrape(self, pod: PodInfo) -> str:
        try:
            return await self.kube.get_text(metrics_path(pod), self.timeout)
        except CliError as error:
            raise ProxyUnreachable(
                f"the proxy of pod {pod.ref} did not answer through the API server: {error}"
            ) from None
