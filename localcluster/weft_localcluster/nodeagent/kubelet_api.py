"""The node's kubelet API: what `kubectl logs`, `exec` and `port-forward` reach.

The API server dials the node's InternalIP (the bridge address) on `KUBELET_PORT`,
over TLS, with its kubelet client certificate (--kubelet-client-certificate).

- With the streaming server built (`streaming/main.go`, `streaming_build.py`), that Go
  program listens there: it serves exec, attach and port-forward (SPDY) itself, and
  forwards the rest to this module's server on a Unix socket. It asks the same socket
  how to run a command in a container (`/weft/exec/...`: the `ip netns exec` ...
  `setpriv` prefix of the container's latest run, its environment and folder) and
  which network namespace a pod has (`/weft/sandbox/...`).
- Without it, this module serves TLS itself, and only `kubectl logs`.

`GET /containerLogs/{namespace}/{pod}/{container}` reads the files the supervisor
writes; `follow` streams until that run of the container ends; `previous`,
`tailLines` and `limitBytes` are honoured; `timestamps` and `sinceSeconds` are not
(the files keep no times).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from aiohttp import web

from weft_api import pki
from weft_localcluster.nodeagent import runtime
from weft_localcluster.nodeagent.container_logs import LogNotFound, LogQuery, pick_run, tail_offset
from weft_localcluster.nodeagent.supervisor import ContainerSupervisor

log = logging.getLogger(__name__)
KUBELET_PORT = 10250
SOCKET = "kubelet.sock"
FOLLOW_POLL = 0.2
CHUNK = 64 * 1024
RESTART_DELAY = 1.0
ALLOWED_USERS = frozenset({"kube-apiserver-kubelet-client"})
ALLOWED_GROUPS = frozenset({"system:masters"})


class PodView(Protocol):
    """What the kubelet API reads of a pod worker (pod_worker.PodWorker)."""

    @property
    def logs_dir(self) -> Path: ...
    @property
    def supervisors(self) -> list[ContainerSupervisor]: ...
    @property
    def sandbox(self) -> Any: ...  # network.Sandbox | None


FindPod = Callable[[str, str], PodView | None]  # (namespace, name) -> its worker


@dataclass(frozen=True)
class KubeletSettings:
    address: str  # the node's InternalIP
    state_dir: Path  # the serving certificate and the socket go here
    client_ca: Path  # the cluster's CA: the API server's client certificate
    node_name: str
    streaming_binary: Path | None = None
    port: int = KUBELET_PORT


# -- logs ----------------------------------------------------------------------------
def _supervisor(worker: PodView, container: str) -> ContainerSupervisor | None:
    for supervisor in worker.supervisors:
        if supervisor.state.name == container:
            return supervisor
    return None


def _logs_folder(logs_dir: Path, worker: PodView | None, namespace: str, pod: str) -> Path | None:
    if worker is not None:
        return worker.logs_dir
    # A pod whose worker is gone (finished under this agent): its newest folder.
    folders = sorted(logs_dir.glob(f"{namespace}_{pod}_*"), key=lambda p: p.stat().st_mtime)
    return folders[-1] if folders else None


def _still_writing(worker: PodView | None, container: str, run: int) -> bool:
    if worker is None:
        return False
    supervisor = _supervisor(worker, container)
    if supervisor is None:
        return False
    state = supervisor.state
    return state.restart_count == run and state.running_since is not None


def _open_at(path: Path, offset: int) -> BinaryIO:
    """The log, read from `offset` (local files: reads do not stall the loop)."""
    log_file = open(path, "rb")  # noqa: SIM115 - the caller closes it
    log_file.seek(offset)
    return log_file


async def _stream_log(
    request: web.Request, path: Path, query: LogQuery, writing: Callable[[], bool]
) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "text/plain"})
    start = tail_offset(path, query.tail_lines) if query.tail_lines is not None else 0
    budget = query.limit_bytes
    await response.prepare(request)
    with _open_at(path, start) as log_file:
        while budget is None or budget > 0:
            chunk = log_file.read(CHUNK if budget is None else min(CHUNK, budget))
            if chunk:
                if budget is not None:
                    budget -= len(chunk)
                await response.write(chunk)
                continue
            if not query.follow:
                break
            if not writing():  # that run ended: what it wrote last is read, then done
                rest = log_file.read() if budget is None else log_file.read(budget)
                if rest:
                    await response.write(rest)
                break
            await asyncio.sleep(FOLLOW_POLL)
    await response.write_eof()
    return response


def logs_handler(logs_dir: Path, find_pod: FindPod) -> Callable[..., Any]:
    async def container_logs(request: web.Request) -> web.StreamResponse:
        namespace = request.match_info["namespace"]
        pod = request.match_info["pod"]
        container = request.match_info["container"]
        try:
            query = LogQuery.from_params(dict(request.query))
        except ValueError as error:
            raise web.HTTPBadRequest(text=str(error)) from error
        worker = find_pod(namespace, pod)
        folder = _logs_folder(logs_dir, worker, namespace, pod)
        if worker is not None and _supervisor(worker, container) is None:
            raise web.HTTPNotFound(text=f'container "{container}" not found in pod "{pod}"')
        if folder is None:
            raise web.HTTPNotFound(text=f'pod "{namespace}/{pod}" not found on this node')
        try:
            run = pick_run(folder / container, pod, container, query.previous)
        except LogNotFound as error:
            raise web.HTTPBadRequest(text=str(error)) from error
        path = folder / container / f"{run}.log"
        return await _stream_log(
            request, path, query, lambda: _still_writing(find_pod(namespace, pod), container, run)
        )

    return container_logs


# -- what the streaming server asks ----------------------------------------------------
def exec_plan(worker: PodView, pod: str, container: str) -> dict[str, Any]:
    supervisor = _supervisor(worker, container)
    if supervisor is None:
        raise web.HTTPNotFound(text=f'container "{container}" not found in pod "{pod}"')
    sandbox, plan = worker.sandbox, supervisor.plan
    if sandbox is None or plan is None or supervisor.state.running_since is None:
        raise web.HTTPBadRequest(text=f'container "{container}" in pod "{pod}" is not running')
    prefix = runtime.in_pod(sandbox.netns, [], plan.identity, plan.binds)
    return {
        "prefix": prefix,
        "env": [f"{name}={value}" for name, value in plan.env.items()],
        "cwd": str(plan.cwd),
    }


def internal_routes(find_pod: FindPod) -> list[web.RouteDef]:
    def worker_of(request: web.Request) -> PodView:
        namespace, pod = request.match_info["namespace"], request.match_info["pod"]
        worker = find_pod(namespace, pod)
        if worker is None:
            raise web.HTTPNotFound(text=f'pod "{namespace}/{pod}" not found on this node')
        return worker

    async def exec_route(request: web.Request) -> web.Response:
        worker = worker_of(request)
        plan = exec_plan(worker, request.match_info["pod"], request.match_info["container"])
        return web.json_response(plan)

    async def sandbox_route(request: web.Request) -> web.Response:
        sandbox = worker_of(request).sandbox
        if sandbox is None:
            raise web.HTTPBadRequest(text=f'pod "{request.match_info["pod"]}" has no network')
        return web.json_response({"netns": str(sandbox.netns_path)})

    return [
        web.get("/weft/exec/{namespace}/{pod}/{container}", exec_route),
        web.get("/weft/sandbox/{namespace}/{pod}", sandbox_route),
    ]


def public_routes(logs_dir: Path, find_pod: FindPod) -> list[web.RouteDef]:
    async def healthz(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    return [
        web.get("/containerLogs/{namespace}/{pod}/{container}", logs_handler(logs_dir, find_pod)),
        web.get("/healthz", healthz),
    ]


# -- TLS and authorization --------------------------------------------------------------
def serving_certificate(folder: Path, node_name: str, address: str) -> tuple[Path, Path]:
    """A self-signed serving pair, as a kubelet makes without --tls-cert-file (the API
    server, without --kubelet-certificate-authority, does not check it)."""
    folder.mkdir(parents=True, exist_ok=True)
    ca = pki.new_ca(f"{node_name}-kubelet-ca")
    pair = pki.issue(ca, node_name, dns_names=(node_name,), ips=(address,), server=True)
    return pair.write(folder, "kubelet")


def admitted(peer: dict[str, Any] | None) -> bool:
    """The client certificate (ssl's getpeercert()) is the API server's, or an admin's."""
    if not peer:
        return False
    fields = [pair for rdn in peer.get("subject", ()) for pair in rdn]
    names = {value for key, value in fields if key == "commonName"}
    groups = {value for key, value in fields if key == "organizationName"}
    return bool(names & ALLOWED_USERS or groups & ALLOWED_GROUPS)


@web.middleware
async def _authorize(request: web.Request, handler: Any) -> web.StreamResponse:
    transport = request.transport
    peer = transport.get_extra_info("peercert") if transport is not None else None
    if not admitted(peer):
        raise web.HTTPForbidden(text="Forbidden")
    response: web.StreamResponse = await handler(request)
    return response


def _tls(cert: Path, key: Path, client_ca: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(client_ca))
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_cert_chain(cert, key)
    return context


# -- serving -------------------------------------------------------------------------
async def serve(settings: KubeletSettings, logs_dir: Path, find_pod: FindPod) -> None:
    """Serve the kubelet API until cancelled; a failure to start is logged, and the node
    runs on without it."""
    try:
        await _serve(settings, logs_dir, find_pod)
    except (OSError, RuntimeError):
        log.exception("the kubelet API is not served (kubectl logs, exec, port-forward)")


async def _serve(settings: KubeletSettings, logs_dir: Path, find_pod: FindPod) -> None:
    folder = settings.state_dir / "kubelet"
    cert, key = serving_certificate(folder, settings.node_name, settings.address)
    internal = web.Application()
    internal.add_routes(public_routes(logs_dir, find_pod) + internal_routes(find_pod))
    runners = [web.AppRunner(internal, access_log=None)]
    socket_path = folder / SOCKET
    with contextlib.suppress(FileNotFoundError):
        socket_path.unlink()
    await runners[0].setup()
    await web.UnixSite(runners[0], str(socket_path)).start()
    socket_path.chmod(0o600)
    try:
        if settings.streaming_binary is not None:
            await _run_streaming(settings, cert, key, socket_path)
        else:
            log.warning(
                "no kubelet streaming server: kubectl logs works, exec and port-forward do not"
            )
            public = web.Application(middlewares=[_authorize])
            public.add_routes(public_routes(logs_dir, find_pod))
            runners.append(web.AppRunner(public, access_log=None))
            await runners[1].setup()
            tls = _tls(cert, key, settings.client_ca)
            await web.TCPSite(runners[1], settings.address, settings.port, ssl_context=tls).start()
            await asyncio.Event().wait()
    finally:
        for runner in runners:
            await runner.cleanup()


async def _run_streaming(
    settings: KubeletSettings, cert: Path, key: Path, socket_path: Path
) -> None:
    assert settings.streaming_binary is not None
    argv = [
        str(settings.streaming_binary),
        f"--listen={settings.address}:{settings.port}",
        f"--tls-cert-file={cert}",
        f"--tls-private-key-file={key}",
        f"--client-ca-file={settings.client_ca}",
        f"--allowed-users={','.join(sorted(ALLOWED_USERS))}",
        f"--allowed-groups={','.join(sorted(ALLOWED_GROUPS))}",
        f"--agent-socket={socket_path}",
    ]
    while True:  # a crash of the streaming server costs a second of exec, not the node
        process = await asyncio.create_subprocess_exec(*argv, stdin=asyncio.subprocess.DEVNULL)
        try:
            code = await process.wait()
        finally:
            if process.returncode is None:
                process.terminate()
                with contextlib.suppress(ProcessLookupError):
                    await asyncio.shield(process.wait())
        log.warning("kubelet streaming server exited with %s; restarting", code)
        await asyncio.sleep(RESTART_DELAY)
