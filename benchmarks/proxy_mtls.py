"""What automatic mTLS costs per request: a client pod's proxy and a server pod's proxy,
each its own process, between a load generator and an app (nginx answering a small
200), with the endpoint meshed (mTLS, HTTP/1 kept as it is) or not (plain HTTP/1),
against the app called directly, in the same run. (HTTP/1 is never upgraded
to HTTP/2 between proxies: docs/mtls.md.) The baseline of the same run: a pair of
HAProxy 2.6 processes, plain and with mTLS between them (the same mesh certificates,
client certificates required, the server's identity checked), so that figures taken
on a faster or slower day compare as ratios.

Per path: the CPU per request of both proxies together at a fixed 1000 rps (hey; /proc
CPU time of the two processes), and latency under an open-loop constant rate (vegeta,
default 1000 rps): p50, p99 and what the pair adds over direct. Proxies and app are
pinned to core 0, the load generator to core 1, as in proxy_http.py (its tools too).

Usage: .venv/bin/python benchmarks/proxy_mtls.py [--rates 1000] [--seconds 10] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime
import logging
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.process import BaseProcess
from pathlib import Path

import uvloop
from cryptography.hazmat.primitives import serialization
from proxy_http import (
    Latency,
    cpu_seconds,
    ensure_tools,
    free_port,
    haproxy_conf,
    hey,
    load_note,
    nginx_conf,
    start,
    vegeta,
    wait_listening,
)
from weft_static_proxy import AUTHORITY, bench_config

from weft_api.config import Backend, BackendPort, Endpoint
from weft_api.csr import certificate_request, new_key
from weft_api.identity import identity_name, spiffe_id
from weft_api.mesh_ca import KeyPair, issue_leaf, new_issuer, new_trust_anchor
from weft_proxy.identity.credentials import Credentials
from weft_proxy.main import freeze_startup_objects
from weft_proxy.proxy import Proxy

NOW = datetime.datetime.now(datetime.UTC)
# Made before the proxies fork, so both trust the same anchor.
ANCHOR = new_trust_anchor("cluster.local", NOW)
ISSUER = new_issuer(ANCHOR, "cluster.local", NOW)
CPU_RATE = 1000  # a pair on one core: 2000 rps would overload it on a busy machine


def leaf_of(account: str) -> KeyPair:
    """A mesh leaf for the account's identity, from ISSUER."""
    key = new_key()
    identity, spiffe = identity_name(account, "default"), spiffe_id(account, "default")
    leaf = issue_leaf(ISSUER, certificate_request(key, identity, spiffe), identity, spiffe, NOW)
    return KeyPair(leaf, key)


def credentials(account: str) -> Credentials:
    pair = leaf_of(account)
    identity, leaf = identity_name(account, "default"), pair.cert
    roots = ANCHOR.cert.public_bytes(serialization.Encoding.PEM)
    der = serialization.Encoding.DER
    return Credentials(
        identity,
        pair.key_pem(),
        leaf.public_bytes(der),
        (ISSUER.cert.public_bytes(der),),
        roots,
        leaf.not_valid_after_utc.timestamp(),
    )


@dataclass(frozen=True)
class Pair:
    meshed: bool


async def serve_server(app_port: int, inbound_port: int, pair: Pair) -> None:
    """The server pod's proxy: inbound on `inbound_port`, to the app."""
    server = Proxy("default", inbound_fallback_port=app_port)
    server.apply(bench_config(app_port))
    if pair.meshed:
        server.use_credentials(credentials("server"))
    await server.listen("127.0.0.1", inbound_port, 0, 0)
    freeze_startup_objects()
    await asyncio.Event().wait()


async def serve_client(server_inbound: int, outbound_port: int, pair: Pair) -> None:
    """The client pod's proxy: outbound on `outbound_port`, the Service's one endpoint
    the server proxy's inbound (meshed: with the server's identity)."""
    identity = identity_name("server", "default") if pair.meshed else None
    endpoint = Endpoint("127.0.0.1", server_inbound, identity)
    backend = Backend("bench", "default", AUTHORITY, 1, (BackendPort(80, (endpoint,)),))
    config = bench_config(server_inbound)
    service = dataclasses.replace(config.outbound[0], backends=(backend,))
    client = Proxy("default")
    client.apply(dataclasses.replace(config, outbound=(service,)))
    if pair.meshed:
        client.use_credentials(credentials("client"))
    await client.listen("127.0.0.1", 0, outbound_port, 0)
    freeze_startup_objects()
    await asyncio.Event().wait()


