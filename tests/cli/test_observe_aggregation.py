"""The pure side of `weft stat`, `routes`, `edges` and `top`: golden metric texts (two
reads of two proxies, 10 s apart, in golden/metrics/) in, the figures a user reads out.

The expected figures are worked out by hand in the comments of the metric files.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from weft_cli.observe import exposition
from weft_cli.observe.edges import edges
from weft_cli.observe.exposition import Sample
from weft_cli.observe.golden import host_of
from weft_cli.observe.histogram import quantile
from weft_cli.observe.pods import PodInfo
from weft_cli.observe.routes import DEFAULT_ROUTE, Profile, profile_stats, route_stats
from weft_cli.observe.splits import Backend, Split, split_stats
from weft_cli.observe.stats import DEPLOYMENT, NAMESPACE, POD, workload_stats
from weft_cli.observe.tap_events import Observed
from weft_cli.observe.top import TopTable
from weft_cli.observe.window import Window, from_scrapes, increases

METRICS = Path(__file__).parent / "golden" / "metrics"
WEB = PodInfo("shop", "web-7d9f8-abcde", "deployment", "web", "web", "0.1.0", phase="Running")
BOOKS = PodInfo("shop", "books-stable-5c7d-xk2p9", "deployment", "books-stable", "books", "0.1.0")
UNMESHED = PodInfo("shop", "legacy-0", "statefulset", "legacy")
WEB_UNMESHED = PodInfo("shop", "web-7d9f8-zzzzz", "deployment", "web", "web", None)


def read(name: str) -> list[Sample]:
    return exposition.parse((METRICS / f"{name}.txt").read_text())


@pytest.fixture
def window() -> Window:
    return from_scrapes(
        10.0,
        [
            (WEB, read("web.before"), read("web.after")),
            (BOOKS, read("books-stable.before"), read("books-stable.after")),
        ],
    )


def test_parsing_drops_empty_labels_and_creation_times() -> None:
    samples = read("web.before")
    assert not any(s.name.endswith("_created") for s in samples)
    inbound = next(s for s in samples if s.name == "response_total")
    assert "client_id" not in dict(inbound.labels)
    assert dict(inbound.labels)["srv_name"] == "all-unauthenticated"
    assert inbound.cumulative
    assert not next(s for s in samples if s.name == "tcp_open_connections").cumulative


def test_a_window_takes_increases_and_latest_gauges() -> None:
    def sample(value: float, cumulative: bool = True) -> Sample:
        return Sample("response_total", (("a", "1"),), value, cumulative)

    assert increases([sample(10)], [sample(25)])[0][2] == 15
    assert increases([], [sample(5)])[0][2] == 5  # born during the window
    assert increases([sample(100)], [sample(7)])[0][2] == 7  # the proxy restarted
    assert increases([sample(3, False)], [sample(1, False)])[0][2] == 1  # a gauge


def test_quantiles_interpolate_within_buckets_as_prometheus_does() -> None:
    buckets = {1.0: 10, 5.0: 50, 10.0: 80, 50.0: 95, 100.0: 100, float("inf"): 100}
    assert quantile(0.5, buckets) == 5.0
    assert quantile(0.95, buckets) == 50.0
    assert quantile(0.99, buckets) == pytest.approx(90.0)
    assert quantile(0.5, {}) is None
    assert quantile(0.99, {10.0: 1, float("inf"): 100}) == 10.0  # beyond the last bound


def test_deployments_show_their_own_inbound_traffic(window: Window) -> None:
    rows = workload_stats(DEPLOYMENT, [WEB, WEB_UNMESHED, BOOKS, UNMESHED], window)
    assert [(r.name, r.meshed, r.pods) for r in rows] == [("books-stable", 1, 1), ("web", 1, 2)]
    web = rows[1].figures
    assert web.requests == 100
    assert web.rps == 10.0
    assert web.success == 0.9
    assert (web.p50, web.p95) == (5.0, 50.0)
    assert web.p99 == pytest.approx(90.0)
    assert web.tcp_connections == 3  # the gauge's latest value
    assert rows[0].figures.success == 1.0


def test_pods_namespaces_and_one_name(window: Window) -> None:
    pods = [WEB, BOOKS, UNMESHED]
    assert [r.name for r in workload_stats(POD, pods, window)] == [
        "books-stable-5c7d-xk2p9",
        "legacy-0",
        "web-7d9f8-abcde",
    ]
    (shop,) = workload_stats(NAMESPACE, pods, window)
    assert (shop.name, shop.meshed, shop.pods, shop.figures.requests) == ("shop", 2, 3, 180)
    (web,) = workload_stats(DEPLOYMENT, pods, window, name="web")
    assert web.name == "web"
    legacy = workload_stats(POD, pods, window, name="legacy-0")[0].figures
    assert (legacy.success, legacy.rps, legacy.p50) == (None, 0.0, None)  # shown as "-"


SPLIT = Split(
    "shop",
    "books",
    "books",
    (Backend("books-stable", 900, "900m"), Backend("books-canary", 100, "100m")),
)


def test_a_split_shows_weight_next_to_real_traffic_per_backend(window: Window) -> None:
    stable, canary = split_stats(SPLIT, window, "cluster.local")
    assert (stable.backend, stable.weight, stable.weight_share) == ("books-stable", "900m", 0.9)
    assert (stable.traffic_share, stable.figures.success) == (0.8, 1.0)
    assert (canary.weight_share, canary.traffic_share) == (0.1, 0.2)
    assert canary.figures.success == 0.75  # 5 of its 20 failed
    assert canary.figures.rps == 2.0


def test_traffic_to_a_service_the_split_does_not_name_shows_too(window: Window) -> None:
    only_stable = Split("shop", "books", "books", (Backend("books-stable", 1, "1"),))
    rows = {row.backend: row for row in split_stats(only_stable, window, "cluster.local")}
    assert rows["books-canary"].weight == "-"
    assert rows["books-canary"].weight_share is None


def test_authorities_are_compared_without_their_port() -> None:
    assert host_of("books.shop.svc.cluster.local:80") == "books.shop.svc.cluster.local"
    assert host_of("books") == "books"
    assert host_of("[fd00::1]:80") == "[fd00::1]"


PROFILE = Profile(
    "shop", "books.shop.svc.cluster.local", "books", "cluster.local", ("GET /books", "POST /books")
)


def test_routes_count_by_route_with_a_default_for_the_unmatched(window: Window) -> None:
    rows = {row.route: row.figures for row in route_stats(PROFILE, window)}
    assert list(rows) == ["GET /books", "POST /books", DEFAULT_ROUTE]
    assert rows["GET /books"].requests == 80
    assert rows["GET /books"].success == 75 / 80
    actual = {row.route: row.actual for row in route_stats(PROFILE, window)}
    assert actual["GET /books"].requests == 110  # 30 failed attempts were retried
    assert actual["GET /books"].success == 75 / 110
    assert rows["POST /books"].success is None  # declared, no traffic
    assert rows[DEFAULT_ROUTE].requests == 20
    profile = profile_stats(PROFILE, window)
    assert (profile.routes, profile.figures.requests) == (2, 100)


def test_edges_name_both_ends_and_their_identities(window: Window) -> None:
    found = {(row.src, row.dst): row for row in edges([WEB, BOOKS], window)}
    assert set(found) == {
        ("deploy/web", "deploy/books-stable"),
        ("deploy/web", "deploy/books-canary"),
        ("deploy/web", "deploy/authors"),
    }
    stable = found[("deploy/web", "deploy/books-stable")]
    assert stable.secured
    assert stable.server_id == "books.shop.serviceaccount.identity.cluster.local"
    assert stable.client_id == "web.shop.serviceaccount.identity.cluster.local"  # books saw it
    assert stable.figures.rps == 8.0
    canary = found[("deploy/web", "deploy/books-canary")]
    assert not canary.secured
    assert canary.no_tls_reason == "not_provided_by_service_discovery"
    assert (canary.client_id, canary.server_id) == ("", "")


def event(path: str, status: int, latency: float, source: str = "10.0.0.5:40000") -> Observed:
    return Observed(
        proxy="shop/books-0",
        direction="inbound",
        method="GET",
        authority="books",
        path=path,
        status=status,
        latency_ms=latency,
        tls=False,
        source=source,
        source_identity="",
        destination="10.0.0.7:8080",
        destination_service="",
        destination_identity="",
        grpc_status=None,
        dropped_before=0,
        timestamp=1.7e9,
    )


def test_top_ranks_paths_by_calls_with_their_latency_range() -> None:
    top = TopTable({"10.0.0.5": "shop/web-0", "10.0.0.7": "shop/books-0"})
    for latency in (3.0, 1.0, 7.0):
        top.add(event("/books", 200, latency))
    top.add(event("/books/1", 500, 2.0, source="10.0.0.9:1234"))
    busiest, other = top.rows(10)
    assert (busiest.source, busiest.destination, busiest.path) == (
        "shop/web-0",
        "shop/books-0",
        "/books",
    )
    assert (busiest.stats.count, busiest.stats.best_ms, busiest.stats.worst_ms) == (3, 1.0, 7.0)
    assert busiest.stats.last_ms == 7.0
    assert (other.source, other.stats.successes) == ("10.0.0.9", 0)
    assert len(top.rows(1)) == 1
