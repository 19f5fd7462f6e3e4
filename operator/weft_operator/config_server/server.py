"""The config server's I/O: one grpc.aio bidirectional stream per proxy around the hub.

- Index changes are batched for `batch_window` seconds (from the first change), then
  the hub rebuilds what they affected and the updates go out.
- A stream must open with a hello within `hello_timeout`; a proxy that leaves an update
  unanswered for `ack_timeout` is disconnected (it reconnects and gets a full config).
- Whatever a proxy sends or does, the server answers for that stream only: it logs the
  reason, counts it, and ends that stream if it cannot go on.
- With `tls` the streams are mTLS: a proxy presents its workload certificate, and a
  hello is served only if that identity may read the config it names (`access`);
  otherwise PERMISSION_DENIED with the reason, counted by reason. A stream ends when
  its client certificate expires (the proxy reconnects with its renewed one). Without
  `tls` (tests, an operator without its identity service) anyone may read any config.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass, field

import grpc
from cryptography import x509
from grpc import aio

from weft_api.proto import discovery_pb2 as dpb
from weft_api.proto import discovery_pb2_grpc as dpb_grpc
from weft_operator import metrics
from weft_operator.config_server import access
from weft_operator.config_server.hub import ConfigHub, Outgoing
from weft_operator.config_server.protocol import Hello, ProtocolError, parse_request
from weft_operator.config_server.session import Reply
from weft_operator.reconciler import Change

log = logging.getLogger(__name__)

MAX_PROTOCOL_ERRORS = 10  # per stream, before the server ends it
KEEPALIVE = [
    ("grpc.keepalive_time_ms", 30_000),  # finds proxies that vanished without a FIN
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 1),
]


@dataclass(frozen=True)
class ServerTls:
    """The server's credentials (its leaf; client certificates required and verified
    against the trust roots) and the trust domain the proxies' identities are in."""

    credentials: grpc.ServerCredentials
    trust_domain: str


@dataclass(frozen=True)
class PeerCertificate:
    identities: tuple[str, ...]  # DNS SANs
    not_after: float  # seconds since the epoch


def peer_certificate(auth_context: Mapping[str, Iterable[bytes]]) -> PeerCertificate | None:
    """The verified client certificate of a stream, from grpc's auth context."""
    pems = list(auth_context.get("x509_pem_cert") or [])
    if not pems:
        return None
    cert = x509.load_pem_x509_certificate(pems[0])
    try:
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return PeerCertificate((), cert.not_valid_after_utc.timestamp())
    dns = tuple(names.get_values_for_type(x509.DNSName))
    return PeerCertificate(dns, cert.not_valid_after_utc.timestamp())


@dataclass
class _Connection:
    session_id: int
    name: str
    peer: str
    outbox: asyncio.Queue[dpb.ConfigUpdate] = field(default_factory=asyncio.Queue)
    cause: float | None = None  # when the change behind the update in flight happened
    sent_at: float | None = None
    protocol_errors: int = 0
    expires_at: float | None = None  # loop time at which its client certificate expires


class _StreamEnded(Exception):
    """Why the server ends one stream (logged, never raised past the stream)."""

    def __init__(self, code: grpc.StatusCode, reason: str) -> None:
        super().__init__(reason)
        self.code = code


