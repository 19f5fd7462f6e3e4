"""The HTTPS endpoints the API server calls, and health and metrics for people.

Handlers are thin: read the review, do the lookups the pure core needs, answer.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, generate_latest

from weft_operator.models import Server
from weft_webhooks.endpoints import CONVERT_PATH, INJECT_PATH, VALIDATE_PATH
from weft_webhooks.injection import InjectorSettings, Outcome, inject
from weft_webhooks.injection.decision import decide
from weft_webhooks.review import (
    ReviewError,
    admitted,
    conversion_response,
    denied,
    read_admission,
)
from weft_webhooks.validation import ValidationContext, needs_servers, problems

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Lookups:
    """What the handlers read from the cluster (functions, so tests can stand in)."""

    namespace_annotations: Callable[[str], Awaitable[Mapping[str, str]]]
    namespace_servers: Callable[[str], Awaitable[Sequence[Server]]]
    trust_anchors: Callable[[], Awaitable[str | None]]  # PEM; None while there are none


@dataclass(frozen=True, slots=True)
class Webhooks:
    injector: InjectorSettings
    cluster_domain: str
    lookups: Lookups

    async def inject(self, review: Any) -> dict[str, Any]:
        request = read_admission(review)
        try:
            annotations = await self.lookups.namespace_annotations(request.namespace)
        except Exception as error:  # failurePolicy Ignore: the pod is created as it is
            log.warning("pod in %s not injected: %s", request.namespace, error)
            warning = f"weft: not injected, namespace {request.namespace} unreadable: {error}"
            return admitted(request.uid, warnings=[warning])
        settings = self.injector
        if decide(request.object, annotations).outcome is Outcome.INJECTED:
            settings = replace(settings, trust_anchors_pem=await self._trust_anchors())
        injection = inject(request.object, annotations, settings)
        if injection.outcome is Outcome.NO_TRUST_ANCHORS:
            log.warning("pod in %s not injected: no trust anchors", request.namespace)
        return admitted(request.uid, injection.patch, injection.warnings)

    async def _trust_anchors(self) -> str:
        """The PEM, or "" when there is none or it cannot be read (injection decides)."""
        try:
            return await self.lookups.trust_anchors() or ""
        except Exception as error:
            log.warning("trust anchors unreadable: %s", error)
            return ""

    async def validate(self, review: Any) -> dict[str, Any]:
        request = read_admission(review)
        servers: Sequence[Server] = ()
        if needs_servers(request.object):
            try:
                servers = await self.lookups.namespace_servers(request.namespace)
            except Exception as error:  # failurePolicy Fail: refuse rather than guess
                message = f"weft cannot compare this Server with the namespace's others: {error}"
                return denied(request.uid, message, code=503)
        context = ValidationContext(cluster_domain=self.cluster_domain, servers=servers)
        found = problems(request.object, context)
        return denied(request.uid, "; ".join(found)) if found else admitted(request.uid)

    async def convert(self, review: Any) -> dict[str, Any]:
        return conversion_response(review)


def make_app(webhooks: Webhooks) -> web.Application:
    registry = CollectorRegistry()
    durations = Histogram(
        "weft_webhook_duration_seconds",
        "Time to answer one review, by webhook",
        ["webhook"],
        registry=registry,
        buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0),
    )

    def reviewing(
        name: str, answer: Callable[[Any], Awaitable[dict[str, Any]]]
    ) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def handle(request: web.Request) -> web.StreamResponse:
            started = time.perf_counter()
            try:
                body = await answer(await request.json())
            except (ReviewError, ValueError) as error:
                return web.Response(status=400, text=f"{error}\n")
            finally:
                durations.labels(name).observe(time.perf_counter() - started)
            return web.json_response(body)

        return handle

    async def healthy(request: web.Request) -> web.StreamResponse:
        return web.Response(text="ok\n")

    async def metrics(request: web.Request) -> web.StreamResponse:
        return web.Response(
            body=generate_latest(registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    app = web.Application()
    app.add_routes(
        [
            web.post(INJECT_PATH, reviewing("inject", webhooks.inject)),
            web.post(VALIDATE_PATH, reviewing("validate", webhooks.validate)),
            web.post(CONVERT_PATH, reviewing("convert", webhooks.convert)),
            web.get("/healthz", healthy),
            web.get("/readyz", healthy),
            web.get("/metrics", metrics),
        ]
    )
    return app
