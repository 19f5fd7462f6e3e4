"""The injected proxy's weight (issue 15): RSS idle and under load, and time to ready.

Starts `python -m weft_proxy` with the environment injection gives the proxy container
(rendered by weft_webhooks' injection code; the kubelet's part, fieldRefs and $(VAR),
resolved here), against the operator's own config server (mTLS, access checks) and
identity service on loopback. Only addresses are changed: the control plane's Service
names become loopback ports, the listeners bind loopback ports (other proxies on this
machine hold 4140-4191) and the token file is a temporary file. The identity service's
TokenReview is a stand-in accepting one token: a review needs an API server, and it is
on the operator's side, not what is measured.

Per process, from /proc/PID/status: VmRSS and RssAnon
- `python -c pass`: the interpreter alone (baseline);
- the imports of `weft_proxy.main`, nothing started;
- the injected proxy: at ready, idle after its first request, under load, and after;
- the static benchmark proxy (benchmarks/weft_static_proxy.py: no config stream,
  identity, tap) under the same load;
- the key maker the proxy runs at each certification (identity/keygen_process.py): its
  peak RSS, for the second it lives.
Load: wrk, 16 connections for BENCH_SECONDS (10) through the outbound listener to a
Service whose endpoint is nginx, while a tap stream watches and /metrics is scraped.

Usage: .venv/bin/python benchmarks/proxy_weight.py [--python SLIM_VENV/bin/python]
(needs nginx and wrk: make bench)
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import aiohttp
import grpc

from weft_api.mesh import ProxyEnv
from weft_api.mesh_ca import new_issuer, new_trust_anchor
from weft_api.proto import identity_pb2_grpc, tap_pb2, tap_pb2_grpc
from weft_operator.config_server.hub import ConfigHub
from weft_operator.config_server.server import ConfigServer, ServerTls
from weft_operator.identity.issuer_store import MeshCA
from weft_operator.identity.server import (
    config_server_credentials,
    server_credentials,
    serving_identity,
)
from weft_operator.identity.service import IdentityService
from weft_operator.identity.tokens import ServiceAccountRef, TokenRejected
from weft_operator.reconciler import Reconciler
from weft_resources.base import Kind
from weft_resources.kinds import BY_KIND
from weft_webhooks.injection.containers import render
from weft_webhooks.injection.options import ProxyOptions
from weft_webhooks.injection.settings import InjectorSettings

HERE = Path(__file__).resolve().parent
SECONDS = float(os.environ.get("BENCH_SECONDS", "10"))
# The interpreter of the measured processes: this venv's, or (--python) one where only
# the proxy's base install is, as the proxy image has it (`pip install .`, no extras).
PYTHON = sys.executable
NAMESPACE = "bench"
DOMAIN = "cluster.local"
CONTROL_PLANE = "weft"
POD = {"name": "web-0", "namespace": NAMESPACE, "account": "web", "ip": "127.0.0.1"}
AUTHORITY = f"books.{NAMESPACE}.svc.cluster.local"
TOKEN = "web-token"
STATIC_AUTHORITY = "bench.default.svc.cluster.local"  # weft_static_proxy.py's Service


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def memory(pid: int) -> tuple[float, float]:
    """(VmRSS, RssAnon) in MiB."""
    status = Path(f"/proc/{pid}/status").read_text()

    def field(name: str) -> float:
        found = re.search(rf"^{name}:\s+(\d+) kB", status, re.MULTILINE)
        return int(found[1]) / 1024 if found else float("nan")

    return field("VmRSS"), field("RssAnon")


class Reviewer:
    """TokenReview stand-in (see the module's docstring): one token, one ServiceAccount."""

    async def review(self, token: str) -> ServiceAccountRef:
        if token != TOKEN:
            raise TokenRejected("unknown token")
        return ServiceAccountRef(NAMESPACE, POD["account"])


def mesh_objects(backend_port: int) -> list[dict[str, Any]]:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": POD["name"], "namespace": NAMESPACE},
        "spec": {"serviceAccountName": POD["account"], "containers": [{"name": "app"}]},
        "status": {"podIP": POD["ip"], "podIPs": [{"ip": POD["ip"]}]},
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "books", "namespace": NAMESPACE},
        "spec": {"clusterIP": "10.96.0.50", "ports": [{"port": 80, "name": "http"}]},
    }
    endpoints = {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": "books-1",
            "namespace": NAMESPACE,
            "labels": {"kubernetes.io/service-name": "books"},
        },
        "addressType": "IPv4",
        "endpoints": [{"addresses": ["127.0.0.1"]}],
        "ports": [{"name": "http", "port": backend_port}],
    }
    return [pod, service, endpoints]


