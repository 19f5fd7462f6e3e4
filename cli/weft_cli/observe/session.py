"""What the observability commands share: the cluster connection, pod directory and
metrics source their options choose, each made only when needed (proxies listed in a
file need no cluster; `--help` needs no Kubernetes client, so those load late)."""

from __future__ import annotations

import argparse
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from weft_cli import output
from weft_cli.errors import CliError
from weft_cli.observe.pods import PodInfo
from weft_cli.observe.window import Window
from weft_cli.options import DEFAULT_NAMESPACE, PROMETHEUS_WINDOW, SCRAPE_WINDOW

if TYPE_CHECKING:
    from weft_cli.kube import Kube
    from weft_cli.observe.sources import Directory, MetricsSource


def namespace_of(args: argparse.Namespace) -> str | None:
    """The namespace asked for; None for every namespace."""
    if getattr(args, "all_namespaces", False):
        return None
    return args.namespace or DEFAULT_NAMESPACE


def one_namespace(args: argparse.Namespace, what: str) -> str:
    namespace = namespace_of(args)
    if namespace is None:
        raise CliError(f"{what} reads one namespace at a time: give -n NAMESPACE")
    return namespace


def parse_duration(text: str, option: str) -> float:
    """`30s`, `1m`, `1m30s` in seconds."""
    from weft_resources.units import parse_go_duration_ms

    try:
        return parse_go_duration_ms(text) / 1000
    except ValueError:
        raise CliError(f"{option} {text!r} is not a duration such as 10s or 1m") from None


def window_seconds(args: argparse.Namespace) -> float:
    text = args.window or (PROMETHEUS_WINDOW if args.prometheus else SCRAPE_WINDOW)
    seconds = parse_duration(text, "--window")
    if seconds < 1:
        raise CliError("--window must be at least 1s: rates need two reads")
    return seconds


class Session:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self._kube: Kube | None = None

    async def __aenter__(self) -> Session:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if self._kube is not None:
            await self._kube.__aexit__(kind, error, trace)

    async def kube(self) -> Kube:
        from weft_cli.kube import Kube, KubeOptions

        if self._kube is None:
            self._kube = await Kube.connect(KubeOptions.of(self.args))
        return self._kube

    async def directory(self) -> Directory:
        if self.args.proxies_file:
            from weft_cli.observe.file_source import FileDirectory

            return FileDirectory(Path(self.args.proxies_file))
        from weft_cli.observe.api_source import ApiDirectory

        return ApiDirectory(await self.kube())

    async def metrics(self) -> MetricsSource:
        from weft_cli.observe.sources import ScrapedWindow

        if getattr(self.args, "prometheus", None):
            from weft_cli.observe.prometheus import PrometheusWindow

            return PrometheusWindow(self.args.prometheus)
        if self.args.proxies_file:
            from weft_cli.observe.file_source import DirectScraper

            return ScrapedWindow(DirectScraper())
        from weft_cli.observe.api_source import PodProxyScraper

        return ScrapedWindow(PodProxyScraper(await self.kube()))


async def traffic(session: Session, pods: list[PodInfo]) -> Window:
    """The traffic of `pods` over the window; a proxy that did not answer is a warning,
    unless none did."""
    seconds = window_seconds(session.args)
    with output.progress(f"measuring for {seconds:g}s ..."):
        window = await (await session.metrics()).window(pods, seconds)
    for reason in window.silent:
        output.warn(reason)
    return window


async def measure(session: Session, namespace: str | None) -> tuple[list[PodInfo], Window]:
    """The pods of `namespace` and their traffic."""
    window_seconds(session.args)  # a bad option fails before any I/O
    pods = await (await session.directory()).pods(namespace)
    return pods, await traffic(session, pods)
