"""Fixtures of the config tests: a mesh with its config server, and background clients."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest
from config_mesh import Mesh, start_mesh

from weft_proxy.config_client.client import ConfigClient


@pytest.fixture
async def mesh() -> AsyncIterator[Mesh]:
    started = await start_mesh()
    yield started
    await started.server.stop(grace=None)


@pytest.fixture
async def running() -> AsyncIterator[Callable[[ConfigClient], ConfigClient]]:
    """Run clients in the background for the test; cancelled after it."""
    tasks: list[asyncio.Task[None]] = []

    def run(client: ConfigClient) -> ConfigClient:
        tasks.append(asyncio.create_task(client.run()))
        return client

    yield run
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