def proxy_process(role: str, first: int, second: int, pair: Pair) -> None:
    """A forked proxy process's body, set up as `python -m weft_proxy` sets up one."""
    os.sched_setaffinity(0, {0})
    logging.basicConfig(
        level=os.environ.get("WEFT_PROXY_LOG", "INFO"),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    serve = serve_server if role == "server" else serve_client
    uvloop.run(serve(first, second, pair))


@contextmanager
def proxy_pair(app_port: int, pair: Pair) -> Iterator[tuple[int, list[int]]]:
    """Both proxies running: the client proxy's outbound port and both processes' pids."""
    fork = multiprocessing.get_context("fork")  # the children inherit ANCHOR and ISSUER
    inbound, outbound = free_port(), free_port()
    processes: list[BaseProcess] = [
        fork.Process(target=proxy_process, args=("server", app_port, inbound, pair)),
        fork.Process(target=proxy_process, args=("client", inbound, outbound, pair)),
    ]
    try:
        for process in processes:
            process.start()
        wait_listening(inbound)
        wait_listening(outbound)
        yield outbound, [p.pid for p in processes if p.pid is not None]
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.join(timeout=10)


def haproxy_tls(folder: Path) -> tuple[str, str]:
    """The HAProxy pair's TLS options, server side and client side: the server terminates
    mTLS (a client certificate from the mesh's anchor required) in front of the app, the
    client originates it with its own leaf and checks the server's identity."""
    pem = serialization.Encoding.PEM
    for account in ("server", "client"):
        pair = leaf_of(account)
        chain = pair.cert.public_bytes(pem) + ISSUER.cert.public_bytes(pem)
        (folder / f"{account}.pem").write_bytes(chain + pair.key_pem())
    (folder / "anchor.pem").write_bytes(ANCHOR.cert.public_bytes(pem))
    trust = f"ca-file {folder / 'anchor.pem'} verify required alpn http/1.1"
    name = identity_name("server", "default")
    return (
        f"ssl crt {folder / 'server.pem'} {trust}",
        f"ssl crt {folder / 'client.pem'} {trust} verifyhost {name}",
    )


@contextmanager
def haproxy_pair(folder: Path, app_port: int, tls: bool) -> Iterator[tuple[int, list[int]]]:
    """The same pair made of HAProxy 2.6, the baseline: the client side's port and both
    processes' pids."""
    inbound, outbound = free_port(), free_port()
    server_tls, client_tls = haproxy_tls(folder) if tls else ("", "")
    confs = (
        haproxy_conf(folder, inbound, app_port, name="haproxy-server", bind=server_tls),
        haproxy_conf(folder, outbound, inbound, name="haproxy-client", server=client_tls),
    )
    processes: list[subprocess.Popen[bytes]] = []
    try:
        for conf in confs:
            processes.append(start(["haproxy", "-db", "-f", str(conf)]))
        wait_listening(inbound, process=processes[0])
        wait_listening(outbound, process=processes[1])
        yield outbound, [process.pid for process in processes]  # (as proxy_http.py's)
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=10)


@dataclass
class Result:
    cpu_us_per_req: float
    latency: dict[int, Latency]


def measure(port: int, pids: list[int], rates: list[int], seconds: float) -> Result:
    vegeta(port, 200, 1)  # warm-up: connections, pools, handshakes
    before = sum(cpu_seconds(pid) for pid in pids)
    answered = hey(port, CPU_RATE, 40, seconds)
    cpu = sum(cpu_seconds(pid) for pid in pids) - before
    latency = {rate: vegeta(port, rate, seconds) for rate in rates}
    return Result(cpu / len(answered) * 1e6 if pids else 0.0, latency)


PATHS = {
    "two proxies, plain HTTP/1": Pair(meshed=False),
    "two proxies, mTLS": Pair(meshed=True),
}


def report(results: dict[str, Result], rates: list[int]) -> str:
    direct = results["direct (baseline)"]
    lines = [f"{'path':<36} {'CPU us/req':>10}  (both proxies, at {CPU_RATE} rps)"]
    for name, r in results.items():
        lines.append(f"{name:<36} {r.cpu_us_per_req:>10.1f}" if r.cpu_us_per_req else name)
    for rate in rates:
        lines += ["", f"open loop at {rate} rps (vegeta), latency in ms"]
        lines.append(f"{'path':<36} {'p50':>7} {'p99':>8} {'ok':>6} {'+p50':>7} {'+p99':>8}")
        for name, r in results.items():
            lat, base = r.latency[rate], direct.latency[rate]
            lines.append(
                f"{name:<36} {lat.p50_ms:>7.2f} {lat.p99_ms:>8.2f} {lat.success:>6.1%} "
                f"{lat.p50_ms - base.p50_ms:>+7.2f} {lat.p99_ms - base.p99_ms:>+8.2f}"
            )
    plain = results["two proxies, plain HTTP/1"]
    lines.append("")
    for name in ("two proxies, mTLS",):
        cpu = results[name].cpu_us_per_req / plain.cpu_us_per_req
        lines.append(f"{name} over plain HTTP/1: CPU {cpu:.2f}x")
    for ours, theirs in (("plain HTTP/1", "plain HTTP/1"), ("mTLS", "mTLS")):
        cpu = results[f"two proxies, {ours}"].cpu_us_per_req
        cpu /= results[f"HAProxy pair, {theirs}"].cpu_us_per_req
        lines.append(f"Weft pair over HAProxy pair, {ours}: CPU {cpu:.2f}x")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rates", default="1000", help="open-loop rates, rps")
    parser.add_argument("--seconds", type=float, help="per measurement (BENCH_SECONDS)")
    parser.add_argument("--quick", action="store_true", help="3 s per measurement")
    args = parser.parse_args()
    try:
        rates = [int(rate) for rate in args.rates.split(",")]
    except ValueError:
        parser.error(f"--rates: not a list of integers: {args.rates!r}")
    seconds = args.seconds or (3.0 if args.quick else float(os.environ.get("BENCH_SECONDS", "10")))
    ensure_tools()
    print(f"before: {load_note()}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        app_port = free_port()
        app = start(["nginx", "-c", str(nginx_conf(Path(tmp), app_port, None)),
                     "-g", "daemon off;"])  # fmt: skip
        try:
            wait_listening(app_port)
            results = {"direct (baseline)": measure(app_port, [], rates, seconds)}
            for name, pair in PATHS.items():
                with proxy_pair(app_port, pair) as (port, pids):
                    time.sleep(0.5)
                    results[name] = measure(port, pids, rates, seconds)
            for name, tls in (("HAProxy pair, plain HTTP/1", False), ("HAProxy pair, mTLS", True)):
                with haproxy_pair(Path(tmp), app_port, tls) as (port, pids):
                    results[name] = measure(port, pids, rates, seconds)
        finally:
            app.terminate()
            app.wait(timeout=10)
    print(report(results, rates))
    print(f"after: {load_note()}")


if __name__ == "__main__":
    main()
