"""The mesh end to end: the bookshop's pods call each other through their injected
proxies, over mTLS, as policy allows; splits steer traffic; the data plane outlives
its control plane."""

from __future__ import annotations

import collections

import aiohttp
from meshed_bookshop import NAMESPACE, STRANGER, Bookshop, ControlPlane

from weft_localcluster.waiting import eventually


def with_labels(lines: list[str], name: str, **labels: str) -> list[str]:
    return [
        line
        for line in lines
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items())
    ]


def total(lines: list[str]) -> float:
    return sum(float(line.rsplit(" ", 1)[1]) for line in lines)


async def versions(
    shop: Bookshop, http: aiohttp.ClientSession, count: int
) -> collections.Counter[str]:
    """Which books version served each of `count` page loads of the web front."""
    seen: collections.Counter[str] = collections.Counter()
    for _ in range(count):
        status, body = await shop.web(http)
        seen[body.get("books_version") or f"status {status}"] += 1
    return seen


async def test_http_and_grpc_between_pods_are_mtls_with_the_clients_identity(
    bookshop: Bookshop, http: aiohttp.ClientSession
) -> None:
    web = bookshop.identity("web")

    async def rated() -> bool:
        # web gives ratings a short deadline: on a loaded machine the first calls, while
        # web's proxy discovers ratings, may miss it; the page is then served unrated.
        status, body = await bookshop.web(http)
        assert status == 200, body
        return all(book["rating"] for book in body["books"])  # answered over gRPC

    await eventually(rated, "web's page to carry ratings, answered over gRPC", 30)

    async def served_over_mtls() -> bool:
        books = await bookshop.proxy_metrics(http, "books")
        ratings = await bookshop.proxy_metrics(http, "ratings")
        inbound = {"direction": "inbound", "tls": "true", "client_id": web}
        return bool(
            total(with_labels(books, "request_total", **inbound)) > 0
            and total(with_labels(ratings, "request_total", **inbound)) > 0
        )

    await eventually(served_over_mtls, "books and ratings to count mTLS requests from web", 20)
    web_metrics = await bookshop.proxy_metrics(http, "web")
    outbound = with_labels(web_metrics, "response_total", direction="outbound", tls="true")
    assert any(f'server_id="{bookshop.identity("books")}"' in line for line in outbound)


async def test_raw_tcp_between_pods_is_mtls(
    bookshop: Bookshop, http: aiohttp.ClientSession
) -> None:
    answer = await bookshop.relay(http, "tcp", host="echo", port="7000", payload="\x00ping\x01")
    assert answer == {"echo": "\x00ping\x01"}, answer
    echo = await bookshop.proxy_metrics(http, "echo")
    opened = with_labels(
        echo,
        "tcp_open_total",
        direction="inbound",
        tls="true",
        client_id=bookshop.identity(STRANGER),
    )
    assert total(opened) >= 1


async def test_a_split_90_10_is_observed_and_a_shift_applies(
    bookshop: Bookshop, http: aiohttp.ClientSession
) -> None:
    try:
        bookshop.set_weights({"books-v1": 90, "books-v2": 10})
        await eventually(
            lambda: _served_by(bookshop, http, "v2"), "the 10% backend to get traffic", 20
        )
        seen = await versions(bookshop, http, 300)
        assert set(seen) == {"v1", "v2"}, seen
        assert 0.05 <= seen["v2"] / 300 <= 0.17, seen  # 10% within sampling noise

        bookshop.set_weights({"books-v1": 100, "books-v2": 0})
        await eventually(lambda: _only(bookshop, http, "v1"), "100/0 to settle", 20)
        # How fast a shift applies is a timing (benchmarks/config_push.py measures the
        # push); a bound of 2 s failed beside a second `make test`. Here: that it does.
        bookshop.set_weights({"books-v1": 0, "books-v2": 100})
        await eventually(lambda: _only(bookshop, http, "v2"), "0/100 to take effect", 30)
    finally:
        bookshop.set_weights({"books-v1": 100, "books-v2": 0})


async def _served_by(shop: Bookshop, http: aiohttp.ClientSession, version: str) -> bool:
    return (await versions(shop, http, 20))[version] > 0


async def _only(shop: Bookshop, http: aiohttp.ClientSession, version: str) -> bool:
    return set(await versions(shop, http, 5)) == {version}


async def test_an_unauthorized_client_gets_403_until_policy_allows_it(
    bookshop: Bookshop, http: aiohttp.ClientSession
) -> None:
    url = f"http://books.{NAMESPACE}.svc.cluster.local:8080/books"
    denied = await bookshop.relay(http, "http", url=url)
    assert denied["status"] == 403, denied
    grant = {
        "apiVersion": "policy.linkerd.io/v1beta1",
        "kind": "ServerAuthorization",
        "metadata": {"name": "books-from-stranger", "namespace": NAMESPACE},
        "spec": {
            "server": {"name": "books-http"},
            "client": {"meshTLS": {"serviceAccounts": [{"name": STRANGER}]}},
        },
    }
    bookshop.apply(grant)
    try:

        async def allowed() -> bool:
            return (await bookshop.relay(http, "http", url=url))["status"] == 200

        await eventually(allowed, "the new ServerAuthorization to admit the stranger", 20)
    finally:
        bookshop.kubectl("delete", "serverauthorization", "books-from-stranger")


async def test_plaintext_to_a_server_that_requires_mtls_is_refused(
    bookshop: Bookshop, http: aiohttp.ClientSession
) -> None:
    """books admits only web's identity: the host, unmeshed, gets 403 from its proxy."""
    ip = bookshop.pod_ips("books")[0]
    async with http.get(f"http://{ip}:8080/books") as response:
        assert response.status == 403
        assert "unauthorized" in response.headers["weft-proxy-error"]


