"""Proxies reached directly, listed in a YAML file: for proxies outside Kubernetes
(a developer's machine, tests) or port-forwarded ones."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import yaml

from weft_cli.errors import CliError
from weft_cli.observe.pods import PodInfo
from weft_cli.observe.sources import ProxyUnreachable

WORKLOAD_KINDS = ("deployment", "rollout", "statefulset", "daemonset", "job")
SCRAPE_TIMEOUT = 5.0


REQUIRED = ("namespace", "pod", "admin")


def parse_proxies(text: str, source: str) -> list[PodInfo]:
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise CliError(f"{source} is not YAML: {error}".splitlines()[0]) from None
    entries = document.get("proxies") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        raise CliError(
            f"{source} is not a proxies file: it needs a `proxies:` list (weft stat --help)"
        )
    pods = []
    for number, entry in enumerate(entries, 1):
        if not isinstance(entry, dict) or not all(entry.get(key) for key in REQUIRED):
            raise CliError(f"{source}: proxy {number} needs {', '.join(REQUIRED)}")
        pods.append(_entry(entry))
    return pods


def _entry(entry: dict[str, Any]) -> PodInfo:
    kind = next((k for k in WORKLOAD_KINDS if k in entry), "")
    return PodInfo(
        namespace=str(entry["namespace"]),
        name=str(entry["pod"]),
        workload_kind=kind,
        workload=str(entry.get(kind, "")),
        replica_set=str(entry.get("replicaset", "")),
        service_account=str(entry.get("serviceAccount", "default")),
        proxy_version="",  # meshed, version unknown
        phase="Running",
        proxy_ready=True,
        admin_address=str(entry["admin"]),
        tap_address=str(entry.get("tap", "")),
    )


class FileDirectory:
    def __init__(self, path: Path) -> None:
        try:
            text = path.read_text()
        except OSError as error:
            raise CliError(f"cannot read {path}: {error.strerror}") from None
        self.all = parse_proxies(text, str(path))

    async def pods(self, namespace: str | None) -> list[PodInfo]:
        return [pod for pod in self.all if namespace is None or pod.namespace == namespace]


class DirectScraper:
    def __init__(self, timeout: float = SCRAPE_TIMEOUT) -> None:
        self.timeout = aiohttp.ClientTimeout(total=timeout)

    async def scrape(self, pod: PodInfo) -> str:
        url = f"http://{pod.admin_address}/metrics"
        try:
            async with (
                aiohttp.ClientSession(timeout=self.timeout) as session,
                session.get(url) as response,
            ):
                if response.status != 200:
                    raise ProxyUnreachable(
                        f"the proxy of pod {pod.ref} answered {response.status} at {url}"
                    )
                return await response.text()
        except (TimeoutError, aiohttp.ClientError, OSError) as error:
            reason = str(error) or type(error).__name__
            raise ProxyUnreachable(
                f"the proxy of pod {pod.ref} did not answer at {url}: {reason}"
            ) from None
