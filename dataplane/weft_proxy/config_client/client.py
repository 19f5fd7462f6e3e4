"""The proxy's config stream: hello, updates in, ACK/NACK out, reconnect forever.

- The last accepted config stays in the store across reconnections and control-plane
  restarts; a new stream's first (full) update replaces it only once accepted.
- `ready` turns true with the first accepted config and stays true.
- Reconnections wait a jittered, growing delay, reset once a stream delivers a config.
- Outbound services are subscribed to on first use (`outbound`), by authority or by
  cluster IP; subscriptions are re-sent in the hello of every new stream.
- With `credentials` (the proxy's workload certificate, as gRPC channel credentials)
  the stream is mTLS and the server must prove `server_name`; each stream awaits the
  credentials anew, so the first waits for the first certificate and a renewal reaches
  the next stream while the current one goes on (the server ends a stream when its
  certificate expires). Without them, plain text (tests, `weft inject` offline).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence

import grpc
from grpc import aio

import weft_api
from weft_api import config_proto
from weft_api.config import OutboundService, ProxyIdentity
from weft_api.proto import discovery_pb2 as dpb
from weft_api.proto import discovery_pb2_grpc as dpb_grpc
from weft_proxy.config_client.assembler import (
    ConfigAssembler,
    ProxySnapshot,
    UpdateRejected,
    Validator,
)
from weft_proxy.config_client.backoff import Backoff
from weft_proxy.config_client.store import ConfigStore

log = logging.getLogger(__name__)

CHANNEL_OPTIONS = (
    ("grpc.keepalive_time_ms", 30_000),  # notices a control plane gone without a FIN
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
)


class StreamEnded(Exception):
    pass


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
        channel_options: Sequence[tuple[str, int | str]] = CHANNEL_OPTIONS,
        credentials: Callable[[], Awaitable[grpc.ChannelCredentials]] | None = None,
        server_name: str | None = None,
    ) -> None:
        self.credentials = credentials
        self.server_name = server_name
        self.address = address
        self.identity = identity
        self.proxy_version = proxy_version
        self.validate = validate
        self.store: ConfigStore[ProxySnapshot] = store or ConfigStore()
        self.backoff = backoff or Backoff()
        self.channel_options = channel_options
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
            except (aio.AioRpcError, StreamEnded) as exc:
                reason = exc.details() if isinstance(exc, aio.AioRpcError) else str(exc)
                log.info("config stream to %s ended: %s", self.address, reason)
            delay = self.backoff.next()
            log.debug("reconnecting to %s in %.2fs", self.address, delay)
            await asyncio.sleep(delay)

    async def _channel(self) -> aio.Channel:
        if self.credentials is None:
            return aio.insecure_channel(self.address, options=self.channel_options)
        credentials = await self.credentials()
        options = list(self.channel_options)
        if self.server_name:
            options.append(("grpc.ssl_target_name_override", self.server_name))
        return aio.secure_channel(self.address, credentials, options=options)

    async def _stream(self) -> None:
        async with await self._channel() as channel:
            call = dpb_grpc.ConfigDiscoveryStub(channel).Stream()
            outbox: asyncio.Queue[dpb.ProxyRequest] = asyncio.Queue()
            outbox.put_nowait(self._hello())
            self._outbox = outbox
            writer = asyncio.create_task(_write(call, outbox))
            try:
                await self._receive(call, outbox)
            finally:
                self._outbox = None
                writer.cancel()
                call.cancel()

    async def _receive(
        self,
        call: aio.StreamStreamCall[dpb.ProxyRequest, dpb.ConfigUpdate],
        outbox: asyncio.Queue[dpb.ProxyRequest],
    ) -> None:
        assembler = ConfigAssembler(self.identity, self.validate)
        delivered = False
        while True:
            update = await call.read()
            if update is aio.EOF:
                raise StreamEnded("the server closed the stream")
            assert isinstance(update, dpb.ConfigUpdate)
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


async def _write(
    call: aio.StreamStreamCall[dpb.ProxyRequest, dpb.ConfigUpdate],
    outbox: asyncio.Queue[dpb.ProxyRequest],
) -> None:
    """The stream's only writer (gRPC allows one write at a time)."""
    try:
        while True:
            await call.write(await outbox.get())
    except (aio.AioRpcError, aio.UsageError, grpc.RpcError):
        return  # the reader sees the stream end and reconnects
