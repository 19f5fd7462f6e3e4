"""The dashboard's HTTP surface where it decides alone: tap stays closed unless the
install opened it, and bad input gets a clear error, not a stack trace."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import cast

import pytest
from aiohttp.test_utils import TestClient, TestServer

from weft_cli.kube import Kube
from weft_viz.app import DashboardSettings, make_app
from weft_viz.reader import MeshReader, ReaderSettings

# No API server is read on these paths: the app answers before the reader is asked.
UNUSED_KUBE = cast(Kube, None)


@pytest.fixture
async def dashboard() -> AsyncIterator[TestClient]:  # type: ignore[type-arg]
    reader = MeshReader(UNUSED_KUBE, ReaderSettings("http://127.0.0.1:1"))
    async with TestClient(TestServer(make_app(reader, DashboardSettings(tap=False)))) as client:
        yield client


async def test_tap_is_refused_when_the_install_did_not_turn_it_on(dashboard: TestClient) -> None:  # type: ignore[type-arg]
    answer = await dashboard.get("/api/tap", params={"namespace": "shop"})
    assert answer.status == 403
    assert "weft viz install --tap" in (await answer.json())["error"]
    config = await (await dashboard.get("/api/config")).json()
    assert config["tap"] is False


async def test_a_bad_namespace_is_a_clear_error(dashboard: TestClient) -> None:  # type: ignore[type-arg]
    answer = await dashboard.get("/api/workloads", params={"namespace": "../secrets"})
    assert answer.status == 400
    assert "is not a namespace name" in (await answer.json())["error"]
    missing = await dashboard.get("/api/workloads")
    assert missing.status == 400


async def test_the_page_and_its_assets_are_served(dashboard: TestClient) -> None:  # type: ignore[type-arg]
    page = await dashboard.get("/")
    assert page.status == 200
    assert "Weft dashboard" in await page.text()
    script = await dashboard.get("/static/app.js")
    assert script.status == 200
    assert script.content_type == "text/javascript"
    assert (await dashboard.get("/static/../app.py")).status == 404
