"""Regex denial of service: a route regex that backtracks cannot stall the proxy.

With Python's `re`, `^(?:/api/(\\w+/?)+$)` against `/api/` + n x `a` + `!` takes time
doubling with n (9 s at n = 26; hours at n = 40) on the proxy's one event-loop thread.
RE2 answers at once. The slow cases run in a child process: were matching to backtrack,
the child would be killed at a generous timeout and the test would fail, not hang, and
no timing is asserted.
"""

from __future__ import annotations

import http.client
import os
import select
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from proxy_configs import AUTHORITY

from weft_api.config import RequestMatch, ValueMatch
from weft_proxy.policies.request_match import RequestHead, compile_request_match

BACKTRACKING_ROUTE = r"^(?:/api/(\w+/?)+$)"
HOSTILE_PATH = "/api/" + "a" * 40 + "!"
CHILD_TIMEOUT_S = 60
CLIENT_TIMEOUT_S = 30
HERE = Path(__file__).parent

MATCH_IN_A_CHILD = f"""
from weft_api.config import RequestMatch
from weft_proxy.policies.request_match import RequestHead, compile_request_match

matches = compile_request_match(RequestMatch(path_regex={BACKTRACKING_ROUTE!r}))
print(matches(RequestHead("GET", {HOSTILE_PATH!r})), matches(RequestHead("GET", "/api/a/b")))
"""


def test_a_backtracking_route_regex_answers_a_hostile_path_at_once() -> None:
    result = subprocess.run(
        [sys.executable, "-c", MATCH_IN_A_CHILD],
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT_S,  # Python's `re` would need hours: TimeoutExpired
        check=True,
    )
    assert result.stdout.split() == ["False", "True"]


def test_dollar_matches_only_at_the_very_end() -> None:
    # Python's `$` also matches before a trailing newline; `?format=json%0A` decodes to one.
    match = RequestMatch(query_param=ValueMatch("format", "^(?:json)$"))
    assert compile_request_match(match)(RequestHead("GET", "/", "format=json"))
    assert not compile_request_match(match)(RequestHead("GET", "/", "format=json%0A"))


@pytest.mark.parametrize("regex", ["^(?:/books(?=/))", "^(?:(a)\\1)$", "^(?:(?<=/)b)"])
def test_a_regex_only_a_backtracking_engine_runs_is_refused_when_compiled(regex: str) -> None:
    # The config client then refuses the snapshot rather than mis-route.
    with pytest.raises(ValueError, match="invalid regex"):
        compile_request_match(RequestMatch(path_regex=regex))


PROXY_IN_A_CHILD = f"""
import asyncio

from aiohttp import web
from proxy_configs import backend, books, config

from weft_api.config import RequestMatch, Route
from weft_proxy.proxy import Proxy


async def main() -> None:
    async def answer(request: web.Request) -> web.Response:
        return web.Response(text="books " + request.path)

    app = web.Application()
    app.router.add_route("*", "/{{tail:.*}}", answer)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    route = Route("api", RequestMatch(path_regex={BACKTRACKING_ROUTE!r}))
    proxy = Proxy("shop")
    proxy.apply(config(books(backend("books", 1, [port]), routes=(route,))))
    servers = await proxy.listen("127.0.0.1", 0, 0, 0)
    print(*(server.sockets[0].getsockname()[1] for server in servers[1:]), flush=True)
    await asyncio.Event().wait()


asyncio.run(main())
"""


@pytest.fixture
def proxy_ports(tmp_path: Path) -> Iterator[tuple[int, int]]:
    """A proxy (and its backend) in a child process: its outbound and admin ports.

    A child, so that a stalled event loop stalls it, never this test's own timeouts."""
    with (tmp_path / "proxy.log").open("w+") as log:
        child = subprocess.Popen(
            [sys.executable, "-c", PROXY_IN_A_CHILD],
            cwd=HERE,  # `proxy_configs` imports from here
            env={**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), *sys.path])},
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
        )
        try:
            assert child.stdout is not None
            ready, _, _ = select.select([child.stdout], [], [], CHILD_TIMEOUT_S)
            line = child.stdout.readline() if ready else ""
            if not line:
                log.seek(0)
                pytest.fail(f"the proxy did not start: {log.read()}")
            outbound, admin = map(int, line.split())
            yield outbound, admin
        finally:
            child.kill()
            child.wait(timeout=CHILD_TIMEOUT_S)


def send(port: int, path: str) -> http.client.HTTPConnection:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=CLIENT_TIMEOUT_S)
    connection.request("GET", path, headers={"Host": AUTHORITY})
    return connection


def answer(connection: http.client.HTTPConnection) -> tuple[int, str]:
    # Python's `re` would hold the proxy's loop for hours: socket timeout, test fails.
    response = connection.getresponse()
    body = response.read().decode()
    connection.close()
    return response.status, body


def test_a_hostile_path_does_not_stall_the_proxy(proxy_ports: tuple[int, int]) -> None:
    outbound, admin = proxy_ports
    hostile = send(outbound, HOSTILE_PATH)
    normal = send(outbound, "/api/books/1")  # another connection, while the first is routed
    assert answer(normal) == (200, "books /api/books/1")
    assert answer(hostile) == (200, f"books {HOSTILE_PATH}")  # no route matched: the default

    status, metrics = answer(send(admin, "/metrics"))
    assert status == 200
    counted = {
        route: sum(
            float(line.rsplit(" ", 1)[1])
            for line in metrics.splitlines()
            if line.startswith("route_request_total{") and f'rt_route="{route}"' in line
        )
        for route in ("api", "")
    }
    assert counted == {"api": 1, "": 1}  # each request got its routing decision
