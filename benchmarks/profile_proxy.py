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

Usage: .venv/bin/python benchmarks/profile_proxy.py [--rate 1000] [--seconds 15]
       [--output FILE.speedscope.json] [--top 25] [--native]
       .venv/bin/python benchmarks/profile_proxy.py --instructions 20
"""

from __future__ import annotations

import argparse
import json
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


def instructions(seconds: float) -> None:
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
            requests = wrk_run(weft.port, seconds)
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
    return parser.parse_args()


def main() -> None:
    args = arguments()
    if args.instructions:
        print(f"before: {load_note()}", flush=True)
        instructions(args.instructions)
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
