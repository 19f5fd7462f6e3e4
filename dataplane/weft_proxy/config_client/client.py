"""The proxy's config stream: hello, updates in, ACK/NACK out, reconnect forever.

- The last accepted config stays in the store across reconnections and control-plane
  restarts; a new stream's first (full) update replaces it only once accepted.
- `ready` turns true with the first accepted config and stays true.
- Reconnections wait a jittered, growing delay, reset once a stream delivers a config.
- Outbound services are subscribed to on first use (`outbound`), by authority or by
  cluster IP; subscriptions are re-sent in the hello of every new stream.
- With `credentials` (the proxy's workload certificate, as a client TLS context) the
  stream is mTLS and the server must prove `server_name`; each stream awaits the
  credentials anew, so the first waits for the first certificate and a renewal reaches
  the next stream while the current one goes on (the server ends a stream when its
  certificate expires). Without them, plain text (tests, `weft inject` offline).

gRPC is grpclib's, on the h2 the proxy loads anyway (grpcio would add ~15 MiB to every
pod: docs/benchmarks.md, "Proxy weight").
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Awaitable, Callable

from grpclib.client import Channel, Stream
from grpclib.config import Configuration
from grpclib.const import Status
from grpclib.exceptions import GRPCError, ProtocolError, StreamTerminatedError

import weft_api
from weft_api import config_proto
from weft_api.config import OutboundService, ProxyIdentity
from weft_api.proto import discovery_grpc
from weft_api.proto import discovery_pb2 as dpb
from weft_proxy.config_client.assembler import (
    ConfigAssembler,
    ProxySnapshot,
    UpdateRejected,
    Validator,
)
from weft_proxy.config_client.backoff import Backoff
from weft_proxy.config_client.store import ConfigStore

log = logging.getLogger(__name__)

KEEPALIVE_S = 30.0  # pings notice a control plane gone without a FIN
KEEPALIVE_TIMEOUT_S = 10.0
# What ends a stream, to reconnect after: a status, a reset or lost connection, a
# refused connection or handshake (ssl.SSLError is an OSError).
STREAM_ERRORS = (GRPCError, StreamTerminatedError, ProtocolError, OSError)
REFUSALS = (Status.PERMISSION_DENIED, Status.UNAUTHENTICATED)  # the server says who we are not


class StreamEnded(Exception):
    pass


Call = Stream[dpb.ProxyRequest, dpb.ConfigUpdate]


def split_address(address: str) -> tuple[str, int]:
    """`host:port` (a bracketed IPv6 host too) as (host, port)."""
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"{address!r} is not host:port")
    return host.strip("[]"), int(port)


def ended_reason(error: Exception) -> str:
    if isinstance(error, GRPCError):
        return f"{error.status.name}: {error.message}"
    return str(error) or type(error).__name__


class ConfigClient:
    def __init__(
        self,
        address: str,
        identity: ProxyIdentity,
        *,
        proxy_version: str = weft_api.__version__,
        validate: Validator | None = None,
        store: ConfigStore[ProxySnapshot] | None = None,
        backoff: Backoff | None = None,
        credentials: Callable[[], Awaitable[ssl.SSLContext]] | None = None,
        server_name: str | None = None,
    ) -> None:
        self.credentials = credentials
        self.server_name = server_name
        self.address = address
        self.host, self.port = split_address(address)
        self.identity = identity
        self.proxy_version = proxy_version
        self.validate = validate
        self.store: ConfigStore[ProxySnapshot] = store or ConfigStore()
        self.backoff = backoff or Backoff()
        self.last_error = ""  # why the last stream ended (logged, and for tests)
        self.streams = 0  # streams that delivered at least one config
        self._targets: dict[str, None] = {}
        self._outbox: asyncio.Queue[dpb.ProxyRequest] | None = None  # of the live stream

    @property
    def ready(self) -> bool:
        return self.store.current is not None

    def subscribe(self, *targets: str) -> None:
        new = [target for target in targets if target not in self._targets]
        self._targets.update(dict.fromkeys(new))
        if new:
            self._request(subscribe=dpb.Subscribe(type=dpb.RESOURCE_TYPE_OUTBOUND, names=new))

    def unsubscribe(self, *targets: str) -> None:
        gone = [target for target in targets if self._targets.pop(target, 0) is None]
        if gone:
            self._request(unsubscribe=dpb.Unsubscribe(type=dpb.RESOURCE_TYPE_OUTBOUND, names=gone))

    async def outbound(self, target: str) -> OutboundService | None:
        """The Service `target` resolves to (None: none), subscribing on first use."""
        self.subscribe(target)
        snapshot = await self.store.wait_for(lambda snapshot: target in snapshot.targets)
        return snapshot.targets[target]

    async def run(self) -> None:
        """Keep a stream open until cancelled."""
        while True:
            try:
                await self._stream()
            except (*STREAM_ERRORS, StreamEnded) as exc:
                self.last_error = ended_reason(exc)
                refused = isinstance(exc, GRPCError) and exc.status in REFUSALS
                log.log(
                    logging.WARNING if refused else logging.INFO,
                    "config stream to %s ended: %s",
                    self.address,
                    self.last_error,
                )
            delay = self.backoff.next()
            log.debug("reconnecting to %s in %.2fs", self.address, delay)
            await asyncio.sleep(delay)

    async def _channel(self) -> Channel:
        """A new connection per stream: it takes the credentials current now."""
        context = None if self.credentials is None else await self.credentials()
        config = Configuration(
            _keepalive_time=KEEPALIVE_S,
            _keepalive_timeout=KEEPALIVE_TIMEOUT_S,
            ssl_target_name_override=self.server_name if context is not None else None,
        )
        return Channel(self.host, self.port, ssl=context, config=config)

    async def _stream(self) -> None:
        async with await self._channel() as channel:
            stub = discovery_grpc.ConfigDiscoveryStub(channel)
            async with stub.Stream.open() as call:  # leaving it resets the stream
                # Subscriptions from now on queue behind the hello (the hello carries
                # those made before); the hello opens the stream, so reads may begin.
                outbox: asyncio.Queue[dpb.ProxyRequest] = asyncio.Queue()
                self._outbox = outbox
                writer: asyncio.Task[None] | None = None
                try:
                    await call.send_message(self._hello())
                    writer = asyncio.create_task(_write(call, outbox))
                    await self._receive(call, outbox)
                finally:
                    self._outbox = None
                    if writer is not None:
                        writer.cancel()
                        await asyncio.gather(writer, return_exceptions=True)

    async def _receive(self, call: Call, outbox: asyncio.Queue[dpb.ProxyRequest]) -> None:
        assembler = ConfigAssembler(self.identity, self.validate)
        delivered = False
        while True:
            update = await call.recv_message()
            if update is None:  # ended cleanly; a status other than OK raised GRPCError
                await call.recv_trailing_metadata()
                raise StreamEnded("the server closed the stream")
            try:
                snapshot = assembler.apply(update)
            except UpdateRejected as exc:
                log.warning("rejecting config %s: %s", update.version, exc)
                nack = dpb.Nack(nonce=update.nonce, version=update.version, error_detail=str(exc))
                outbox.put_nowait(dpb.ProxyRequest(nack=nack))
                continue
            self.store.publish(snapshot)
            outbox.put_nowait(
                dpb.ProxyRequest(ack=dpb.Ack(nonce=update.nonce, version=update.version))
            )
            if not delivered:
                delivered = True
                self.streams += 1
                self.backoff.reset()

    def _hello(self) -> dpb.ProxyRequest:
        hello = dpb.Hello(
            identity=config_proto.identity_to_proto(self.identity),
            proxy_version=self.proxy_version,
            targets=list(self._targets),
        )
        return dpb.ProxyRequest(hello=hello)

    def _request(
        self, subscribe: dpb.Subscribe | None = None, unsubscribe: dpb.Unsubscribe | None = None
    ) -> None:
        """Send on the live stream; without one, the next hello carries the targets."""
        if self._outbox is not None:
            self._outbox.put_nowait(dpb.ProxyRequest(subscribe=subscribe, unsubscribe=unsubscribe))


async def _write(call: Call, outbox: asyncio.Queue[dpb.ProxyRequest]) -> None:
    """The stream's only writer (one message at a time on a stream)."""
    try:
        while True:
            await call.send_message(await outbox.get())
    except STREAM_ERRORS:
        return  # the reader sees the stream end and reconnects
