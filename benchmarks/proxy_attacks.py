"""What an HTTP/2 flood costs the proxy's other clients, in one run on loopback.

The proxy runs in a process of its own (tests/proxy/proxy_process.py: the `Proxy` of
`python -m weft_proxy`, uvloop, on a static config) in front of an h2c application. Per
attack (tests/proxy/flood.py, at the lowest CPU priority, reconnecting whenever the proxy
closes it), a well-behaved client on another connection asks one request at a time:
first with no attack (the baseline), then during the attack. Printed per attack: the
client's success and p50/p99 as ratios to its baseline, the proxy's RSS before, at peak
and after, and what the attacker got (connections, GOAWAY codes).

Usage: .venv/bin/python benchmarks/proxy_attacks.py [SECONDS]
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import time
from pathlib import Path

PROXY_TESTS = Path(__file__).resolve().parent.parent / "tests" / "proxy"
sys.path.insert(0, str(PROXY_TESTS))

from h2_peers import H2Client, H2Server, Message, ServerStream, read_request, request_head  # noqa: E402

KINDS = ("rapid-reset", "settings", "ping", "priority")
BASELINE = 500


async def hello(request: Message, stream: ServerStream) -> object:
    await read_request(request, stream)
    return [(b":status", b"200")], b"hello", None


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def timed(client: H2Client, latencies: list[float]) -> bool:
    started = time.perf_counter()
    try:
        async with asyncio.timeout(10):
            answer = await client.request(request_head("app", "/"))
    except TimeoutError:
        return False
    latencies.append(time.perf_counter() - started)
    return answer.header(b":status") == b"200"


def quantiles(latencies: list[float]) -> tuple[float, float]:
    cuts = statistics.quantiles(latencies, n=100)
    return cuts[49], cuts[98]


async def one(kind: str, seconds: float, app_port: int) -> None:
    proxy = await asyncio.create_subprocess_exec(
        sys.executable,
        str(PROXY_TESTS / "proxy_process.py"),
        str(app_port),
        cwd=PROXY_TESTS,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    assert proxy.stdout is not None
    port = json.loads(await proxy.stdout.readline())["inbound"]
    client = await H2Client.connect(port)
    try:
        baseline: list[float] = []
        for _ in range(BASELINE):
            await timed(client, baseline)
        before = peak = rss_mb(proxy.pid)
        flood = await asyncio.create_subprocess_exec(
            sys.executable,
            str(PROXY_TESTS / "flood.py"),
            kind,
            str(port),
            str(seconds),
            "50000000",
            stdout=asyncio.subprocess.PIPE,
        )
        attacker = asyncio.create_task(flood.communicate())
        during: list[float] = []
        ok = total = 0
        while not attacker.done():
            ok += await timed(client, during)
            total += 1
            peak = max(peak, rss_mb(proxy.pid))
        result = json.loads((await attacker)[0])
        after: list[float] = []
        for _ in range(BASELINE):
            await timed(client, after)
        rss_after = rss_mb(proxy.pid)
    finally:
        await client.close()
        proxy.kill()
        await proxy.wait()
    (b50, b99), (d50, d99) = quantiles(baseline), quantiles(during)
    print(
        f"{kind:<12} success {ok / total:7.2%} of {total:5d}  "
        f"p50 {d50 * 1000:6.2f} ms ({d50 / b50:4.1f}x)  p99 {d99 * 1000:6.2f} ms "
        f"({d99 / b99:4.1f}x)  baseline p50/p99 {b50 * 1000:.2f}/{b99 * 1000:.2f} ms  "
        f"RSS {before:.0f} -> peak {peak:.0f} -> after {rss_after:.0f} MB  "
        f"attacker: {result['connections']} connections, GOAWAY {result['goaway']}"
    )


async def main(seconds: float) -> None:
    app = H2Server(hello, max_concurrent_streams=1000)
    app_port = await app.start()
    try:
        for kind in KINDS:
            await one(kind, seconds, app_port)
    finally:
        await app.close()


if __name__ == "__main__":
    asyncio.run(main(float(sys.argv[1]) if len(sys.argv) > 1 else 10.0))