def injected_env(anchors_pem: str, overrides: Mapping[str, str]) -> dict[str, str]:
    """The proxy container's environment as the kubelet would give it."""
    injected = render(InjectorSettings(trust_anchors_pem=anchors_pem), ProxyOptions())
    proxy = injected.init_containers[1]
    fields = {
        "metadata.name": POD["name"],
        "metadata.namespace": NAMESPACE,
        "spec.serviceAccountName": POD["account"],
        "metadata.uid": "00000000-0000-0000-0000-000000000001",
        "status.podIP": POD["ip"],
        "spec.nodeName": "node-1",
    }
    env: dict[str, str] = {}
    for variable in proxy["env"]:
        if "valueFrom" in variable:
            value = fields[variable["valueFrom"]["fieldRef"]["fieldPath"]]
        else:  # $(VAR): an earlier variable of the container
            value = re.sub(r"\$\((\w+)\)", lambda m: env[m[1]], variable["value"])
        env[variable["name"]] = value
    unknown = set(overrides) - set(env) - {ProxyEnv.TAP_LISTEN_ADDR}
    assert not unknown, f"injection no longer sets {unknown}"
    env.update(overrides)
    # What the image's runtime gives any container: PATH, and its ENV lines.
    return {"PATH": os.environ["PATH"], "PYTHONUNBUFFERED": "1", **env}


def nginx_conf(folder: Path, port: int) -> Path:
    conf = folder / "nginx.conf"
    conf.write_text(
        f"""
worker_processes 1;
pid {folder}/nginx.pid;
error_log {folder}/nginx.err warn;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  client_body_temp_path {folder}; proxy_temp_path {folder};
  fastcgi_temp_path {folder}; uwsgi_temp_path {folder}; scgi_temp_path {folder};
  server {{ listen 127.0.0.1:{port}; location / {{ return 200 "ok\\n"; }} }}
}}
"""
    )
    return conf


async def until(condition: Any, what: str, within: float = 60.0) -> None:
    deadline = time.monotonic() + within
    while not await condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def answers(url: str, headers: Mapping[str, str] | None = None) -> bool:
    try:
        async with (
            aiohttp.ClientSession() as http,
            http.get(url, headers=headers or {}) as response,
        ):
            return response.status == 200
    except aiohttp.ClientError:
        return False


async def wrk(port: int, authority: str) -> float:
    process = await asyncio.create_subprocess_exec(
        *("wrk", "-t1", "-c16", f"-d{SECONDS:.0f}s", "-H", f"Host: {authority}"),
        f"http://127.0.0.1:{port}/",
        stdout=asyncio.subprocess.PIPE,
    )
    out = (await process.communicate())[0].decode()
    line = next(line for line in out.splitlines() if line.startswith("Requests/sec"))
    return float(line.split()[1])


async def under_load(
    pid: int, outbound: int, authority: str, admin: int | None
) -> tuple[float, float, float]:
    """(peak VmRSS, peak RssAnon, requests/s) during a wrk run, scraping /metrics each s."""
    load = asyncio.create_task(wrk(outbound, authority))
    peak = (0.0, 0.0)
    scraped = 0
    while not load.done():
        rss, anon = memory(pid)
        peak = (max(peak[0], rss), max(peak[1], anon))
        if admin is not None and scraped % 4 == 0:
            await answers(f"http://127.0.0.1:{admin}/metrics")
        scraped += 1
        await asyncio.sleep(0.25)
    return (*peak, await load)


async def tap_watch(port: int) -> None:
    """A tap stream open during the load (injection leaves the tap port plain text)."""
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        async for _ in tap_pb2_grpc.TapStub(channel).Observe(tap_pb2.ObserveRequest()):
            pass


