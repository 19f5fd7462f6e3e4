"""Running one probe inside the pod's network namespace; True when it passes.

HTTP and TCP probes connect from a socket opened in the pod's namespace to the pod's
IP, so they reach the container directly (proxy-init leaves loopback traffic alone),
as they would from the kubelet without an authorization policy in the way. Exec probes
run in the container's context; gRPC probes run a small health client in the namespace.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from weft_localcluster.nodeagent import netns_socket
from weft_localcluster.nodeagent.probes import Action, Exec, Grpc, HttpGet, TcpSocket

log = logging.getLogger(__name__)
USER_AGENT = "kube-probe/1.36"


@dataclass(frozen=True)
class ProbeTarget:
    netns_path: Path
    pod_ip: str
    # argv and env to run a command as the container would (exec and gRPC probes)
    command_in_container: Callable[[list[str]], tuple[list[str], Mapping[str, str]]]
    command_in_pod: Callable[[list[str]], list[str]]


# A kubelet checks gRPC health in its own process; here a Python helper starts first,
# which takes seconds on a loaded machine (`import grpc` took 2.2 s beside other test
# runs). The probe's timeout is the health call's deadline inside the helper; starting
# the helper gets this much more, so a healthy server is not failed for its prober's start.
HELPER_START_ALLOWANCE_S = 10.0


async def probe(action: Action, target: ProbeTarget, seconds: float) -> bool:
    """Run the probe; a failure to answer within `seconds` is a failed probe."""
    allowance = HELPER_START_ALLOWANCE_S if isinstance(action, Grpc) else 0.0
    try:
        async with asyncio.timeout(seconds + allowance):
            return await _run(action, target, seconds)
    except (OSError, TimeoutError, ValueError) as error:
        log.debug("probe %s failed: %s", action, error)
        return False


async def _run(action: Action, target: ProbeTarget, seconds: float) -> bool:
    if isinstance(action, HttpGet):
        return await _http_get(action, target)
    if isinstance(action, TcpSocket):
        _, writer = await _open(target, action.host or target.pod_ip, action.port)
        await _close(writer)
        return True
    if isinstance(action, Exec):
        argv, env = target.command_in_container(list(action.command))
        return await _succeeds(argv, env)
    health = [sys.executable, "-m", "weft_localcluster.nodeagent.grpc_health"]
    deadline = ["--timeout", f"{seconds:g}"]
    argv = target.command_in_pod(
        [*health, *deadline, target.pod_ip, str(action.port), action.service]
    )
    return await _succeeds(argv, {})


async def _open(
    target: ProbeTarget, host: str, port: int, tls: ssl.SSLContext | None = None
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    sock = await netns_socket.socket_in(target.netns_path)
    try:
        await asyncio.get_running_loop().sock_connect(sock, (host, port))
    except BaseException:
        sock.close()
        raise
    return await asyncio.open_connection(sock=sock, ssl=tls, server_hostname=host if tls else None)


async def _http_get(action: HttpGet, target: ProbeTarget) -> bool:
    host = action.host or target.pod_ip
    tls = _insecure_tls() if action.scheme.upper() == "HTTPS" else None
    reader, writer = await _open(target, host, action.port, tls)
    try:
        headers = {"Host": f"{host}:{action.port}", "User-Agent": USER_AGENT, "Accept": "*/*"}
        headers.update(dict(action.headers))
        headers["Connection"] = "close"
        lines = [f"GET {action.path} HTTP/1.1", *(f"{k}: {v}" for k, v in headers.items())]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        await writer.drain()
        status_line = (await reader.readline()).decode(errors="replace").split()
        return len(status_line) >= 2 and 200 <= int(status_line[1]) < 400
    finally:
        await _close(writer)


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()


async def _succeeds(argv: list[str], env: Mapping[str, str]) -> bool:
    process = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
        env=dict(env) or None,
        start_new_session=True,
    )
    try:
        return await process.wait() == 0
    finally:
        if process.returncode is None:  # timed out: the probe's command goes too
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()


def _insecure_tls() -> ssl.SSLContext:
    # The kubelet does not verify a probe's certificate either.
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context
