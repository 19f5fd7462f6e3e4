"""The dashboard's web app: one page (static/), JSON it polls, and tap as Server-Sent
Events. Reads go through `MeshReader`; errors come back as JSON with the reason, so
the page says what is wrong (Prometheus down, a kind not installed) instead of breaking.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from importlib import resources
from typing import Any

from aiohttp import web

from weft_api.proto import tap_pb2
from weft_cli.errors import CliError
from weft_cli.observe import tap_identity, tap_request, tap_stream
from weft_cli.observe.tap_identity import TapCredentials
from weft_viz.reader import MeshReader

log = logging.getLogger(__name__)
STATIC = resources.files("weft_viz").joinpath("static")
# Kubernetes names: what a namespace query parameter may be (it goes into API paths).
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
TAP_LIMIT = 1000  # events per tap stream, then the page reconnects
MAX_TAP_STREAMS = 8  # at once, across viewers: each one holds a stream per proxy
SSE_HEADERS = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}


@dataclass(frozen=True)
class DashboardSettings:
    tap: bool = False  # serve tap to whoever reaches the port (the install decides)
    weft_namespace: str = ""  # the control plane's, for the CLI's tap certificate
    trust_domain: str = "cluster.local"


TAP_CERTIFICATE_REUSE_S = 3600.0  # well within the leaf's 24 hours


class TapCertificate:
    """weft-cli's certificate, obtained once and reused by every tap stream: otherwise
    each would cost a TokenRequest, a port-forward and a CSR before its first event."""

    def __init__(self, reader: MeshReader, settings: DashboardSettings) -> None:
        self._reader = reader
        self._settings = settings
        self._held: TapCredentials | None = None
        self._obtained = 0.0
        self._lock = asyncio.Lock()

    async def __call__(self) -> TapCredentials:
        async with self._lock:
            now = time.monotonic()
            if self._held is None or now - self._obtained > TAP_CERTIFICATE_REUSE_S:
                settings = self._settings
                self._held = await tap_identity.certify(
                    self._reader.kube, settings.weft_namespace, settings.trust_domain
                )
                self._obtained = now
            return self._held


READER = web.AppKey("reader", MeshReader)
TAP_CERTIFICATE = web.AppKey("tap_certificate", TapCertificate)
SETTINGS = web.AppKey("settings", DashboardSettings)
TAP_SLOTS = web.AppKey("tap_slots", asyncio.Semaphore)


class BadRequest(ValueError):
    pass


def _namespace(request: web.Request, required: bool = True) -> str | None:
    namespace = request.query.get("namespace", "")
    if not namespace:
        if required:
            raise BadRequest("give ?namespace=NAME")
        return None
    if not _NAME.match(namespace) or len(namespace) > 63:
        raise BadRequest(f"{namespace!r} is not a namespace name")
    return namespace


Handler = Callable[[web.Request], Awaitable[Any]]


def json_view(read: Handler) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handler(request: web.Request) -> web.Response:
        try:
            body = await read(request)
        except BadRequest as error:
            return web.json_response({"error": str(error)}, status=400)
        except CliError as error:  # Prometheus or the API server: say which, and why
            return web.json_response({"error": str(error)}, status=502)
        return web.json_response(body)

    return handler


async def _namespaces(request: web.Request) -> Any:
    return await request.app[READER].namespaces()


async def _namespace_names(request: web.Request) -> Any:
    return {"namespaces": await request.app[READER].namespace_names()}


async def _workloads(request: web.Request) -> Any:
    return await request.app[READER].workloads(str(_namespace(request)))


async def _graph(request: web.Request) -> Any:
    return await request.app[READER].graph(_namespace(request, required=False))


async def _splits(request: web.Request) -> Any:
    return await request.app[READER].splits(str(_namespace(request)))


async def _routes(request: web.Request) -> Any:
    return await request.app[READER].routes(str(_namespace(request)))


async def _resources(request: web.Request) -> Any:
    return await request.app[READER].resources(str(_namespace(request)))


async def _config(request: web.Request) -> Any:
    reader = request.app[READER]
    return {
        "tap": request.app[SETTINGS].tap,
        "window_seconds": reader.settings.window_seconds,
        "prometheus": reader.settings.prometheus_url,
    }


def tap_filters(request: web.Request) -> tuple[str, tap_request.Target, tap_pb2.ObserveRequest]:
    """The namespace, the workload (`deploy/web`, `pod/x`; none: the namespace) and what
    each proxy filters on: path prefix and method."""
    namespace = str(_namespace(request))
    try:
        target = tap_request.parse_target(request.query.get("workload") or None)
    except CliError as error:
        raise BadRequest(str(error)) from None
    method = request.query.get("method", "").upper()
    if method and not method.isalpha():
        raise BadRequest(f"{method!r} is not an HTTP method")
    observe = tap_pb2.ObserveRequest(
        path_prefix=request.query.get("path", ""), method=method, limit=TAP_LIMIT
    )
    return namespace, target, observe


async def _tap(request: web.Request) -> web.StreamResponse:
    if not request.app[SETTINGS].tap:
        message = (
            "tap is off: it shows requests' paths and identities to whoever reaches this "
            "port. Turn it on with `weft viz install --tap`."
        )
        return web.json_response({"error": message}, status=403)
    try:
        namespace, target, observe = tap_filters(request)
        pods = await request.app[READER].pods(namespace)
        chosen = tap_request.select(pods, target)
    except BadRequest as error:
        return web.json_response({"error": str(error)}, status=400)
    except CliError as error:
        return web.json_response({"error": str(error)}, status=404)
    slots = request.app[TAP_SLOTS]
    if slots.locked():
        return web.json_response({"error": "too many tap streams open; try again"}, status=503)
    names = {pod.ip: pod.ref for pod in pods if pod.ip}
    async with slots:
        response = web.StreamResponse(headers=SSE_HEADERS)
        await response.prepare(request)
        warnings: list[str] = []
        certify = request.app[TAP_CERTIFICATE]
        with contextlib.suppress(ConnectionResetError, CliError):
            async for event in tap_stream.observe(chosen, observe, warnings.append, certify):
                data = {
                    **event.as_dict(),
                    "source_name": names.get(event.source.rpartition(":")[0], ""),
                    "destination_name": names.get(event.destination.rpartition(":")[0], ""),
                    "warnings": warnings[:],
                }
                warnings.clear()
                await response.write(f"data: {json.dumps(data)}\n\n".encode())
        return response


async def _ready(request: web.Request) -> web.Response:
    return web.Response(text="ready\n")


async def _index(request: web.Request) -> web.Response:
    return web.Response(
        text=STATIC.joinpath("index.html").read_text(), content_type="text/html", charset="utf-8"
    )


_STATIC_TYPES = {".js": "text/javascript", ".css": "text/css"}


async def _static(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    suffix = name[name.rfind(".") :] if "." in name else ""
    if "/" in name or suffix not in _STATIC_TYPES or not STATIC.joinpath(name).is_file():
        raise web.HTTPNotFound()
    return web.Response(
        text=STATIC.joinpath(name).read_text(), content_type=_STATIC_TYPES[suffix], charset="utf-8"
    )


def make_app(reader: MeshReader, settings: DashboardSettings) -> web.Application:
    app = web.Application()
    app[READER] = reader
    app[SETTINGS] = settings
    app[TAP_SLOTS] = asyncio.Semaphore(MAX_TAP_STREAMS)
    app[TAP_CERTIFICATE] = TapCertificate(reader, settings)
    app.router.add_get("/", _index)
    app.router.add_get("/static/{name}", _static)
    app.router.add_get("/ready", _ready)
    app.router.add_get("/api/config", json_view(_config))
    app.router.add_get("/api/namespace-names", json_view(_namespace_names))
    app.router.add_get("/api/namespaces", json_view(_namespaces))
    app.router.add_get("/api/workloads", json_view(_workloads))
    app.router.add_get("/api/graph", json_view(_graph))
    app.router.add_get("/api/splits", json_view(_splits))
    app.router.add_get("/api/routes", json_view(_routes))
    app.router.add_get("/api/resources", json_view(_resources))
    app.router.add_get("/api/tap", _tap)
    return app
