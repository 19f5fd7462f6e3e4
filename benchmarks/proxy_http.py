"""The proxy's cost, against direct, HAProxy 2.6 and nginx, in one run on loopback.

All paths reach the same backend (nginx answering a small 200). Per path:
- CPU per request at a fixed 2000 rps (hey; the proxy process's CPU time from /proc);
- latency under an open-loop constant rate (vegeta) at 1000 and 4000 rps: p50, p99,
  and what the proxy adds over direct and over HAProxy. Open loop: requests leave on
  schedule whether or not earlier ones have answered, so a slow proxy queues them
  (hey's workers wait for each answer and tick together: bursts that distort it);
- saturation throughput (wrk, 32 connections);
- the proxy's RSS after the saturation run.
Each measurement runs over every path in turn before the next measurement starts, in
this order: CPU, saturation, then the open-loop rates.
Proxies and backend are pinned to core 0, the load generators to core 1.

Needs nginx, haproxy and wrk (Debian) and hey and vegeta (Go; built into
~/.cache/weft/tools on first use). `make bench` installs them.

Usage: .venv/bin/python benchmarks/proxy_http.py [--paths direct,weft,haproxy,nginx]
       [--rates 1000,4000] [--seconds 10] [--quick] [--no-saturation]
Each measurement lasts BENCH_SECONDS (default 10; --quick: 3).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
TOOLS = Path(os.environ.get("WEFT_CACHE_DIR", Path.home() / ".cache" / "weft")) / "tools"
HEY = TOOLS / "hey"
VEGETA = TOOLS / "vegeta"
GO_TOOLS = {HEY: "github.com/rakyll/hey@v0.1.5", VEGETA: "github.com/tsenart/vegeta/v12@v12.13.0"}
AUTHORITY = "bench.default.svc.cluster.local"
TICKS = os.sysconf("SC_CLK_TCK")
PATHS = ("direct", "weft", "haproxy", "nginx")
CPU_RATE = 2000


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_listening(
    port: int, within: float = 10.0, process: subprocess.Popen[bytes] | None = None
) -> None:
    """Until something listens on `port`; at once if `process`, which should, has exited."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise SystemExit(f"{process.args} exited ({process.returncode}) before listening")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise SystemExit(f"nothing listens on {port}")


def ensure_tools() -> None:
    missing = [tool for tool in ("nginx", "haproxy", "wrk", "taskset") if not shutil.which(tool)]
    if missing:
        raise SystemExit(f"missing {missing}: apt-get install nginx haproxy wrk (or make bench)")
    for binary, module in GO_TOOLS.items():
        if not binary.exists():
            env = dict(os.environ, GOBIN=str(TOOLS), GOFLAGS="")
            subprocess.run(["go", "install", module], check=True, env=env)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


@dataclass
class Target:
    name: str
    port: int
    pids: list[int]  # the processes doing the proxying (empty: direct)


@dataclass(frozen=True)
class Latency:
    """One open-loop run's outcome, as vegeta reports it."""

    p50_ms: float
    p99_ms: float
    max_ms: float
    success: float  # the share of 2xx answers
    achieved_rps: float


@dataclass
class Result:
    cpu_us_per_req: float = 0.0
    achieved_rps_at_cpu_rate: float = 0.0
    latency: dict[int, Latency] = field(default_factory=dict)  # by rate
    saturation_rps: float | None = None
    rss_mib: float = 0.0


def nginx_conf(folder: Path, port: int, upstream: int | None) -> Path:
    if upstream is None:
        location = 'return 200 "ok\\n";'
        upstream_block = ""
    else:
        location = (
            'proxy_pass http://backend; proxy_http_version 1.1; proxy_set_header Connection "";'
        )
        upstream_block = f"upstream backend {{ server 127.0.0.1:{upstream}; keepalive 64; }}"
    conf = folder / f"nginx-{port}.conf"
    conf.write_text(
        f"""
worker_processes 1;
pid {folder}/nginx-{port}.pid;
error_log {folder}/nginx-{port}.err warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {folder}; proxy_temp_path {folder};
  fastcgi_temp_path {folder}; uwsgi_temp_path {folder}; scgi_temp_path {folder};
  keepalive_requests 1000000;
  {upstream_block}
  server {{ listen 127.0.0.1:{port}; location / {{ {location} }} }}
}}
"""
    )
    return conf


def haproxy_conf(
    folder: Path,
    port: int,
    upstream: int,
    *,
    name: str = "haproxy",
    bind: str = "",
    server: str = "",
) -> Path:
    """HAProxy 2.6 in front of `upstream`; `bind` and `server` add options to each side
    (proxy_mtls.py's pair: TLS)."""
    conf = folder / f"{name}.cfg"
    conf.write_text(
        f"""
global
  nbthread 1
defaults
  mode http
  timeout connect 5s
  timeout client 30s
  timeout server 30s
  option http-keep-alive
frontend bench
  bind 127.0.0.1:{port} {bind}
  default_backend app
backend app
  http-reuse always
  server app 127.0.0.1:{upstream} {server}
"""
    )
    return conf


