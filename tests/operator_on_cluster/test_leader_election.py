"""Two operator replicas do not fight: one holds the Lease; the other takes over from a
fresh start, rebuilding all state from the API server (the operator keeps none on disk)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
from pathlib import Path

from kubernetes_asyncio import client
from kubernetes_asyncio.client.api_client import ApiClient
from kubernetes_asyncio.client.exceptions import ApiException

from weft_cli import local_install
from weft_localcluster import ports, processes
from weft_localcluster.cluster import ClusterInfo
from weft_localcluster.waiting import eventually

LEASE_NAMESPACE = "weft-ha"


async def lease_holder(api: ApiClient) -> str | None:
    try:
        lease = await client.CoordinationV1Api(api).read_namespaced_lease(
            "weft-operator", LEASE_NAMESPACE
        )
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise
    holder: str | None = lease.spec.holder_identity
    return holder


async def accepted(api: ApiClient, namespace: str, name: str) -> bool:
    split = await client.CustomObjectsApi(api).get_namespaced_custom_object(
        "split.smi-spec.io", "v1alpha4", namespace, "trafficsplits", name
    )
    return any(
        c["type"] == "Accepted" and c["status"] == "True"
        for c in (split.get("status") or {}).get("conditions", [])
    )


def split(name: str) -> str:
    return json.dumps(
        {
            "apiVersion": "split.smi-spec.io/v1alpha2",
            "kind": "TrafficSplit",
            "metadata": {"name": name},
            "spec": {"service": "web", "backends": [{"service": "web-v1", "weight": 100}]},
        }
    )


async def test_one_replica_leads_and_the_other_takes_over_when_it_dies(
    cluster: ClusterInfo, api: ApiClient, namespace: str
) -> None:
    state = Path(cluster.state_dir)
    first = local_install.start_operator(
        cluster, LEASE_NAMESPACE, ports.pick_free(), name="weft-operator-first"
    )
    second = None
    try:
        holder = await eventually(lambda: lease_holder(api), "the first replica to lead")
        assert holder.endswith(f"-{first.pid}")
        second = local_install.start_operator(
            cluster, LEASE_NAMESPACE, ports.pick_free(), name="weft-operator-second"
        )
        local_install.kubectl(cluster, "apply", "-n", namespace, "-f", "-", stdin=split("one"))
        await eventually(lambda: accepted(api, namespace, "one"), "the leader to accept it")
        assert await lease_holder(api) == holder  # the standby did not take the Lease

        os.kill(first.pid, signal.SIGKILL)
        local_install.kubectl(cluster, "apply", "-n", namespace, "-f", "-", stdin=split("two"))

        async def second_leads() -> bool:
            found = await lease_holder(api)
            return found is not None and found.endswith(f"-{second.pid}")

        await eventually(second_leads, "the standby to take the Lease", within=90)
        await eventually(lambda: accepted(api, namespace, "two"), "the new leader to accept it")
    finally:
        for record in (first, second):
            if record is not None:
                processes.stop(record, state)


async def exited(record: processes.ProcessRecord) -> str | None:
    """The exit code of `record`'s process (as text: 0 must count) once it has ended."""
    code = processes.exit_code(record)
    return None if code is None else str(code)


async def test_a_leader_whose_operator_fails_exits_rather_than_hold_the_lease(
    cluster: ClusterInfo,
) -> None:
    """Its config server cannot listen (the port is taken): the process exits 1 so that
    the Deployment restarts it, instead of renewing the Lease while doing nothing."""
    state = Path(cluster.state_dir)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        record = local_install.start_operator(
            cluster,
            "weft-ha-failing",
            ports.pick_free(),
            name="weft-operator-failing",
            config_port=taken.getsockname()[1],
        )
        try:
            code = await eventually(lambda: exited(record), "the failed leader to exit", 60)
        finally:
            processes.stop(record, state)
    assert code == "1"
    log = await asyncio.to_thread(Path(record.log).read_text)
    assert "the operator failed" in log


async def test_a_leader_stops_at_once_on_sigterm(cluster: ClusterInfo, api: ApiClient) -> None:
    state = Path(cluster.state_dir)
    record = local_install.start_operator(
        cluster, "weft-ha-sigterm", ports.pick_free(), name="weft-operator-sigterm"
    )
    try:

        async def leads() -> bool:
            try:
                lease = await client.CoordinationV1Api(api).read_namespaced_lease(
                    "weft-operator", "weft-ha-sigterm"
                )
            except ApiException:
                return False
            return bool(lease.spec.holder_identity.endswith(f"-{record.pid}"))

        await eventually(leads, "the operator to lead")
        os.kill(record.pid, signal.SIGTERM)
        code = await eventually(lambda: exited(record), "the leader to stop on SIGTERM", 20)
    finally:
        processes.stop(record, state)
    assert code == "0"