class ConfigServer:
    def __init__(
        self,
        hub: ConfigHub,
        *,
        batch_window: float = 0.1,
        ack_timeout: float = 30.0,
        hello_timeout: float = 10.0,
        tls: ServerTls | None = None,
        pod_wait: float = 10.0,
    ) -> None:
        self.hub = hub
        self.batch_window = batch_window
        self.ack_timeout = ack_timeout
        self.hello_timeout = hello_timeout
        self.tls = tls
        self.pod_wait = pod_wait  # how long a hello waits for its pod to reach the index
        self._changed = asyncio.Event()  # replaced after each change: wakes waiting hellos
        self.waiting = 0  # hellos waiting for their pod to reach the index
        self._connections: dict[int, _Connection] = {}
        self._flush_handle: asyncio.TimerHandle | None = None
        self._batch_started = 0.0
        self._server: aio.Server | None = None

    async def start(self, address: str, port: int) -> int:
        """Listen on `address:port` (0: any free port); returns the port."""
        server = aio.server(options=KEEPALIVE)
        dpb_grpc.add_ConfigDiscoveryServicer_to_server(_Discovery(self), server)
        if self.tls is None:
            bound = server.add_insecure_port(f"{address}:{port}")
        else:
            bound = server.add_secure_port(f"{address}:{port}", self.tls.credentials)
        if bound == 0:
            raise OSError(f"the config server cannot listen on {address}:{port}")
        await server.start()
        self._server = server
        if self.tls is None:
            log.warning(
                "config server listening on %s:%d in plain text: any client may read any "
                "proxy's config (no identity service)",
                address,
                bound,
            )
        else:
            log.info("config server listening on %s:%d (mTLS)", address, bound)
        return bound

    async def stop(self, grace: float | None = 1.0) -> None:
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        if self._server is not None:
            await self._server.stop(grace)
            self._server = None

    # --- changes --------------------------------------------------------------------------

    def on_change(self, change: Change) -> None:
        """The Reconciler's listener: note at once, push after the batching window."""
        self.hub.note_change(change)
        self._wake()
        if self._flush_handle is None:
            loop = asyncio.get_running_loop()
            self._batch_started = loop.time()
            self._flush_handle = loop.call_later(self.batch_window, self._flush)

    def begin_serving(self) -> None:
        self._send(self.hub.begin_serving(), asyncio.get_running_loop().time())
        self._wake()

    def _wake(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    def _flush(self) -> None:
        self._flush_handle = None
        self._send(self.hub.flush(), self._batch_started)

    def _send(self, outgoing: list[Outgoing], cause: float) -> None:
        now = asyncio.get_running_loop().time()
        for item in outgoing:
            connection = self._connections.get(item.session_id)
            if connection is None:
                continue
            connection.cause, connection.sent_at = cause, now
            connection.outbox.put_nowait(item.update)  # one in flight: the queue stays short
            metrics.CONFIG_PUSHES.labels(kind="full" if item.update.full else "delta").inc()

    # --- streams --------------------------------------------------------------------------

    async def serve(
        self,
        requests: AsyncIterator[dpb.ProxyRequest],
        peer: str,
        certificate: PeerCertificate | None = None,
    ) -> AsyncIterator[dpb.ConfigUpdate]:
        """One stream: the hello, then updates out while a task reads requests in."""
        hello = await self._hello(requests, peer)
        if self.tls is not None:
            await self._admit(hello, peer, certificate)
        session_id, first = self.hub.connect(hello)
        connection = _Connection(session_id, self.hub.sessions[session_id].name, peer)
        if certificate is not None:
            loop = asyncio.get_running_loop()
            connection.expires_at = loop.time() + certificate.not_after - time.time()
        self._connections[session_id] = connection
        metrics.CONFIG_PROXIES.set(len(self._connections))
        log.info(
            "proxy %s connected from %s (version %r)", connection.name, peer, hello.proxy_version
        )
        self._send(first, asyncio.get_running_loop().time())
        reader = asyncio.create_task(self._read(connection, requests))
        try:
            while True:
                update = await self._next(connection, reader)
                yield update
        finally:
            reader.cancel()
            del self._connections[session_id]
            self.hub.disconnect(session_id)
            metrics.CONFIG_PROXIES.set(len(self._connections))
            log.info("proxy %s disconnected", connection.name)

    async def _hello(self, requests: AsyncIterator[dpb.ProxyRequest], peer: str) -> Hello:
        try:
            first = await asyncio.wait_for(anext(requests), self.hello_timeout)
        except TimeoutError:
            raise _StreamEnded(
                grpc.StatusCode.DEADLINE_EXCEEDED, f"no hello within {self.hello_timeout:.0f}s"
            ) from None
        except StopAsyncIteration:
            raise _StreamEnded(grpc.StatusCode.CANCELLED, "closed before its hello") from None
        try:
            request = parse_request(first)
        except ProtocolError as exc:
            metrics.CONFIG_PROTOCOL_ERRORS.labels(reason=exc.reason).inc()
            raise _StreamEnded(grpc.StatusCode.INVALID_ARGUMENT, str(exc)) from None
        if not isinstance(request, Hello):
            metrics.CONFIG_PROTOCOL_ERRORS.labels(reason="no-hello").inc()
            raise _StreamEnded(
                grpc.StatusCode.INVALID_ARGUMENT, "the first request must be a hello"
            )
        return request

    async def _admit(self, hello: Hello, peer: str, certificate: PeerCertificate | None) -> None:
        """Serve `hello` only to a peer whose identity may read it; the pod it names may
        reach the index a little after its proxy connects, so wait for it a while."""
        assert self.tls is not None
        loop = asyncio.get_running_loop()
        stream_peer = access.peer_of(peer, certificate.identities if certificate else ())
        deadline: float | None = None
        while True:
            changed = self._changed
            if self.hub.serving:
                pod = access.hello_pod(self.hub.cache.index, hello)
                if pod is not None or (deadline is not None and loop.time() >= deadline):
                    break
                if deadline is None:
                    deadline = loop.time() + self.pod_wait
            timeout = None if deadline is None else max(0.0, deadline - loop.time())
            self.waiting += 1
            try:
                await asyncio.wait_for(changed.wait(), timeout)
            except TimeoutError:
                pass
            finally:
                self.waiting -= 1
        refusal = access.check(self.hub.cache.index, hello, stream_peer, self.tls.trust_domain, pod)
        if refusal is not None:
            metrics.CONFIG_REFUSALS.labels(reason=refusal.reason).inc()
            raise _StreamEnded(grpc.StatusCode.PERMISSION_DENIED, f"refused: {refusal}")

    async def _next(self, connection: _Connection, reader: asyncio.Task[None]) -> dpb.ConfigUpdate:
        """The next update to send; ends the stream when the reader ends or ACKs stall."""
        loop = asyncio.get_running_loop()
        getter = asyncio.ensure_future(connection.outbox.get())
        try:
            while True:
                deadline = self._deadline(connection)
                timeout = None if deadline is None else max(0.0, deadline - loop.time())
                done, _ = await asyncio.wait(
                    {getter, reader}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
                )
                if getter in done:
                    return getter.result()
                if reader in done:
                    error = reader.exception()
                    if error is None:
                        raise _StreamEnded(grpc.StatusCode.OK, "the proxy closed its stream")
                    raise error
                expires = connection.expires_at
                if expires is not None and loop.time() >= expires:
                    raise _StreamEnded(
                        grpc.StatusCode.UNAUTHENTICATED,
                        "the client certificate expired: reconnect with the renewed one",
                    )
                deadline = self._ack_deadline(connection)
                if deadline is not None and loop.time() >= deadline:
                    raise _StreamEnded(
                        grpc.StatusCode.DEADLINE_EXCEEDED,
                        f"no ACK or NACK within {self.ack_timeout:g}s",
                    )
        finally:
            getter.cancel()

    def _deadline(self, connection: _Connection) -> float | None:
        """The next moment the stream must be looked at: an ACK due, or expiry."""
        found = [
            moment
            for moment in (self._ack_deadline(connection), connection.expires_at)
            if moment is not None
        ]
        return min(found, default=None)

    def _ack_deadline(self, connection: _Connection) -> float | None:
        """When the update in flight, if any, must have been answered."""
        session = self.hub.sessions.get(connection.session_id)
        if session is None or session.sent is None or connection.sent_at is None:
            return None
        return connection.sent_at + self.ack_timeout

    async def _read(
        self, connection: _Connection, requests: AsyncIterator[dpb.ProxyRequest]
    ) -> None:
        async for message in requests:
            try:
                handled = self.hub.handle(connection.session_id, parse_request(message))
            except ProtocolError as exc:
                metrics.CONFIG_PROTOCOL_ERRORS.labels(reason=exc.reason).inc()
                connection.protocol_errors += 1
                log.warning("proxy %s: request refused: %s", connection.name, exc)
                if connection.protocol_errors >= MAX_PROTOCOL_ERRORS:
                    raise _StreamEnded(
                        grpc.StatusCode.INVALID_ARGUMENT,
                        f"{MAX_PROTOCOL_ERRORS} refused requests; last: {exc}",
                    ) from None
                continue
            if handled.reply is not None:
                self._count_reply(connection, handled.reply)
            self._send(handled.outgoing, asyncio.get_running_loop().time())

    def _count_reply(self, connection: _Connection, reply: Reply) -> None:
        if reply is Reply.STALE:
            metrics.CONFIG_PROTOCOL_ERRORS.labels(reason="stale-reply").inc()
            log.warning("proxy %s answered no update in flight (stale nonce)", connection.name)
            return
        metrics.CONFIG_REPLIES.labels(reply=reply.value).inc()
        if connection.cause is not None:
            loop = asyncio.get_running_loop()
            metrics.CONFIG_PUSH_SECONDS.observe(loop.time() - connection.cause)
        if reply is Reply.NACKED:
            session = self.hub.sessions[connection.session_id]
            log.warning(
                "proxy %s rejected config %s (keeps its last accepted one): %s",
                connection.name,
                session.rejected,
                session.last_error,
            )


class _Discovery(dpb_grpc.ConfigDiscoveryServicer):
    def __init__(self, server: ConfigServer) -> None:
        self._server = server

    async def Stream(
        self,
        request_iterator: AsyncIterator[dpb.ProxyRequest],
        context: aio.ServicerContext[dpb.ProxyRequest, dpb.ConfigUpdate],
    ) -> AsyncIterator[dpb.ConfigUpdate]:
        peer = context.peer()
        try:
            certificate = peer_certificate(context.auth_context())
            async for update in self._server.serve(request_iterator, peer, certificate):
                yield update
        except _StreamEnded as ended:
            if ended.code is grpc.StatusCode.OK:
                return
            log.warning("ending the config stream of %s: %s", peer, ended)
            await context.abort(ended.code, str(ended))
        except (grpc.RpcError, aio.AioRpcError, aio.UsageError) as exc:
            log.warning("config stream of %s failed: %s", peer, exc)
        except Exception as exc:
            # a request the gRPC layer could not decode ends up here too
            log.warning("config stream of %s failed: %s: %s", peer, type(exc).__name__, exc)
            await context.abort(grpc.StatusCode.INTERNAL, f"{type(exc).__name__}: {exc}")
