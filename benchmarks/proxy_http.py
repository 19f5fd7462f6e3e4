"""The proxy's cost, against direct, HAProxy 2.6 and nginx, in one run on loopback.

All four paths reach the same backend (nginx answering a small 200). Per path:
- CPU per request at a fixed 2000 rps (the proxy process's CPU time from /proc);
- latency at a fixed 1000 rps (p50, p99), and what the proxy adds over direct;
- saturation throughput with proxy and backend pinned to core 0, load on core 1;
- the proxy's RSS after the saturation run.

Needs nginx, haproxy and wrk (Debian) and hey (Go; built into ~/.cache/weft/tools on
first use). `make bench` installs them. Usage: .venv/bin/python benchmarks/proxy_http.py
"""

from __future__ import annotations

import csv
import io
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
TOOLS = Path(os.environ.get("WEFT_CACHE_DIR", Path.home() / ".cache" / "weft")) / "tools"
HEY = TOOLS / "hey"
AUTHORITY = "bench.default.svc.cluster.local"
TICKS = os.sysconf("SC_CLK_TCK")
SECONDS = float(os.environ.get("BENCH_SECONDS", "10"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_listening(port: int, within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise SystemExit(f"nothing listens on {port}")


def ensure_tools() -> None:
    missing = [tool for tool in ("nginx", "haproxy", "wrk", "taskset") if not shutil.which(tool)]
    if missing:
        raise SystemExit(f"missing {missing}: apt-get install nginx haproxy wrk (or make bench)")
    if not HEY.exists():
        env = dict(os.environ, GOBIN=str(TOOLS), GOFLAGS="")
        subprocess.run(["go", "install", "github.com/rakyll/hey@v0.1.5"], check=True, env=env)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


@dataclass
class Path_:
    name: str
    port: int
    pids: list[int]  # the processes doing the proxying (empty: direct)


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


def haproxy_conf(folder: Path, port: int, upstream: int) -> Path:
    conf = folder / "haproxy.cfg"
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
  bind 127.0.0.1:{port}
  default_backend app
backend app
  http-reuse always
  server app 127.0.0.1:{upstream}
"""
    )
    return conf


def children(pid: int) -> list[int]:
    found = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in found.read_text().split()] if found.exists() else []


def start(cmd: list[str], core: str = "0") -> subprocess.Popen[bytes]:
    return subprocess.Popen(["taskset", "-c", core, *cmd], stdout=subprocess.DEVNULL)


def hey(port: int, rate: int, workers: int) -> list[float]:
    """Latencies (s) of a fixed-rate run: `workers` x (rate / workers) requests per second."""
    out = subprocess.run(
        [
            "taskset", "-c", "1", str(HEY), "-z", f"{SECONDS:.0f}s", "-c", str(workers),
            "-q", str(rate // workers), "-host", AUTHORITY, "-o", "csv",
            f"http://127.0.0.1:{port}/",
        ],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    rows = list(csv.DictReader(io.StringIO(out)))
    return [float(r["response-time"]) for r in rows if r["status-code"] == "200"]


def wrk(port: int) -> float:
    out = subprocess.run(
        ["taskset", "-c", "1", "wrk", "-t1", "-c32", f"-d{SECONDS:.0f}s",
         "-H", f"Host: {AUTHORITY}", f"http://127.0.0.1:{port}/"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    line = next(line for line in out.splitlines() if line.startswith("Requests/sec"))
    return float(line.split()[1])


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=1000)[int(q * 1000) - 1]


def measure(path: Path_) -> dict[str, float]:
    before = sum(cpu_seconds(pid) for pid in path.pids)
    at_2000 = hey(path.port, 2000, 40)
    cpu = sum(cpu_seconds(pid) for pid in path.pids) - before
    at_1000 = hey(path.port, 1000, 20)
    throughput = wrk(path.port)
    return {
        "cpu_us_per_req": cpu / len(at_2000) * 1e6 if path.pids else 0.0,
        "achieved_rps_at_2000": len(at_2000) / SECONDS,
        "p50_ms": percentile(at_1000, 0.5) * 1000,
        "p99_ms": percentile(at_1000, 0.99) * 1000,
        "saturation_rps": throughput,
        "rss_mib": sum(rss_mib(pid) for pid in path.pids) if path.pids else 0.0,
    }


def main() -> None:
    ensure_tools()
    processes: list[subprocess.Popen[bytes]] = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        try:
            backend = free_port()
            processes.append(start(["nginx", "-c", str(nginx_conf(folder, backend, None)),
                                    "-g", "daemon off;"]))  # fmt: skip
            paths = [Path_("direct", backend, [])]
            weft = free_port()
            proxy = start([sys.executable, str(HERE / "weft_static_proxy.py"), str(weft),
                           str(backend)])  # fmt: skip
            processes.append(proxy)
            paths.append(Path_("weft", weft, [proxy.pid]))
            ha = free_port()
            haproxy = start(["haproxy", "-db", "-f", str(haproxy_conf(folder, ha, backend))])
            processes.append(haproxy)
            paths.append(Path_("haproxy 2.6", ha, [haproxy.pid]))
            ng = free_port()
            nginx = start(["nginx", "-c", str(nginx_conf(folder, ng, backend)),
                           "-g", "daemon off;"])  # fmt: skip
            processes.append(nginx)
            for path in paths:
                wait_listening(path.port)
            wait_listening(ng)
            time.sleep(0.5)
            paths.append(Path_("nginx", ng, children(nginx.pid) or [nginx.pid]))
            results = {path.name: measure(path) for path in paths}
        finally:
            for process in processes:
                process.terminate()
            for process in processes:
                process.wait(timeout=10)
    report(results)


def report(results: dict[str, dict[str, float]]) -> None:
    direct, ha = results["direct"], results["haproxy 2.6"]
    print(f"{'path':<12} {'cpu us/req':>10} {'p50 ms':>8} {'p99 ms':>8} {'+p50':>7} "
          f"{'+p99':>7} {'sat rps':>9} {'rss MiB':>8}")  # fmt: skip
    for name, r in results.items():
        print(
            f"{name:<12} {r['cpu_us_per_req']:>10.1f} {r['p50_ms']:>8.2f} {r['p99_ms']:>8.2f} "
            f"{r['p50_ms'] - direct['p50_ms']:>7.2f} {r['p99_ms'] - direct['p99_ms']:>7.2f} "
            f"{r['saturation_rps']:>9.0f} {r['rss_mib']:>8.1f}"
        )
    weft = results["weft"]
    print(f"weft/haproxy: cpu per request {weft['cpu_us_per_req'] / ha['cpu_us_per_req']:.2f}x, "
          f"saturation {weft['saturation_rps'] / ha['saturation_rps']:.2f}x")  # fmt: skip


if __name__ == "__main__":
    main()
