"""The dashboard on the local cluster, installed as a user installs it (`weft viz
install | kubectl apply -f -`, then `weft dashboard`), over the meshed bookshop and its
own traffic: the JSON each page polls holds `weft stat`'s figures for the same window,
the graph's edges, a split's new weights, resources' conditions and live tap."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import aiohttp
from meshed_bookshop import NAMESPACE, Bookshop
from viz_install import Viz, weft

DEADLINE_S = 150.0


async def poll(
    http: aiohttp.ClientSession, url: str, done: Callable[[Any], bool], **params: str
) -> Any:
    """The page's JSON once `done(body)`; the last body in the assertion otherwise."""
    loop = asyncio.get_running_loop()
    deadline, body = loop.time() + DEADLINE_S, None
    while loop.time() < deadline:
        async with http.get(url, params=params) as answer:
            body = await answer.json()
            if answer.status == 200 and done(body):
                return body
        await asyncio.sleep(1)
    raise AssertionError(f"{url} never showed what was awaited: {json.dumps(body)[:2000]}")


def served(names: tuple[str, ...]) -> Callable[[Any], bool]:
    def done(body: Any) -> bool:
        rows = {row["name"]: row for row in body["rows"]}
        return all(rows.get(n, {}).get("success") is not None for n in names)

    return done


async def test_workloads_show_the_figures_weft_stat_shows(
    viz: Viz, http: aiohttp.ClientSession
) -> None:
    names = ("web", "books-v1", "ratings")
    page = await poll(http, f"{viz.url}api/workloads", served(names), namespace=NAMESPACE)
    ran = weft(viz.shop, "stat", "deploy", "-n", NAMESPACE, "--prometheus", viz.prometheus,
               "-o", "json", timeout=240)  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    stat = {row["name"]: row for row in json.loads(ran.stdout)}
    # The page is read again after `weft stat`: while traffic still ramps up, the rate of
    # the last minute moves between the reads, and stat's figure lies between the two.
    later = await poll(http, f"{viz.url}api/workloads", served(names), namespace=NAMESPACE)
    shown = {row["name"]: row for row in page["rows"] if row["kind"] == "deployment"}
    then = {row["name"]: row for row in later["rows"] if row["kind"] == "deployment"}
    assert set(shown) == set(stat)
    for name in names:
        # Both read Prometheus' last minute: the same within a scrape.
        assert shown[name]["meshed_pods"] == stat[name]["meshed_pods"] == stat[name]["pods"]
        assert abs(shown[name]["success"] - stat[name]["success"]) <= 0.02, (shown, stat)
        low, high = sorted((shown[name]["rps"], then[name]["rps"]))
        assert 0.75 * low <= stat[name]["rps"] <= 1.25 * high, (shown, then, stat)
        assert shown[name]["mtls_share"] > 0  # the sample's own callers are meshed
    assert shown["ratings"]["mtls_share"] == 1.0  # only web calls it, over mTLS
    namespaces = await poll(http, f"{viz.url}api/namespaces", served((NAMESPACE,)))
    (row,) = [r for r in namespaces["rows"] if r["name"] == NAMESPACE]
    assert row["rps"] > 0


async def test_the_graph_shows_who_calls_whom_with_identities(
    viz: Viz, http: aiohttp.ClientSession, bookshop: Bookshop
) -> None:
    wanted = {
        ("deploy/traffic", "deploy/web"),
        ("deploy/web", "deploy/books-v1"),
        ("deploy/web", "deploy/ratings"),
    }

    def done(body: Any) -> bool:
        return wanted <= {(e["src"], e["dst"]) for e in body["edges"]}

    graph = await poll(http, f"{viz.url}api/graph", done, namespace=NAMESPACE)
    edges = {(e["src"], e["dst"]): e for e in graph["edges"]}
    to_books = edges[("deploy/web", "deploy/books-v1")]
    assert to_books["secured"] is True
    assert to_books["client_id"] == bookshop.identity("web")
    assert to_books["server_id"] == bookshop.identity("books")
    rank = {node["name"]: node["rank"] for node in graph["nodes"]}
    assert rank["deploy/traffic"] < rank["deploy/web"] < rank["deploy/books-v1"]


async def test_a_weight_change_shows_on_the_split_page(
    viz: Viz, http: aiohttp.ClientSession, bookshop: Bookshop
) -> None:
    def weights(shares: dict[str, float]) -> Callable[[Any], bool]:
        def done(body: Any) -> bool:
            (split,) = [s for s in body["splits"] if s["name"] == "books"]
            shown = {b["backend"]: b["weight_share"] for b in split["backends"]}
            return all(shown.get(k) == v for k, v in shares.items())

        return done

    url = f"{viz.url}api/splits"
    await poll(http, url, weights({"books-v1": 1.0, "books-v2": 0.0}), namespace=NAMESPACE)
    bookshop.set_weights({"books-v1": 50, "books-v2": 50})
    try:
        await poll(http, url, weights({"books-v1": 0.5, "books-v2": 0.5}), namespace=NAMESPACE)

        def both_served(body: Any) -> bool:
            (split,) = [s for s in body["splits"] if s["name"] == "books"]
            return all((b["traffic_share"] or 0) > 0 for b in split["backends"])

        await poll(http, url, both_served, namespace=NAMESPACE)  # the canary gets traffic
    finally:
        bookshop.set_weights({"books-v1": 100, "books-v2": 0})


async def test_routes_and_resources_with_their_conditions(
    viz: Viz, http: aiohttp.ClientSession
) -> None:
    def routed(body: Any) -> bool:
        rows = [r for p in body["profiles"] if p["service"] == "books" for r in p["routes"]]
        return any(r["route"] != "[DEFAULT]" and r["rps"] > 0 for r in rows)

    await poll(http, f"{viz.url}api/routes", routed, namespace=NAMESPACE)

    def programmed(body: Any) -> bool:
        # Every condition True, Programmed included: an earlier test's weight change may
        # still wait for the proxies ("waiting for proxies to acknowledge ...").
        rows = [r for r in body["rows"] if r["kind"] == "TrafficSplit" and r["name"] == "books"]
        return bool(rows) and all(c["status"] == "True" for c in rows[0]["conditions"])

    page = await poll(http, f"{viz.url}api/resources", programmed, namespace=NAMESPACE)
    (split,) = [r for r in page["rows"] if r["kind"] == "TrafficSplit"]
    condition = {c["type"]: c for c in split["conditions"]}
    assert condition["Programmed"]["message"].endswith("proxies"), condition  # "n/m proxies"
    kinds = {r["kind"] for r in page["rows"]}
    assert {"TrafficSplit", "ServiceProfile"} <= kinds


async def test_tap_streams_live_requests_with_filters(viz: Viz) -> None:
    params = {"namespace": NAMESPACE, "workload": "deploy/books-v1", "path": "/books"}
    events: list[dict[str, Any]] = []
    timeout = aiohttp.ClientTimeout(total=DEADLINE_S)
    async with (
        aiohttp.ClientSession(timeout=timeout) as http,
        http.get(f"{viz.url}api/tap", params=params) as answer,
    ):
        assert answer.status == 200, await answer.text()
        async for line in answer.content:
            if line.startswith(b"data: "):
                events.append(json.loads(line[6:]))
            if len(events) == 3:
                break
    for event in events:
        assert event["proxy"].startswith(f"{NAMESPACE}/books-v1-")
        assert event["path"].startswith("/books")
        assert event["method"] == "GET"
