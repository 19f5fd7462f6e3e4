"""The HTTPS endpoints the API server calls, and health and metrics for people.

Handlers are thin: read the review, do the lookups the pure core needs, answer.

A review is read up to `MAX_REVIEW_BYTES`: more than the API server sends for any object
it can store (a request body is at most 3 MiB, an object in etcd about 1.5 MiB, and an
update's review holds the object twice). aiohttp's default, 1 MiB, refused updates of
objects from about 512 KiB with a bare 413, which the API server shows as "the server
responded with the status code 413 but did not return more information". A larger
review is answered from its head (`review.uid_in_head`) in the webhook's own terms: the
injector admits the pod unmeshed with a warning (its failurePolicy is Ignore anyway),
the validator refuses with the size and the limit, the converter fails with both.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from aiohttp import StreamReader, web
from aiohttp.typedefs import Handler
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, generate_latest

from weft_resources import Server
from weft_webhooks.endpoints import CONVERT_PATH, INJECT_PATH, VALIDATE_PATH
from weft_webhooks.injection import InjectorSettings, Outcome, inject
from weft_webhooks.injection.decision import decide
from weft_webhooks.review import (
    ReviewError,
    admitted,
    conversion_failed,
    conversion_response,
    denied,
    read_admission,
    too_large,
    uid_in_head,
)
from weft_webhooks.validation import ValidationContext, needs_servers, problems, warnings

log = logging.getLogger(__name__)

MAX_REVIEW_BYTES = 8 * 2**20
_HEAD_BYTES = 64 * 2**10  # kept of a review too large to read whole, to find its uid
_MAX_DRAINED = 8 * MAX_REVIEW_BYTES  # read and dropped, at most, before answering it
_MAX_SHOWN_PROBLEMS = 5  # in one refusal; then how many more


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
        if len(found) > _MAX_SHOWN_PROBLEMS:
            found = [*found[:_MAX_SHOWN_PROBLEMS], f"and {len(found) - _MAX_SHOWN_PROBLEMS} more"]
        if found:
            return denied(request.uid, "; ".join(found))
        return admitted(request.uid, warnings=warnings(request.object))

    async def convert(self, review: Any) -> dict[str, Any]:
        return conversion_response(review)


# What each webhook answers to a review too large to read, by its uid, with the reason.
def _inject_too_large(uid: str, reason: str) -> dict[str, Any]:
    return admitted(uid, warnings=[f"weft: not injected, the pod is too large: {reason}"])


def _validate_too_large(uid: str, reason: str) -> dict[str, Any]:
    message = (
        f"weft cannot validate this object: {reason}; an update sends it twice (as it is "
        "and as it was): make it smaller, e.g. split it into several objects"
    )
    return denied(uid, message, code=413)


def _convert_too_large(uid: str, reason: str) -> dict[str, Any]:
    return conversion_failed(
        uid, f"{reason}; list fewer objects at once (e.g. kubectl get --chunk-size=50)"
    )


@dataclass(frozen=True, slots=True)
class _TooLarge:
    head: bytes  # the first bytes, where the API server writes the request's uid
    size: int | None  # None: unknown (sent without a Content-Length, and past _MAX_DRAINED)


async def _read_body(request: web.Request, limit: int) -> bytes | _TooLarge:
    """The body, or its head and size once it is known to exceed `limit`."""
    declared = request.content_length
    body = bytearray()
    async for chunk in request.content.iter_any():
        body += chunk
        if len(body) > limit or (declared or 0) > limit:
            return await _drain(body, request.content, declared)
    return bytes(body)


async def _drain(start: bytearray, stream: StreamReader, declared: int | None) -> _TooLarge:
    """Reads the rest and keeps only the head, so the client has sent its whole request
    when it gets the answer; past `_MAX_DRAINED`, aiohttp closes the connection."""
    head, size = start[:_HEAD_BYTES], len(start)
    async for chunk in stream.iter_any():
        head += chunk[: max(_HEAD_BYTES - len(head), 0)]
        size += len(chunk)
        if size > _MAX_DRAINED:
            return _TooLarge(bytes(head), declared)
    return _TooLarge(bytes(head), size)


def make_app(webhooks: Webhooks, stopping: asyncio.Event | None = None) -> web.Application:
    """The webhooks' routes. Once `stopping` is set, each answer closes its connection:
    the API server pools connections by the Service's name, so without that it would
    keep sending calls down one to a replica on its way out, and a call crossing the
    final close is lost (it retries no POST)."""
    stopping = stopping or asyncio.Event()
    registry = CollectorRegistry()
    durations = Histogram(
        "weft_webhook_duration_seconds",
        "Time to answer one review, by webhook",
        ["webhook"],
        registry=registry,
        buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0),
    )

    def reviewing(
        name: str,
        answer: Callable[[Any], Awaitable[dict[str, Any]]],
        refuse: Callable[[str, str], dict[str, Any]],
    ) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def handle(request: web.Request) -> web.StreamResponse:
            started = time.perf_counter()
            try:
                body = await _read_body(request, MAX_REVIEW_BYTES)
                if isinstance(body, _TooLarge):
                    return _too_large(name, body, refuse)
                answered = await answer(json.loads(body))
            except (ReviewError, ValueError) as error:
                return web.Response(status=400, text=f"{error}\n")
            finally:
                durations.labels(name).observe(time.perf_counter() - started)
            return web.json_response(answered)

        return handle

    async def healthy(request: web.Request) -> web.StreamResponse:
        return web.Response(text="ok\n")

    async def metrics(request: web.Request) -> web.StreamResponse:
        return web.Response(
            body=generate_latest(registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    @web.middleware
    async def close_when_stopping(request: web.Request, handler: Handler) -> web.StreamResponse:
        response = await handler(request)
        if stopping.is_set():
            response.force_close()  # `Connection: close`: the next call dials a ready replica
        return response

    # Handlers read bodies themselves.
    app = web.Application(client_max_size=MAX_REVIEW_BYTES, middlewares=[close_when_stopping])
    app.add_routes(
        [
            web.post(INJECT_PATH, reviewing("inject", webhooks.inject, _inject_too_large)),
            web.post(VALIDATE_PATH, reviewing("validate", webhooks.validate, _validate_too_large)),
            web.post(CONVERT_PATH, reviewing("convert", webhooks.convert, _convert_too_large)),
            web.get("/healthz", healthy),
            web.get("/readyz", healthy),
            web.get("/metrics", metrics),
        ]
    )
    return app


def _too_large(
    name: str, body: _TooLarge, refuse: Callable[[str, str], dict[str, Any]]
) -> web.StreamResponse:
    reason = too_large(body.size, MAX_REVIEW_BYTES)
    log.warning("%s: a review not read, %s", name, reason)
    uid = uid_in_head(body.head)
    if uid is None:  # not as the API server writes reviews: plain HTTP, for people
        return web.Response(status=413, text=f"weft {name} webhook: {reason}\n")
    return web.json_response(refuse(uid, reason))
