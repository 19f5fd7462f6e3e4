"""The observability commands on the meshed bookshop, run as a user runs them (a
subprocess, reading the proxies through the API server): `weft stat ts` shows the split
the traffic really follows, `weft tap` shows live requests with the caller's identity."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from meshed_bookshop import NAMESPACE, Bookshop


def weft(shop: Bookshop, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KUBECONFIG": str(shop.cluster.kubeconfig)}
    return subprocess.run(
        [sys.executable, "-m", "weft_cli", *args],
        env=env, capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip


def test_stat_ts_shows_the_split_the_traffic_follows(bookshop: Bookshop) -> None:
    """The sample's own traffic pod calls web at 5 rps; web calls books through the split."""
    bookshop.set_weights({"books-v1": 50, "books-v2": 50})
    try:
        ran = weft(bookshop, "stat", "ts", "books", "-n", NAMESPACE, "-w", "12s", "-o", "json")
        assert ran.returncode == 0, ran.stderr
        rows = {row["backend"]: row for row in json.loads(ran.stdout)}
    finally:
        bookshop.set_weights({"books-v1": 100, "books-v2": 0})
    assert set(rows) == {"books-v1", "books-v2"}, rows
    for row in rows.values():
        assert row["weight_share"] == 0.5
        assert 0.2 <= row["traffic_share"] <= 0.8, rows  # ~30 requests a backend
        assert row["success"] == 1.0


def test_tap_shows_live_requests_with_the_callers_identity(bookshop: Bookshop) -> None:
    ran = weft(bookshop, "tap", "deploy/books-v1", "-n", NAMESPACE, "--limit", "3", "-o", "json")
    assert ran.returncode == 0, ran.stderr
    events = [json.loads(line) for line in ran.stdout.splitlines() if line.strip()]
    assert len(events) == 3, ran.stdout
    web = bookshop.identity("web")
    assert any(json.dumps(event).count(web) for event in events), events
