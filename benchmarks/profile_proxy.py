"""Where the Weft proxy's time goes on the HTTP/1 path: the weft path of proxy_http.py
(the same static proxy, nginx backend and pinning) under an open-loop constant rate
(vegeta) while py-spy samples the proxy process.

Writes a speedscope profile (drop it on https://www.speedscope.app, which reads it in
the browser) and prints the functions that take most samples, by own time and by time
including what they call. py-spy reads the process without pausing it (--nonblocking:
an occasional torn stack, no added latency) from core 1, beside the load generator,
which then has less of that core: compare the latency printed here with other profiles'
runs, not with proxy_http.py's.

`--instructions SECONDS` instead counts the instructions the proxy process executes per
request, under valgrind's callgrind, over SECONDS of load (wrk, 4 connections, closed
loop, after a warm-up; needs only nginx, wrk and valgrind): unlike CPU time, the count
hardly moves with the machine's load (the proxy runs some 50 times slower under
valgrind; what it executes is the same), so two versions of the code compare on a busy
machine. It counts none of the kernel's work for the proxy (system calls): a lower
bound of the cost, for comparisons. The window includes the set-up of wrk's 4
connections (a few million instructions): give it enough seconds (60 on a loaded
machine) for that to weigh little, and compare runs with similar request counts.
`--requests N` (with `--connections C`, 4) makes the window exactly N requests instead,
sent by a closed-loop keep-alive client of this process's, pinned to core 1: the same
work counted whatever the machine's load, so two runs compare to a few tenths of a
percent.

Usage: .venv/bin/python benchmarks/profile_proxy.py [--rate 1000] [--seconds 15]
       [--output FILE.speedscope.json] [--top 25] [--native]
       .venv/bin/python benchmarks/profile_proxy.py --instructions 20
       .venv/bin/python benchmarks/profile_proxy.py --requests 3000 [--connections 4]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from proxy_http import AUTHORITY, cpu_seconds, ensure_tools, load_note, running, vegeta

VALGRIND_START_S = 900.0  # the proxy's imports under valgrind, on a loaded machine


@dataclass(frozen=True)
class Hot:
    function: str
    own: float  # share of samples with this function innermost
    total: float  # share of samples with this function anywhere on the stack


def hot_functions(profile: dict[str, Any]) -> list[Hot]:
    """The functions of a speedscope profile (py-spy's: sampled, frames root first), by
    own share of the samples, all threads together."""
    frames = profile["shared"]["frames"]
    names = [f"{f['name']} ({Path(f.get('file') or '?').name}:{f.get('line')})" for f in frames]
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    samples = 0.0
    for thread in profile["profiles"]:
        for stack, weight in zip(thread["samples"], thread["weights"], strict=True):
            samples += weight
            if stack:
                own[names[stack[-1]]] += weight
            for name in {names[index] for index in stack}:
                total[name] += weight
    if not samples:
        return []
    return [
        Hot(name, own[name] / samples, total[name] / samples)
        for name in sorted(total, key=lambda name: (-own[name], -total[name]))
    ]


def table(hot: list[Hot], top: int) -> str:
    lines = [f"{'own':>6} {'total':>6}  function (file:line of its first line)"]
    lines += [f"{h.own:>6.1%} {h.total:>6.1%}  {h.function}" for h in hot[:top]]
    lines += ["", "by total (own time and what it calls):"]
    by_total = sorted(hot, key=lambda h: -h.total)[:top]
    lines += [f"{h.own:>6.1%} {h.total:>6.1%}  {h.function}" for h in by_total]
    return "\n".join(lines)


def callgrind_total(dump: str) -> int:
    """The instructions (Ir) a callgrind dump counted: its `summary:` (or `totals:`)."""
    for line in dump.splitlines():
        if line.startswith(("summary:", "totals:")):
            return int(line.split()[1])
    raise ValueError("no summary or totals line in the callgrind dump")


def wrk_requests(output: str) -> int:
    """The requests a wrk run completed ("N requests in ..."); ValueError if any was
    answered other than 2xx or 3xx."""
    if "Non-2xx or 3xx responses" in output:
        raise ValueError("some requests were not answered 2xx or 3xx")
    for line in output.splitlines():
        if " requests in " in line:
            return int(line.split()[0])
    raise ValueError("no request count in wrk's output")


def wrk_run(port: int, seconds: float) -> int:
    out = subprocess.run(
        ["taskset", "-c", "1", "wrk", "-t1", "-c4", f"-d{seconds:.0f}s", "--timeout", "10s",
         "-H", f"Host: {AUTHORITY}", f"http://127.0.0.1:{port}/"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return wrk_requests(out)


async def _keepalive(port: int, requests: int) -> None:
    """`requests` GETs in turn on one keep-alive connection, each answered 2xx with a
    content-length body (nginx's static page)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    request = f"GET / HTTP/1.1\r\nHost: {AUTHORITY}\r\n\r\n".encode()
    for _ in range(requests):
        writer.write(request)
        head = (await reader.readuntil(b"\r\n\r\n")).lower()
        if not head.startswith(b"http/1.1 2"):
            raise SystemExit(f"answered {head.splitlines()[0].decode()}")
        length = int(head.split(b"content-length:")[1].split(b"\r\n")[0])
        await reader.readexactly(length)
    writer.close()


def fixed_requests(port: int, requests: int, connections: int) -> int:
    """Exactly `requests` requests (rounded down to a multiple of `connections`) over
    `connections` keep-alive connections, from this process pinned to core 1."""
    os.sched_setaffinity(0, {1})
    each = requests // connections

    async def run() -> None:
        await asyncio.gather(*(_keepalive(port, each) for _ in range(connections)))

    asyncio.run(run())
    return each * connections


def instructions(seconds: float, requests: int | None = None, connections: int = 4) -> None:
    """Callgrind's window: `seconds` of wrk, or (`requests`) exactly that many."""
    valgrind = shutil.which("valgrind")
    control = shutil.which("callgrind_control")
    missing = [tool for tool in ("nginx", "wrk", "taskset") if not shutil.which(tool)]
    if valgrind is None or control is None or missing:
        raise SystemExit(f"missing {missing or ['valgrind']}: apt-get install valgrind wrk nginx")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"
        wrap = [valgrind, "-q", "--tool=callgrind", f"--callgrind-out-file={out}"]
        with running(["weft"], Path(tmp), wrap, VALGRIND_START_S) as targets:
            (weft,) = targets
            pid = str(weft.pids[0])  # taskset execs valgrind, which runs the proxy in place
            wrk_run(weft.port, 5)  # warm-up: connections, pools, first-use caches
            subprocess.run([control, "-z", pid], check=True, capture_output=True)
            if requests is None:
                requests = wrk_run(weft.port, seconds)
            else:
                requests = fixed_requests(weft.port, requests, connections)
            subprocess.run([control, "-d", pid], check=True, capture_output=True)
            dumps = sorted(Path(tmp).glob("callgrind.out*"), key=lambda p: p.stat().st_mtime)
            total = callgrind_total(dumps[-1].read_text())
    print(f"weft: {total / requests:,.0f} instructions per request ({requests} requests)")


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=int, default=1000, help="rps (%(default)s)")
    parser.add_argument("--seconds", type=float, default=15.0, help="(%(default)s)")
    default = Path(tempfile.gettempdir()) / f"weft-proxy-{time.strftime('%Y%m%dT%H%M%S')}"
    parser.add_argument("--output", type=Path, default=default.with_suffix(".speedscope.json"))
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--native", action="store_true", help="C frames too (uvloop, ssl)")
    parser.add_argument(
        "--instructions",
        type=float,
        metavar="SECONDS",
        help="count instructions per request over SECONDS of load (wrk) under callgrind",
    )
    parser.add_argument(
        "--requests",
        type=int,
        metavar="N",
        help="count instructions per request over exactly N requests under callgrind",
    )
    parser.add_argument("--connections", type=int, default=4, help="for --requests (4)")
    return parser.parse_args()


def main() -> None:
    args = arguments()
    if args.instructions or args.requests:
        print(f"before: {load_note()}", flush=True)
        instructions(args.instructions, args.requests, args.connections)
        print(f"after: {load_note()}")
        return
    ensure_tools()
    spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    if spy is None:
        raise SystemExit("py-spy not found: .venv/bin/pip install py-spy (it is in [dev])")
    print(f"before: {load_note()}", flush=True)
    with tempfile.TemporaryDirectory() as tmp, running(["weft"], Path(tmp)) as targets:
        (weft,) = targets
        time.sleep(0.5)
        vegeta(weft.port, args.rate, 2)  # warm-up: connections and pools
        record = [
            spy, "record", "--pid", str(weft.pids[0]), "--duration", f"{args.seconds:.0f}",
            "--rate", "200", "--nonblocking", "--function", "--format", "speedscope",
            "--output", str(args.output), *(["--native"] if args.native else []),
        ]  # fmt: skip
        sampler = subprocess.Popen(["taskset", "-c", "1", *record], stdout=subprocess.DEVNULL)
        cpu = cpu_seconds(weft.pids[0])
        latency = vegeta(weft.port, args.rate, args.seconds)
        cpu = cpu_seconds(weft.pids[0]) - cpu
        if sampler.wait(timeout=args.seconds + 30):
            raise SystemExit(f"py-spy failed (exit {sampler.returncode})")
    requests = latency.achieved_rps * args.seconds
    print(
        f"weft at {args.rate} rps for {args.seconds:.0f} s under py-spy: "
        f"p50 {latency.p50_ms:.2f} ms, p99 {latency.p99_ms:.2f} ms, ok {latency.success:.1%}, "
        f"CPU {cpu / requests * 1e6:.0f} us/req"
    )
    print(f"profile: {args.output}")
    print(table(hot_functions(json.loads(args.output.read_text())), args.top))
    print(f"after: {load_note()}")


if __name__ == "__main__":
    main()