def children(pid: int) -> list[int]:
    found = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in found.read_text().split()] if found.exists() else []


def start(cmd: list[str], core: str = "0") -> subprocess.Popen[bytes]:
    return subprocess.Popen(["taskset", "-c", core, *cmd], stdout=subprocess.DEVNULL)


def hey(port: int, rate: int, workers: int, seconds: float) -> list[float]:
    """Latencies (s) of a fixed-rate run: `workers` x (rate / workers) requests per second."""
    out = subprocess.run(
        [
            "taskset", "-c", "1", str(HEY), "-z", f"{seconds:.0f}s", "-c", str(workers),
            "-q", str(rate // workers), "-host", AUTHORITY, "-o", "csv",
            f"http://127.0.0.1:{port}/",
        ],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    rows = list(csv.DictReader(io.StringIO(out)))
    return [float(r["response-time"]) for r in rows if r["status-code"] == "200"]


def parse_vegeta(report: str) -> Latency:
    """`vegeta report -type=json` (latencies in ns) as a Latency."""
    data = json.loads(report)
    latencies = data["latencies"]
    return Latency(
        p50_ms=latencies["50th"] / 1e6,
        p99_ms=latencies["99th"] / 1e6,
        max_ms=latencies["max"] / 1e6,
        success=float(data["success"]),
        achieved_rps=float(data["throughput"]),
    )


def vegeta(port: int, rate: int, seconds: float) -> Latency:
    """An open-loop run at `rate` requests per second over keep-alive connections."""
    attack = subprocess.run(
        ["taskset", "-c", "1", str(VEGETA), "attack", f"-rate={rate}/s",
         f"-duration={seconds:.0f}s", "-header", f"Host: {AUTHORITY}", "-timeout=10s"],
        input=f"GET http://127.0.0.1:{port}/\n".encode(), capture_output=True, check=True,
    ).stdout  # fmt: skip
    report = subprocess.run(
        [str(VEGETA), "report", "-type=json"], input=attack, capture_output=True, check=True
    ).stdout
    return parse_vegeta(report.decode())


def wrk(port: int, seconds: float) -> float:
    out = subprocess.run(
        ["taskset", "-c", "1", "wrk", "-t1", "-c32", f"-d{seconds:.0f}s",
         "-H", f"Host: {AUTHORITY}", f"http://127.0.0.1:{port}/"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    line = next(line for line in out.splitlines() if line.startswith("Requests/sec"))
    return float(line.split()[1])


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=1000)[int(q * 1000) - 1]


def measure(
    targets: list[Target], rates: list[int], seconds: float, saturation: bool
) -> dict[str, Result]:
    """Each measurement over every path in turn (not every measurement of one path, then
    the next): on a shared machine, a change of load then falls on all paths alike."""
    results = {target.name: Result() for target in targets}
    for target in targets:
        result = results[target.name]
        before = sum(cpu_seconds(pid) for pid in target.pids)
        at_cpu_rate = hey(target.port, CPU_RATE, 40, seconds)
        cpu = sum(cpu_seconds(pid) for pid in target.pids) - before
        if target.pids:
            result.cpu_us_per_req = cpu / len(at_cpu_rate) * 1e6
        result.achieved_rps_at_cpu_rate = len(at_cpu_rate) / seconds
    for target in targets:
        if saturation:
            results[target.name].saturation_rps = wrk(target.port, seconds)
        results[target.name].rss_mib = sum(rss_mib(pid) for pid in target.pids)
    # Open loop last, rates ascending: past saturation, a proxy is left with a backlog
    # (and hundreds of connections) that would weigh on whatever ran next.
    for rate in sorted(rates):
        for target in targets:
            results[target.name].latency[rate] = vegeta(target.port, rate, seconds)
    return results


@contextlib.contextmanager
def running(
    names: list[str], folder: Path, wrap_weft: list[str] | None = None, within: float = 10.0
) -> Iterator[list[Target]]:
    """The backend and the chosen paths to it, listening; stopped on the way out.
    `wrap_weft` runs the Weft proxy under a command (valgrind), `within` the time it
    may take to start listening."""
    processes: list[subprocess.Popen[bytes]] = []
    try:
        backend = free_port()
        processes.append(start(["nginx", "-c", str(nginx_conf(folder, backend, None)),
                                "-g", "daemon off;"]))  # fmt: skip
        wait_listening(backend)
        targets = []
        for name in names:
            port = free_port()
            if name == "direct":
                targets.append(Target(name, backend, []))
                continue
            if name == "weft":
                cmd = [sys.executable, str(HERE / "weft_static_proxy.py"), str(port), str(backend)]
                cmd = [*(wrap_weft or []), *cmd]
            elif name == "haproxy":
                cmd = ["haproxy", "-db", "-f", str(haproxy_conf(folder, port, backend))]
            else:
                cmd = ["nginx", "-c", str(nginx_conf(folder, port, backend)), "-g", "daemon off;"]
            process = start(cmd)
            processes.append(process)
            wait_listening(port, within if name == "weft" else 10.0, process)
            # nginx proxies in its worker (the master's child); the others in themselves.
            pids = (children(process.pid) or [process.pid]) if name == "nginx" else [process.pid]
            targets.append(Target(name, port, pids))
        yield targets
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=10)


def ratio(value: float, base: float) -> str:
    return f"{value / base:.2f}x" if base else "-"


def report(results: dict[str, Result], rates: list[int]) -> str:
    """The figures as text: one table of cost, one of latency per rate, then the ratios
    the targets are stated in (Weft against HAProxy)."""
    lines = [f"{'path':<10} {'cpu us/req':>10} {'rps@' + str(CPU_RATE):>9} {'sat rps':>9} "
             f"{'rss MiB':>8}"]  # fmt: skip
    for name, r in results.items():
        saturation = "-" if r.saturation_rps is None else f"{r.saturation_rps:.0f}"
        cpu = f"{r.cpu_us_per_req:.1f}" if r.cpu_us_per_req else "-"
        lines.append(f"{name:<10} {cpu:>10} {r.achieved_rps_at_cpu_rate:>9.0f} "
                     f"{saturation:>9} {r.rss_mib:>8.1f}")  # fmt: skip
    direct, ha = results.get("direct"), results.get("haproxy")
    for rate in rates:
        lines += ["", f"open loop at {rate} rps (vegeta), latency in ms"]
        lines.append(f"{'path':<10} {'p50':>7} {'p99':>8} {'max':>8} {'ok':>6} "
                     f"{'+p50':>7} {'+p99':>8} {'p50/HA':>7} {'p99/HA':>7}")  # fmt: skip
        for name, r in results.items():
            lat = r.latency[rate]
            base = direct.latency[rate] if direct else None
            add50 = f"{lat.p50_ms - base.p50_ms:+.2f}" if base else "-"
            add99 = f"{lat.p99_ms - base.p99_ms:+.2f}" if base else "-"
            ha_lat = ha.latency[rate] if ha else None
            x50 = ratio(lat.p50_ms, ha_lat.p50_ms) if ha_lat else "-"
            x99 = ratio(lat.p99_ms, ha_lat.p99_ms) if ha_lat else "-"
            lines.append(
                f"{name:<10} {lat.p50_ms:>7.2f} {lat.p99_ms:>8.2f} {lat.max_ms:>8.1f} "
                f"{lat.success:>6.1%} {add50:>7} {add99:>8} {x50:>7} {x99:>7}"
            )
    weft = results.get("weft")
    if weft and ha:
        lines.append("")
        cpu = ratio(weft.cpu_us_per_req, ha.cpu_us_per_req)
        lines.append(f"Weft/HAProxy CPU per request: {cpu}")
        if weft.saturation_rps is not None and ha.saturation_rps:
            lines.append(f"saturation ratio (Weft/HAProxy): "
                         f"{ratio(weft.saturation_rps, ha.saturation_rps)}")  # fmt: skip
    return "\n".join(lines)


def load_note() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min) on {os.cpu_count()} cores"


def arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--paths", default=",".join(PATHS), help="comma-separated: %(default)s")
    parser.add_argument("--rates", default="1000,4000", help="open-loop rates, rps")
    parser.add_argument("--seconds", type=float, help="per measurement (BENCH_SECONDS)")
    parser.add_argument("--quick", action="store_true", help="3 s per measurement")
    parser.add_argument("--no-saturation", dest="saturation", action="store_false")
    args = parser.parse_args(argv)
    names = [name.strip() for name in args.paths.split(",") if name.strip()]
    unknown = sorted(set(names) - set(PATHS))
    if unknown or not names:
        parser.error(f"--paths: unknown {unknown}; choose from {', '.join(PATHS)}")
    args.paths = [name for name in PATHS if name in names]
    try:
        args.rates = [int(rate) for rate in args.rates.split(",")]
    except ValueError:
        parser.error(f"--rates: not a list of integers: {args.rates!r}")
    if args.seconds is None:
        args.seconds = 3.0 if args.quick else float(os.environ.get("BENCH_SECONDS", "10"))
    return args


def main() -> None:
    args = arguments()
    ensure_tools()
    print(f"before: {load_note()}", flush=True)
    with tempfile.TemporaryDirectory() as tmp, running(args.paths, Path(tmp)) as targets:
        time.sleep(0.5)  # let the proxies finish starting (nginx's worker, Weft's imports)
        results = measure(targets, args.rates, args.seconds, args.saturation)
    print(report(results, args.rates))
    print(f"after: {load_note()}")


if __name__ == "__main__":
    main()
