"""Live tap: one gRPC stream per proxy (Tap.Observe on its tap port, 4190), merged.

The API server's pod proxy forwards HTTP/1 only, so tap connects to each pod's IP:
from inside the cluster's network (or the local cluster's host). From elsewhere,
`kubectl port-forward pod/NAME 4190` and list the forwarded port in a proxies file.
A tap port that is mTLS gets the CLI's certificate, and must prove the identity of
the pod's ServiceAccount.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence

import grpc

from weft_api import mesh
from weft_api.proto import tap_pb2, tap_pb2_grpc
from weft_cli.errors import CliError
from weft_cli.observe.pods import PodInfo
from weft_cli.observe.sources import ProxyUnreachable
from weft_cli.observe.tap_events import Observed, from_message
from weft_cli.observe.tap_identity import TapCredentials

CONNECT_TIMEOUT = 3.0
_ENDED = object()


def tap_address(pod: PodInfo) -> str:
    if pod.tap_address:
        return pod.tap_address
    if not pod.ip:
        raise ProxyUnreachable(f"pod {pod.ref} has no IP yet: its proxy cannot be tapped")
    host = f"[{pod.ip}]" if ":" in pod.ip else pod.ip
    return f"{host}:{mesh.PROXY_TAP_PORT}"


def _unreachable(pod: PodInfo, address: str, reason: str) -> ProxyUnreachable:
    return ProxyUnreachable(
        f"cannot tap the proxy of pod {pod.ref} at {address}: {reason} (tap connects to pods "
        "directly; from outside the cluster network, port-forward its port 4190 and use "
        "--proxies-file)"
    )


def _channel(pod: PodInfo, address: str, credentials: TapCredentials | None) -> grpc.aio.Channel:
    if not pod.tap_tls:
        return grpc.aio.insecure_channel(address)
    assert credentials is not None  # `observe` certifies when any pod needs it
    name = credentials.proxy_identity(pod.service_account, pod.namespace)
    options = [("grpc.ssl_target_name_override", name)]
    return grpc.aio.secure_channel(address, credentials.channel(), options)


async def _stream(
    pod: PodInfo,
    request: tap_pb2.ObserveRequest,
    queue: asyncio.Queue[object],
    credentials: TapCredentials | None,
) -> None:
    try:
        address = tap_address(pod)
    except ProxyUnreachable as error:
        await queue.put(error)
        return
    async with _channel(pod, address, credentials) as channel:
        try:
            await asyncio.wait_for(channel.channel_ready(), CONNECT_TIMEOUT)
        except TimeoutError:
            await queue.put(_unreachable(pod, address, f"no connection in {CONNECT_TIMEOUT:.0f}s"))
            return
        try:
            async for message in tap_pb2_grpc.TapStub(channel).Observe(request):
                await queue.put(from_message(pod.ref, message))
        except grpc.aio.AioRpcError as error:
            await queue.put(_unreachable(pod, address, error.details() or error.code().name))
            return
    await queue.put(_ENDED)


async def observe(
    pods: Sequence[PodInfo],
    request: tap_pb2.ObserveRequest,
    warn: Callable[[str], None],
    certify: Callable[[], Awaitable[TapCredentials]],
) -> AsyncGenerator[Observed, None]:
    """Events from every pod's proxy as they come. A proxy that cannot be tapped is a
    warning while others stream; an error when none can. `certify` is called once if
    any proxy's tap port is mTLS."""
    if not pods:
        raise CliError("no meshed pods to tap")
    credentials = await certify() if any(pod.tap_tls for pod in pods) else None
    queue: asyncio.Queue[object] = asyncio.Queue()
    tasks = [asyncio.create_task(_stream(pod, request, queue, credentials)) for pod in pods]
    alive, failures = len(tasks), 0
    try:
        while alive:
            item = await queue.get()
            if isinstance(item, Observed):
                yield item
                continue
            alive -= 1
            if isinstance(item, ProxyUnreachable):
                failures += 1
                if failures == len(tasks):
                    raise item  # the others were warnings
                warn(str(item))
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