async def sampled_process(*argv: str, env: Mapping[str, str] | None = None) -> tuple[float, float]:
    """Memory of a process that prints 'ready' once it is where it should be measured."""
    process = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, env=dict(env or os.environ)
    )
    assert process.stdout is not None
    await process.stdout.readline()
    figures = memory(process.pid)
    process.kill()
    await process.wait()
    return figures


async def import_seconds() -> float:
    """Wall time of `python -c 'import weft_proxy.main'`, less `python -c pass`, best of 3."""

    async def best(code: str) -> float:
        times = []
        for _ in range(3):
            started = time.monotonic()
            process = await asyncio.create_subprocess_exec(PYTHON, "-c", code)
            await process.wait()
            times.append(time.monotonic() - started)
        return min(times)

    return await best("import weft_proxy.main") - await best("pass")


def keygen_peak() -> float:
    """Peak RSS in MiB of the short-lived process that makes the proxy's key and CSR.

    Run from a bare interpreter: a child's peak as Linux reports it includes the memory
    of the process it was forked from (this one is larger than the key maker)."""
    launcher = (
        "import resource, subprocess, sys\n"
        "argv = [sys.executable, '-m', 'weft_proxy.identity.keygen_process', 'x.y', 'spiffe://x/y']\n"
        "subprocess.run(argv, stdout=subprocess.DEVNULL, check=True)\n"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    out = subprocess.run([PYTHON, "-c", launcher], capture_output=True, text=True)
    return int(out.stdout) / 1024 if out.returncode == 0 else float("nan")  # older code: none


async def measure(folder: Path, backend: int) -> dict[str, Any]:
    now = datetime.datetime.now(datetime.UTC)
    anchor = new_trust_anchor(DOMAIN, now)
    ca = MeshCA(new_issuer(anchor, DOMAIN, now), anchor.cert_pem())
    reconciler = Reconciler()
    tls = ServerTls(config_server_credentials(ca, CONTROL_PLANE, DOMAIN), DOMAIN)
    config = ConfigServer(ConfigHub(reconciler.index), tls=tls)
    reconciler.add_listener(config.on_change)
    for body in mesh_objects(backend):
        reconciler.observe(BY_KIND[Kind(body["kind"])], "MODIFIED", body)
    config_port = await config.start("127.0.0.1", 0)
    identity = grpc.aio.server()
    service = IdentityService(ca.issuer, DOMAIN, Reviewer(), trust_roots_pem=ca.trust_roots_pem)
    identity_pb2_grpc.add_IdentityServicer_to_server(service, identity)
    identity_port = identity.add_secure_port(
        "127.0.0.1:0", server_credentials(ca, CONTROL_PLANE, DOMAIN)
    )
    await identity.start()
    token = folder / "token"
    token.write_text(TOKEN)
    ports = {name: free_port() for name in ("inbound", "outbound", "admin", "tap")}
    env = injected_env(
        anchor.cert_pem().decode(),
        {
            ProxyEnv.CONFIG_ADDR: f"127.0.0.1:{config_port}",
            ProxyEnv.IDENTITY_ADDR: f"127.0.0.1:{identity_port}",
            ProxyEnv.IDENTITY_TOKEN_FILE: str(token),
            ProxyEnv.INBOUND_LISTEN_ADDR: f"127.0.0.1:{ports['inbound']}",
            ProxyEnv.OUTBOUND_LISTEN_ADDR: f"127.0.0.1:{ports['outbound']}",
            ProxyEnv.ADMIN_LISTEN_ADDR: f"127.0.0.1:{ports['admin']}",
            ProxyEnv.TAP_LISTEN_ADDR: f"127.0.0.1:{ports['tap']}",
        },
    )
    assert env[ProxyEnv.IDENTITY_SERVER_NAME] == serving_identity(CONTROL_PLANE, DOMAIN)
    results: dict[str, Any] = {}
    started = time.monotonic()
    proxy = await asyncio.create_subprocess_exec(PYTHON, "-m", "weft_proxy", env=env)
    tap: asyncio.Task[None] | None = None
    try:
        admin = f"http://127.0.0.1:{ports['admin']}"
        await until(lambda: answers(f"{admin}/ready"), "the proxy ready (certificate, config)")
        results["ready_s"] = time.monotonic() - started
        results["at ready"] = memory(proxy.pid)
        outbound = f"http://127.0.0.1:{ports['outbound']}/"
        await until(lambda: answers(outbound, {"Host": AUTHORITY}), "a request through it")
        await asyncio.sleep(3)  # idle: what a quiet pod holds
        results["idle"] = memory(proxy.pid)
        tap = asyncio.create_task(tap_watch(ports["tap"]))
        *peak, rps = await under_load(proxy.pid, ports["outbound"], AUTHORITY, ports["admin"])
        results["under load (peak)"] = tuple(peak)
        results["rps"] = rps
        tap.cancel()
        await asyncio.sleep(2)
        results["after load"] = memory(proxy.pid)
    finally:
        if tap is not None:
            tap.cancel()
        proxy.terminate()
        await proxy.wait()
        await identity.stop(None)
        await config.stop(grace=None)
    static_port = free_port()
    static = await asyncio.create_subprocess_exec(
        PYTHON, str(HERE / "weft_static_proxy.py"), str(static_port), str(backend)
    )
    try:
        await until(
            lambda: answers(f"http://127.0.0.1:{static_port}/", {"Host": STATIC_AUTHORITY}),
            "the static proxy",
        )
        static_idle = memory(static.pid)
        *static_peak, static_rps = await under_load(static.pid, static_port, STATIC_AUTHORITY, None)
    finally:
        static.terminate()
        await static.wait()
    results["static idle"] = static_idle
    results["static under load (peak)"] = tuple(static_peak)
    results["static rps"] = static_rps
    ready_line = "import sys; print('ready', flush=True); sys.stdin.read()"
    results["python -c pass"] = await sampled_process(PYTHON, "-c", ready_line)
    results["imports of weft_proxy.main"] = await sampled_process(
        PYTHON, "-c", f"import weft_proxy.main; {ready_line}"
    )
    results["import_s"] = await import_seconds()
    results["keygen peak"] = keygen_peak()
    return results


def report(results: dict[str, Any]) -> None:
    bare = results["python -c pass"][0]
    static = results["static under load (peak)"][0]
    print(f"{'process':<34} {'RSS MiB':>8} {'anon MiB':>9} {'/static':>8} {'-bare':>7}")
    for name in (
        "python -c pass",
        "imports of weft_proxy.main",
        "at ready",
        "idle",
        "under load (peak)",
        "after load",
        "static idle",
        "static under load (peak)",
    ):
        rss, anon = results[name]
        label = name if name.startswith(("python", "imports", "static")) else f"injected {name}"
        print(f"{label:<34} {rss:>8.1f} {anon:>9.1f} {rss / static:>7.2f}x {rss - bare:>7.1f}")
    print(
        f"load: wrk -c16 {SECONDS:.0f}s through outbound: injected {results['rps']:.0f} rps, "
        f"static {results['static rps']:.0f} rps"
    )
    print(
        f"start: ready {results['ready_s']:.2f} s after exec (certificate, then config); "
        f"imports {results['import_s']:.2f} s over bare python"
    )
    print(
        f"key maker (at each certification, for its second): peak {results['keygen peak']:.1f} MiB"
    )
    print(f"interpreter: {PYTHON}")


def main() -> None:
    global PYTHON
    parser = argparse.ArgumentParser()
    parser.add_argument("--python", default=sys.executable, help="runs the measured processes")
    PYTHON = parser.parse_args().python
    missing = [tool for tool in ("nginx", "wrk") if not shutil.which(tool)]
    if missing:
        raise SystemExit(f"missing {missing}: apt-get install nginx wrk (or make bench)")
    started = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        backend = free_port()
        nginx = subprocess.Popen(
            ["nginx", "-c", str(nginx_conf(folder, backend)), "-g", "daemon off;"]
        )
        try:
            results = asyncio.run(measure(folder, backend))
        finally:
            nginx.terminate()
            nginx.wait(timeout=10)
    report(results)
    loads = [" / ".join(f"{x:.1f}" for x in load) for load in (load_before, os.getloadavg())]
    print(f"run {started}; load average (1/5/15 min) before {loads[0]}, after {loads[1]}")


if __name__ == "__main__":
    main()