async def test_a_failing_backend_behind_a_retryable_route_fails_no_client(
    bookshop: Bookshop, http: aiohttp.ClientSession
) -> None:
    """GET /books is retryable in the sample's ServiceProfile: with v2 failing a third
    of its requests and half the traffic, the retry budget absorbs every failure. The
    web proxy's metrics still show v2 failing (per attempt), so a canary analysis sees
    it, while the route's own figures show what clients got."""
    bookshop.kubectl("set", "env", "deployment/books-v2", "BOOKS_FAILURE_RATE=0.3")
    bookshop.kubectl("rollout", "status", "deployment/books-v2", "--timeout=120s")
    try:
        bookshop.set_weights({"books-v1": 50, "books-v2": 50})
        await eventually(lambda: _served_by(bookshop, http, "v2"), "v2 to get traffic", 20)
        seen = await versions(bookshop, http, 100)
        assert set(seen) <= {"v1", "v2"}, seen  # no failure reached the web front
        web = await bookshop.proxy_metrics(http, "web")
        to_v2 = {"direction": "outbound", "dst_service": "books-v2"}
        assert total(with_labels(web, "response_total", **to_v2, classification="failure")) > 0
        retried = with_labels(web, "route_actual_response_total", classification="failure")
        assert total(retried) > 0
    finally:
        bookshop.set_weights({"books-v1": 100, "books-v2": 0})
        bookshop.kubectl("set", "env", "deployment/books-v2", "BOOKS_FAILURE_RATE=0")
        bookshop.kubectl("rollout", "status", "deployment/books-v2", "--timeout=120s")


async def test_a_flagger_v1alpha1_split_steers_traffic(
    bookshop: Bookshop, http: aiohttp.ClientSession
) -> None:
    """Flagger writes v1alpha1: apex `books`, backends `-primary` and `-canary`, and
    weights as quantities ("500m")."""
    services = [
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": f"books-{role}", "namespace": NAMESPACE},
            "spec": {
                "selector": {"app": "books", "version": version},
                "ports": [{"name": "http", "port": 8080, "targetPort": "http"}],
            },
        }
        for role, version in (("primary", "v1"), ("canary", "v2"))
    ]
    bookshop.apply(*services)
    try:
        bookshop.apply(
            {
                "apiVersion": "split.smi-spec.io/v1alpha1",
                "kind": "TrafficSplit",
                "metadata": {"name": "books", "namespace": NAMESPACE},
                "spec": {
                    "service": "books",
                    "backends": [
                        {"service": "books-primary", "weight": "0m"},
                        {"service": "books-canary", "weight": "1000m"},
                    ],
                },
            }
        )
        await eventually(lambda: _only(bookshop, http, "v2"), "the canary to take all traffic", 20)
    finally:
        bookshop.set_weights({"books-v1": 100, "books-v2": 0})
        bookshop.kubectl("delete", "service", "books-primary", "books-canary")


async def test_killing_the_operator_interrupts_no_traffic_and_a_restart_reconverges(
    bookshop: Bookshop, control_plane: ControlPlane, http: aiohttp.ClientSession
) -> None:
    control_plane.kill_operator()
    try:
        seen = await versions(bookshop, http, 50)
        assert seen == {"v1": 50}, seen  # proxies keep their last config
    finally:
        control_plane.restart_operator()
    try:
        bookshop.set_weights({"books-v1": 0, "books-v2": 100})
        # The new pod leads once the killed one's Lease expires (15 s), then pushes.
        await eventually(lambda: _only(bookshop, http, "v2"), "the restarted operator to push", 60)
    finally:
        bookshop.set_weights({"books-v1": 100, "books-v2": 0})


async def test_a_wholly_failing_canary_behind_a_retryable_route_reaches_no_user(
    bookshop: Bookshop, http: aiohttp.ClientSession
) -> None:
    """Issue #19's canary: v2 fails every request at weight 20. A retry chooses again
    (another backend, when the canary has no other endpoint), and once failure accrual
    ejects v2's endpoint its share is retried elsewhere too, instead of the client's
    proxy answering 503 itself: no user sees a failure, while web's per-attempt
    figures still show v2 failing, for the canary analysis to roll it back."""
    bookshop.kubectl("set", "env", "deployment/books-v2", "BOOKS_FAILURE_RATE=1")
    bookshop.kubectl("rollout", "status", "deployment/books-v2", "--timeout=120s")
    to_v2 = {"direction": "outbound", "dst_service": "books-v2", "classification": "failure"}

    async def v2_failures() -> float:
        return total(
            with_labels(await bookshop.proxy_metrics(http, "web"), "response_total", **to_v2)
        )

    try:
        before = await v2_failures()
        bookshop.set_weights({"books-v1": 80, "books-v2": 20})

        async def v2_tried() -> bool:
            await versions(bookshop, http, 10)
            return await v2_failures() > before

        await eventually(v2_tried, "web's proxy to try the failing v2", 30)
        seen = await versions(bookshop, http, 200)
        assert seen == {"v1": 200}, seen  # every page served, by v1
        assert await v2_failures() > before
    finally:
        bookshop.set_weights({"books-v1": 100, "books-v2": 0})
        bookshop.kubectl("set", "env", "deployment/books-v2", "BOOKS_FAILURE_RATE=0")
        bookshop.kubectl("rollout", "status", "deployment/books-v2", "--timeout=120s")
