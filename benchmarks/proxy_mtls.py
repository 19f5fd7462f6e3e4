"""What automatic mTLS costs per request: a client pod's proxy and a server pod's proxy
between an HTTP/1 client and an app, with the endpoint meshed (mTLS, HTTP/1 kept as it
is) or not (plain HTTP/1), against the app called directly, in the same run. One more
path prices what the proxies do not do between them: HTTP/1 upgraded to HTTP/2 (a
plain-text endpoint hinted HTTP/2).

Usage: .venv/bin/python benchmarks/proxy_mtls.py [REQUESTS]

Sequential keep-alive requests, everything on one uvloop (the figures compare paths,
they are not a saturation test: see proxy_http.py for that).
"""

from __future__ import annotations

import dataclasses
import datetime
import statistics
import sys
import time

import aiohttp
import uvloop
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from weft_static_proxy import AUTHORITY, bench_config

from weft_api.config import Backend, BackendPort, Endpoint, ProtocolHint
from weft_api.csr import certificate_request, new_key
from weft_api.identity import identity_name, spiffe_id
from weft_operator.identity.ca import issue_leaf, new_issuer, new_trust_anchor
from weft_proxy.identity.credentials import Credentials
from weft_proxy.proxy import Proxy

NOW = datetime.datetime.now(datetime.UTC)
ANCHOR = new_trust_anchor("cluster.local", NOW)
ISSUER = new_issuer(ANCHOR, "cluster.local", NOW)


def credentials(account: str) -> Credentials:
    key = new_key()
    identity, spiffe = identity_name(account, "default"), spiffe_id(account, "default")
    leaf = issue_leaf(ISSUER, certificate_request(key, identity, spiffe), identity, spiffe, NOW)
    roots = ANCHOR.cert.public_bytes(serialization.Encoding.PEM)
    return Credentials(identity, key, leaf, (ISSUER.cert,), roots)


async def app() -> int:
    async def hello(request: web.Request) -> web.Response:
        return web.Response(text="hello")

    application = web.Application()
    application.router.add_get("/", hello)
    runner = web.AppRunner(application, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return int(site._server.sockets[0].getsockname()[1])  # type: ignore[union-attr]


async def proxy_pair(app_port: int, meshed: bool, h2: bool = False) -> int:
    """Start a server proxy in front of the app and a client proxy routing to it; the
    client proxy's outbound port."""
    server = Proxy("default", inbound_fallback_port=app_port)
    server.apply(bench_config(app_port))
    server_ports = await server.listen("127.0.0.1", 0, 0, 0)
    inbound = server_ports[0].sockets[0].getsockname()[1]
    identity = identity_name("server", "default") if meshed else None
    endpoint = Endpoint("127.0.0.1", inbound, identity, ProtocolHint.H2 if h2 else None)
    backend = Backend("bench", "default", AUTHORITY, 1, (BackendPort(80, (endpoint,)),))
    config = bench_config(app_port)
    service = dataclasses.replace(config.outbound[0], backends=(backend,))
    config = dataclasses.replace(config, outbound=(service,))
    client = Proxy("default")
    client.apply(config)
    if meshed:
        server.use_credentials(credentials("server"))
        client.use_credentials(credentials("client"))
    client_ports = await client.listen("127.0.0.1", 0, 0, 0)
    return int(client_ports[1].sockets[0].getsockname()[1])


async def measure(url: str, requests: int) -> tuple[float, float, float]:
    """p50 and p99 latency (ms), and CPU per request (µs) of the whole process."""
    latencies = []
    async with aiohttp.ClientSession(headers={"Host": AUTHORITY}) as session:
        for _ in range(50):  # warm-up: connections, pools, handshakes
            async with session.get(url) as response:
                await response.read()
        cpu = time.process_time()
        for _ in range(requests):
            started = time.perf_counter()
            async with session.get(url) as response:
                await response.read()
            latencies.append((time.perf_counter() - started) * 1000)
        cpu = time.process_time() - cpu
    latencies.sort()
    p99 = latencies[int(len(latencies) * 0.99) - 1]
    return statistics.median(latencies), p99, cpu / requests * 1e6


async def main(requests: int) -> None:
    app_port = await app()
    paths = {
        "direct (baseline)": f"http://127.0.0.1:{app_port}/",
        "two proxies, plain HTTP/1": f"http://127.0.0.1:{await proxy_pair(app_port, False)}/",
        "two proxies, mTLS": f"http://127.0.0.1:{await proxy_pair(app_port, True)}/",
        "two proxies, plain, HTTP/2 between": (
            f"http://127.0.0.1:{await proxy_pair(app_port, False, h2=True)}/"
        ),
    }
    results = {name: await measure(url, requests) for name, url in paths.items()}
    base = results["direct (baseline)"]
    print(f"{requests} sequential requests per path")
    print(f"{'path':<36} {'p50 ms':>8} {'p99 ms':>8} {'CPU us/req':>11} {'CPU x base':>11}")
    for name, (p50, p99, cpu) in results.items():
        print(f"{name:<36} {p50:>8.2f} {p99:>8.2f} {cpu:>11.0f} {cpu / base[2]:>10.2f}x")
    plain = results["two proxies, plain HTTP/1"]
    for name in ("two proxies, mTLS", "two proxies, plain, HTTP/2 between"):
        other = results[name]
        ratios = f"p50 {other[0] / plain[0]:.2f}x, CPU {other[2] / plain[2]:.2f}x"
        print(f"{name} over plain HTTP/1: {ratios}")


if __name__ == "__main__":
    uvloop.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 2000))
