"""The dashboard's pages from pods and a window: `weft stat`'s figures, plus the mTLS
share, the graph's columns and the resources' conditions."""

from __future__ import annotations

from weft_cli.observe.edges import EdgeRow
from weft_cli.observe.golden import Figures
from weft_cli.observe.pods import PodInfo
from weft_cli.observe.stats import DEPLOYMENT, workload_stats
from weft_cli.observe.window import Series, Window
from weft_viz import views

WEB = PodInfo("shop", "web-1", "deployment", "web", "web", "0.1.0", "10.0.0.1", "Running")
BOOKS = PodInfo("shop", "books-1", "deployment", "books", "books", "0.1.0", "10.0.0.2", "Running")


def responses(pod: PodInfo, value: float, tls: str, classification: str = "success") -> Series:
    labels = {**pod.labels(), "direction": "inbound", "tls": tls, "classification": classification}
    return Series("response_total", labels, value)


def test_workload_rows_are_weft_stats_with_the_share_served_over_mtls() -> None:
    window = Window(
        60.0,
        (
            responses(BOOKS, 90, "true"),
            responses(BOOKS, 30, "false"),
            responses(BOOKS, 30, "true", "failure"),
            responses(WEB, 60, "false"),
        ),
    )
    rows = {row["name"]: row for row in views.workload_rows([WEB, BOOKS], window)}
    stat = {row.name: row.as_dict() for row in workload_stats(DEPLOYMENT, [WEB, BOOKS], window)}
    for name in ("web", "books"):
        assert {k: v for k, v in rows[name].items() if k not in ("kind", "mtls_share")} == stat[
            name
        ]
    assert rows["books"]["mtls_share"] == 0.8  # 120 of 150
    assert rows["web"]["mtls_share"] == 0.0
    assert rows["books"]["success"] == 0.8


def edge(src: str, dst: str) -> EdgeRow:
    figures = Figures(1.0, 1.0, 1.0, 2.0, 3.0, 0, 60)
    return EdgeRow("shop", src, "shop", dst, "", "", True, "", figures)


def test_callers_sit_left_of_callees_and_cycles_do_not_hang_the_layout() -> None:
    rows = [
        edge("deploy/traffic", "deploy/web"),
        edge("deploy/web", "deploy/books"),
        edge("deploy/web", "deploy/ratings"),
        edge("deploy/books", "deploy/ratings"),
        edge("deploy/ratings", "deploy/web"),  # a cycle back
    ]
    drawn = views.graph(rows)
    rank = {node["name"]: node["rank"] for node in drawn["nodes"]}
    assert rank == {"deploy/traffic": 0, "deploy/web": 1, "deploy/books": 2, "deploy/ratings": 3}
    assert len(drawn["edges"]) == 5
    assert {(e["source"], e["target"]) for e in drawn["edges"]} >= {
        ("shop/deploy/traffic", "shop/deploy/web")
    }


def test_tens_of_workloads_spread_over_columns_without_overlap() -> None:
    rows = [edge("deploy/front", f"deploy/svc-{i}") for i in range(30)]
    rows += [edge(f"deploy/svc-{i}", "deploy/db") for i in range(30)]
    nodes = views.graph(rows)["nodes"]
    places = {(node["rank"], node["order"]) for node in nodes}
    assert len(places) == len(nodes) == 32  # no two nodes in one place
    assert {node["rank"] for node in nodes} == {0, 1, 2}


def test_a_resource_shows_the_four_conditions_and_its_proxies() -> None:
    body = {
        "metadata": {"name": "books", "namespace": "shop", "generation": 3},
        "status": {
            "conditions": [
                {"type": "Accepted", "status": "True", "reason": "Accepted"},
                {"type": "Programmed", "status": "False", "message": "2/3 proxies"},
            ],
            "proxies": {"acked": 2, "total": 3},
        },
    }
    row = views.resource_row("TrafficSplit", body)
    statuses = {c["type"]: (c["status"], c["message"]) for c in row["conditions"]}
    assert statuses == {
        "Accepted": ("True", ""),
        "ResolvedRefs": ("", ""),
        "Ready": ("", ""),
        "Programmed": ("False", "2/3 proxies"),
    }
    assert row["proxies"] == {"acked": 2, "total": 3}
